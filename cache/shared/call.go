package shared

import (
	"context"
	"errors"
	"time"

	"github.com/minio/minio-go/v7"
)

// errOpen is what an operation returns when the breaker is open.
var errOpen = errors.New("shared cache: breaker open, store not asked")

// call runs op against the store, bounded by the layer's timeout, under the
// breaker.
func (l *Layer) call(ctx context.Context, op func(context.Context) error) error {
	return l.callFor(ctx, l.cfg.Timeout, op)
}

func (l *Layer) callFor(ctx context.Context, timeout time.Duration, op func(context.Context) error) error {
	if !l.br.Allow() {
		l.stats.rejected.Add(1)
		return errOpen
	}
	octx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := op(octx)
	switch {
	case err == nil || answer(err):
		l.br.Done(true)
	case ctx.Err() != nil:
		// The caller left (its clients gave up): no verdict on the store.
		l.br.Abandon()
	default:
		l.br.Done(false)
		l.stats.errors.Add(1)
		l.fault(err)
	}
	return err
}

// answer says err is the store answering, not failing: the object is
// absent, or a condition did not hold. A vanished bucket (NoSuchBucket,
// also a 404) is a failure.
func answer(err error) bool {
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey", "PreconditionFailed", "ConditionalRequestConflict", "NoSuchLifecycleConfiguration":
		return true
	}
	return false
}

func notFound(err error) bool { return minio.ToErrorResponse(err).Code == "NoSuchKey" }

// lostRace says a conditional write found the condition false: 412, or AWS
// S3's 409 ConditionalRequestConflict (another conditional write of the
// same key is in progress: another node is taking the lease).
func lostRace(err error) bool {
	switch minio.ToErrorResponse(err).Code {
	case "PreconditionFailed", "ConditionalRequestConflict":
		return true
	}
	return false
}

// fault logs a store failure at most once a minute.
func (l *Layer) fault(err error) {
	now := time.Now().Unix()
	if last := l.logged.Load(); now >= last+60 && l.logged.CompareAndSwap(last, now) {
		l.log.Warn("shared cache fault: serving from local tiers and renders", "bucket", l.bucket, "error", err)
	}
}

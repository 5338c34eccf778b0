package shared

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/minio/minio-go/v7"
)

// A lease says a node is rendering a key: an object at the key's lease
// path, created only if absent (If-None-Match: *), so of all the nodes that
// miss a key at once exactly one creates it and renders; the others wait
// for its entry. The winner writes the entry, then deletes the lease.
//
// The lease holds its expiry, written by its node's clock (the fleet's
// clocks are assumed to agree within seconds, as NTP keeps them): a node
// that finds an expired lease (its holder died, or overran LeaseTTL) takes
// it over with a write conditional on the old lease's ETag (If-Match), so
// of several nodes finding it expired, one takes it.
type leaseBody struct {
	Node    string `json:"node"`
	Expires int64  `json:"expires"` // Unix nanoseconds
}

// leaseTries bounds the rounds of acquire (create, read, take over) when
// other nodes keep changing the lease under it.
const leaseTries = 3

// acquire tries to take lease lk: won says this node holds it now; an
// error says the store failed (the caller renders without a lease).
func (l *Layer) acquire(ctx context.Context, lk string) (won bool, err error) {
	body, _ := json.Marshal(leaseBody{Node: l.cfg.Node, Expires: l.now().Add(l.cfg.LeaseTTL).UnixNano()})
	put := func(cond func(*minio.PutObjectOptions)) error {
		return l.call(ctx, func(ctx context.Context) error {
			opts := minio.PutObjectOptions{ContentType: "application/json"}
			cond(&opts)
			_, err := l.c.PutObject(ctx, l.bucket, lk, bytes.NewReader(body), int64(len(body)), opts)
			return err
		})
	}
	for range leaseTries {
		err := put(func(o *minio.PutObjectOptions) { o.SetMatchETagExcept("*") })
		if err == nil {
			l.stats.won.Add(1)
			return true, nil
		}
		if !lostRace(err) {
			return false, err
		}
		data, _, etag, found, err := l.fetch(ctx, lk)
		if err != nil {
			return false, err
		}
		if !found {
			continue // released meanwhile: try to create it again
		}
		var cur leaseBody
		if json.Unmarshal(data, &cur) == nil && l.now().Before(time.Unix(0, cur.Expires)) {
			return false, nil // held
		}
		// Expired (or unreadable): take it over, if it is still that one.
		err = put(func(o *minio.PutObjectOptions) { o.SetMatchETag(etag) })
		if err == nil {
			l.stats.takeovers.Add(1)
			l.stats.won.Add(1)
			return true, nil
		}
		if !lostRace(err) && !notFound(err) {
			return false, err
		}
	}
	return false, nil
}

// releaseNow deletes lease lk.
func (l *Layer) releaseNow(lk string) {
	_ = l.call(context.Background(), func(ctx context.Context) error {
		return l.c.RemoveObject(ctx, l.bucket, lk, minio.RemoveObjectOptions{})
	})
}

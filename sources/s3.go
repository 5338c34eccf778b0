package sources

import (
	"context"
	"errors"
	"fmt"
	"github.com/iiif-proxy/iiif-proxy/internal/breaker"
	"github.com/iiif-proxy/iiif-proxy/internal/dirlock"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iiif-proxy/iiif-proxy/internal/s3conf"
	"github.com/minio/minio-go/v7"
	"golang.org/x/sync/singleflight"

	"github.com/iiif-proxy/iiif-proxy/renderer"
)

// Store reads originals from one bucket and prefix through the source
// cache. It is safe for concurrent use.
type Store struct {
	cfg            Config
	lock           *dirlock.Lock // the source cache directory is this process's alone
	bucket, prefix string
	core           *minio.Core
	brk            breaker.Breaker
	now            func() time.Time
	free           func(dir string) (free, total uint64, err error)

	stat singleflight.Group // one Stat per identifier at a time

	mu    sync.Mutex        // protects index and bytes
	index map[string]*entry // by identifier: the version cached
	bytes int64             // blocks held by the entries in index

	stats struct {
		stats, gets, notModified, notFound, errors, timeouts, refused, stale, uncached, evicted, fetched atomic.Uint64
	}
}

// New returns a store for cfg, with the source cache in cfg.Dir (created;
// what an earlier run left there is kept). It sends no request.
func New(cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	bucket, prefix, _ := ParseURL(cfg.URL)
	// The one S3 connection of iiif-proxy (internal/s3conf, shared with
	// the shared render tier): credentials from AccessKey or the standard
	// chain (AWS_* variables, ~/.aws/credentials, the instance's IAM role);
	// Timeout bounds connecting and waiting for an answer's headers; no
	// retries inside the client: a failed request counts towards the
	// breaker, and the cache above serves what it has.
	client, err := s3conf.Config{Endpoint: cfg.Endpoint, DisableSSL: cfg.DisableSSL, ForcePathStyle: cfg.ForcePathStyle,
		Region: cfg.Region, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey,
		DialTimeout: cfg.Timeout, HeaderTimeout: cfg.Timeout, MaxRetries: 1}.Client()
	if err != nil {
		return nil, fmt.Errorf("S3: %w", err)
	}
	core := &minio.Core{Client: client}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("SourceCacheDir: %w", err)
	}
	// One process per directory: start-up removes every file it has no
	// record of, which would be another process's downloads under way if
	// two servers shared it.
	lock, err := dirlock.Acquire(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("SourceCacheDir: %w: give each server its own CacheDir (or SourceCacheDir)", err)
	}
	s := &Store{cfg: cfg, bucket: bucket, prefix: prefix, core: core, now: time.Now, free: statfsFree, lock: lock,
		index: map[string]*entry{}}
	// Open after BreakerFailures in a row; one probe per cooldown, doubling
	// up to 16 cooldowns.
	s.brk = breaker.Breaker{Limit: cfg.BreakerFailures, Cooldown: cfg.BreakerCooldown, MaxCooldown: 16 * cfg.BreakerCooldown,
		Now: func() time.Time { return s.now() }}
	s.load()
	return s, nil
}

// Key is the object key of identifier id (which must be ValidID).
func (s *Store) Key(id string) string {
	if s.prefix == "" {
		return id
	}
	return s.prefix + "/" + id
}

// Close writes every entry's bitmap so the next run finds what this one
// fetched. Files still open keep working; their data is not synced.
func (s *Store) Close() error {
	s.mu.Lock()
	es := make([]*entry, 0, len(s.index))
	for _, e := range s.index {
		es = append(es, e)
	}
	s.mu.Unlock()
	var errs []error
	for _, e := range es {
		if err := e.persist(); err != nil {
			errs = append(errs, err)
		}
	}
	s.lock.Release()
	return errors.Join(errs...)
}

// Stats returns a snapshot of the counters.
func (s *Store) Stats() renderer.SourceStats {
	st := renderer.SourceStats{Bucket: s.bucket, Prefix: s.prefix, Dir: s.cfg.Dir, MaxBytes: s.cfg.MaxBytes,
		Stats: s.stats.stats.Load(), Gets: s.stats.gets.Load(), NotModified: s.stats.notModified.Load(),
		NotFound: s.stats.notFound.Load(), Errors: s.stats.errors.Load(), Timeouts: s.stats.timeouts.Load(),
		Refused: s.stats.refused.Load(), Stale: s.stats.stale.Load(), Uncached: s.stats.uncached.Load(),
		Evicted: s.stats.evicted.Load(), FetchedBytes: s.stats.fetched.Load()}
	st.Breaker, st.FailuresInARow, st.BreakerOpens = s.brk.State()
	s.mu.Lock()
	st.Bytes = s.bytes
	for _, e := range s.index {
		e.mu.Lock()
		if e.nhave > 0 {
			st.Objects++
		}
		if e.whole() {
			st.Whole++
		}
		e.mu.Unlock()
	}
	s.mu.Unlock()
	return st
}

// Known returns the version of id in the cache, without asking the store.
func (s *Store) Known(id string) (Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.index[id]; ok {
		return e.obj, true
	}
	return Object{}, false
}

// Stat returns the current version of id. With a version cached, it asks
// the store conditionally (a 304 moves no bytes); otherwise it fetches the
// object's first block with its size and ETag, so describing a source costs
// one request. When the store fails (or the breaker is open) a cached
// version is returned as it is (counted as stale); without one the error is
// a *renderer.UnavailableError. A missing object is renderer.ErrNotFound.
//
// Concurrent calls for one identifier share one request.
func (s *Store) Stat(ctx context.Context, id string) (Object, error) {
	if !ValidID(id) {
		return Object{}, renderer.ErrNotFound
	}
	// Not the caller's context: the answer is shared (the timeout still
	// bounds it).
	o, err, _ := s.stat.Do(id, func() (any, error) { return s.statOnce(context.WithoutCancel(ctx), id) })
	return o.(Object), err
}

func (s *Store) statOnce(ctx context.Context, id string) (Object, error) {
	s.mu.Lock()
	cur := s.index[id]
	s.mu.Unlock()
	s.stats.stats.Add(1)
	opts := minio.GetObjectOptions{}
	opts.SetRange(0, s.cfg.BlockSize-1)
	if cur != nil {
		opts.SetMatchETagExcept(cur.obj.ETag)
	}
	var head []byte
	var obj Object
	err := s.do(ctx, func(ctx context.Context, touch func()) error {
		body, info, h, err := s.core.GetObject(ctx, s.bucket, s.Key(id), opts)
		if err != nil {
			return err
		}
		defer body.Close()
		obj = Object{ID: id, Key: s.Key(id), ETag: strings.Trim(info.ETag, `"`), ModTime: info.LastModified, Size: info.Size}
		if cr := h.Get("Content-Range"); cr != "" {
			if i := strings.LastIndexByte(cr, '/'); i >= 0 {
				if n, err := strconv.ParseInt(cr[i+1:], 10, 64); err == nil {
					obj.Size = n
				}
			}
		}
		head, err = io.ReadAll(&idleReader{r: body, touch: touch})
		s.stats.fetched.Add(uint64(len(head)))
		return err
	})
	var resp minio.ErrorResponse
	switch {
	case err == nil:
	case errors.As(err, &resp) && resp.StatusCode == http.StatusNotModified && cur != nil:
		s.stats.notModified.Add(1)
		return cur.obj, nil
	case errors.As(err, &resp) && resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		// An empty object: it exists, and nothing can decode it.
		obj = Object{ID: id, Key: s.Key(id), ETag: "empty", Size: 0}
	case errors.Is(err, renderer.ErrNotFound):
		s.drop(id, nil)
		return Object{}, err
	default:
		var ue *renderer.UnavailableError
		if errors.As(err, &ue) && cur != nil {
			s.stats.stale.Add(1)
			return cur.obj, nil
		}
		return Object{}, err
	}
	if cur != nil && cur.obj.ETag == obj.ETag && cur.obj.Size == obj.Size {
		return cur.obj, nil // a store that ignores If-None-Match
	}
	if _, err := s.add(obj); err != nil {
		return obj, nil // uncached: reads will go to the store
	}
	if int64(len(head)) == min(s.cfg.BlockSize, obj.Size) && len(head) > 0 {
		if f, err := s.Open(obj); err == nil {
			f.put(0, head)
			f.Close()
		}
	}
	return obj, nil
}

// do runs one request to the store under the breaker and the idle
// timeout: fn calls touch whenever bytes arrive. Its error is classified:
// renderer.ErrNotFound (no such key), ErrChanged (If-Match failed), a
// minio.ErrorResponse for 304 and 416, else a *renderer.UnavailableError.
func (s *Store) do(ctx context.Context, fn func(ctx context.Context, touch func()) error) error {
	if !s.brk.Allow() {
		s.stats.refused.Add(1)
		return &renderer.UnavailableError{Err: errors.New("S3 source store is failing: circuit breaker open")}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(s.cfg.Timeout, func() { cancel(errIdle) })
	defer timer.Stop()
	err := fn(ctx, func() { timer.Reset(s.cfg.Timeout) })
	if err == nil {
		s.brk.Done(true)
		return nil
	}
	var le *localError
	if errors.As(err, &le) {
		s.brk.Done(true) // the store answered; our disk failed
		return err
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		switch {
		case resp.StatusCode == http.StatusNotModified, resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
			s.brk.Done(true)
			return resp
		case resp.StatusCode == http.StatusPreconditionFailed:
			s.brk.Done(true)
			return renderer.ErrSourceChanged
		case resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket:
			s.brk.Done(true)
			s.stats.notFound.Add(1)
			return renderer.ErrNotFound
		}
		s.brk.Done(false)
		s.stats.errors.Add(1)
		return &renderer.UnavailableError{Status: resp.StatusCode, Err: fmt.Errorf("S3 %s: %s", resp.Code, resp.Message)}
	}
	s.brk.Done(false)
	s.stats.errors.Add(1)
	timeout := errors.Is(context.Cause(ctx), errIdle)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		timeout = true
	}
	if timeout {
		s.stats.timeouts.Add(1)
		err = fmt.Errorf("no answer from S3 in %s: %w", s.cfg.Timeout, err)
	}
	return &renderer.UnavailableError{Timeout: timeout, Err: err}
}

var errIdle = errors.New("S3 request idle for longer than the timeout")

// idleReader calls touch on every read that returns bytes, so the idle
// timer only fires when the transfer stalls.
type idleReader struct {
	r     io.Reader
	touch func()
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.touch()
	}
	return n, err
}

// getRange fetches [off, off+n) of obj into w (a writer at offsets from 0
// = off), with If-Match so a changed object is ErrSourceChanged, not mixed
// bytes. progress is called after each write with the bytes written so far.
func (s *Store) getRange(ctx context.Context, obj Object, off, n int64, w io.WriterAt, progress func(int64)) error {
	s.stats.gets.Add(1)
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(off, off+n-1); err != nil {
		return err
	}
	if obj.ETag != "" && obj.ETag != "empty" {
		opts.SetMatchETag(obj.ETag)
	}
	return s.do(ctx, func(ctx context.Context, touch func()) error {
		body, _, _, err := s.core.GetObject(ctx, s.bucket, obj.Key, opts)
		if err != nil {
			return err
		}
		defer body.Close()
		buf := make([]byte, min(n, 1<<20))
		var done int64
		for done < n {
			k, err := io.ReadFull(body, buf[:min(int64(len(buf)), n-done)])
			if k > 0 {
				touch()
				s.stats.fetched.Add(uint64(k))
				if _, werr := w.WriteAt(buf[:k], done); werr != nil {
					return werr
				}
				done += int64(k)
				if progress != nil {
					progress(done)
				}
			}
			if err != nil {
				if done < n {
					return fmt.Errorf("S3 object %s ended at %d of %d bytes: %w", obj.Key, off+done, off+n, err)
				}
				break
			}
		}
		return nil
	})
}

// Package shared is the shared render tier: an S3 bucket (any S3-compatible
// store) behind every node's local cache tiers, so that a fleet of
// iiif-proxy nodes renders a tile once rather than once per node.
//
// It implements cache.Shared. A node's local miss looks here before
// rendering (Claim); a render is queued to be written here in the
// background (bounded in entries and bytes, drops counted: a response
// never waits on the store); an entry is the store's own encoded value
// (store.Encode), so it carries the same checksums, Last-Modified and
// source identity as a local entry, and a corrupt object is detected,
// deleted and never served.
//
// Across nodes, a stampede renders once: a node that misses takes the key's
// lease, an object written with If-None-Match: * (lease.go); the nodes
// that lose the race poll for the winner's entry instead of rendering. A
// lease carries its expiry, and an expired one is taken over (If-Match on
// its ETag), so a node that dies mid-render blocks nobody for long.
//
// Purge: PurgeID writes the identifier's generation object (the time of
// the purge), then deletes its entries (one prefix listing). Other nodes
// read the generation when they revalidate an entry of the identifier, at
// most once per Config.GenerationTTL, and drop what is older; no message
// bus.
//
// Lifetime: an entry read when older than RefreshAfter of Retention is
// copied onto itself (its Last-Modified, and so its age, reset), as rokka
// does; the bucket's lifecycle rule (lifecycle.go), set at start when
// Config.Lifecycle allows, expires entries not refreshed within Retention.
//
// Faults: every operation has a short timeout and goes through a circuit
// breaker (breaker.go); a store that is down, slow, refusing or gone turns
// into misses and dropped writes, never into a failed request.
package shared

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sync/singleflight"

	"github.com/iiif-proxy/iiif-proxy/cache"
	"github.com/iiif-proxy/iiif-proxy/internal/lru"
	"github.com/iiif-proxy/iiif-proxy/internal/s3conf"
	"github.com/iiif-proxy/iiif-proxy/store"
)

// Config configures the shared layer.
type Config struct {
	// URL is where the layer lives: "s3://bucket/prefix" (SharedCache).
	// Required.
	URL string
	// S3 is the connection to the store (endpoint, TLS, credentials).
	S3 s3conf.Config
	// Timeout bounds each operation on the store (a get, a put, a lease).
	// Zero means 2s.
	Timeout time.Duration
	// Retention is how long an entry lives unread; the lifecycle rule
	// expires it then (in whole days, at least one). Zero means 180 days.
	Retention time.Duration
	// RefreshAfter is the fraction of Retention after which a read entry
	// has its age reset (rokka: four months of six). Zero means 2/3; 1 or
	// more means never.
	RefreshAfter float64
	// Lifecycle sets the bucket's lifecycle rule for this prefix at start
	// (it needs s3:PutLifecycleConfiguration). False leaves the bucket's
	// rules as they are: set the documented rule yourself.
	Lifecycle bool
	// QueueLen and QueueBytes bound the writes waiting to go to the store;
	// past either, a write is dropped and counted. Zero means 1024 and
	// 64 MiB.
	QueueLen   int
	QueueBytes int64
	// Writers is how many writes go to the store at once. Zero means 4.
	Writers int
	// LeaseTTL is how long a render's lease holds before another node may
	// take it over: longer than a render may take (RenderTimeout) plus the
	// write. Zero means 90s.
	LeaseTTL time.Duration
	// PollInterval is how often a node waiting for another node's render
	// looks for its entry. Zero means 50ms.
	PollInterval time.Duration
	// GenerationTTL is how long a node trusts an identifier's generation
	// (its last purge) once read, for shared hits; revalidation passes its
	// tier's Revalidate instead. Zero means 1 minute.
	GenerationTTL time.Duration
	// Node names this node in its leases. Empty means hostname:pid.
	Node string
	// Clock tells the time (ages, leases, generations). Nil means time.Now.
	Clock func() time.Time
	// Logger receives faults (at most one line a minute) and breaker
	// changes. Nil means slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := s3conf.ParseURL(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("SharedCache: %w", err))
	}
	if err := c.S3.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Timeout < 0 || c.Retention < 0 || c.LeaseTTL < 0 || c.PollInterval < 0 || c.GenerationTTL < 0 {
		errs = append(errs, errors.New("shared cache durations must not be negative"))
	}
	if c.RefreshAfter < 0 || c.QueueLen < 0 || c.QueueBytes < 0 || c.Writers < 0 {
		errs = append(errs, errors.New("shared cache SharedRefreshAfter, queue bounds and writers must not be negative"))
	}
	return errors.Join(errs...)
}

// Layer is the shared layer on one bucket and prefix.
type Layer struct {
	cfg    Config
	c      *minio.Client
	bucket string
	keys   keys
	now    func() time.Time
	log    *slog.Logger
	br     breaker
	q      *queue

	gens      *lru.Cache[string, generation]
	genFlight singleflight.Group
	// refreshing holds the keys whose refresh is queued, so a hot entry
	// is copied once, not once per read.
	refreshing sync.Map

	stats     counters
	lifecycle atomic.Bool
	logged    atomic.Int64   // unix seconds of the last fault logged
	done      chan struct{}  // closed by Close: stops the lifecycle retries
	bg        sync.WaitGroup // purges deleting entries
	closeOnce sync.Once
}

var _ cache.Shared = (*Layer)(nil)

// generation is an identifier's last purge as read from the store, and
// when it was read.
type generation struct{ at, read time.Time }

type counters struct {
	hits, misses, corrupt, purged, writes, bytes, drops, errors, rejected atomic.Uint64
	refreshes, won, waits, takeovers, waitHits, waitTimeouts, purges      atomic.Uint64
}

// New returns the layer cfg describes. It does not contact the store
// (start-up never waits on it); the lifecycle rule is set in the
// background when cfg.Lifecycle.
func New(cfg Config) (*Layer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	bucket, prefix, _ := s3conf.ParseURL(cfg.URL)
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Retention == 0 {
		cfg.Retention = 180 * 24 * time.Hour
	}
	if cfg.RefreshAfter == 0 {
		cfg.RefreshAfter = 2.0 / 3
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = 1024
	}
	if cfg.QueueBytes == 0 {
		cfg.QueueBytes = 64 << 20
	}
	if cfg.Writers == 0 {
		cfg.Writers = 4
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 90 * time.Second
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	if cfg.GenerationTTL == 0 {
		cfg.GenerationTTL = time.Minute
	}
	if cfg.Node == "" {
		h, _ := os.Hostname()
		cfg.Node = h + ":" + strconv.Itoa(os.Getpid())
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.S3.HeaderTimeout == 0 || cfg.S3.HeaderTimeout > cfg.Timeout {
		cfg.S3.HeaderTimeout = cfg.Timeout
	}
	if cfg.S3.DialTimeout == 0 || cfg.S3.DialTimeout > cfg.Timeout {
		cfg.S3.DialTimeout = cfg.Timeout
	}
	c, err := cfg.S3.Client()
	if err != nil {
		return nil, fmt.Errorf("SharedCache: %w", err)
	}
	l := &Layer{cfg: cfg, c: c, bucket: bucket, keys: keys{prefix}, now: cfg.Clock, log: cfg.Logger,
		gens: lru.New[string, generation](100_000), done: make(chan struct{})}
	l.br.now = cfg.Clock
	l.br.changeFn = func(open bool) {
		if open {
			l.log.Warn("shared cache: store failing, breaker open: rendering locally until it answers", "bucket", bucket)
		} else {
			l.log.Info("shared cache: store answers again, breaker closed", "bucket", bucket)
		}
	}
	l.q = newQueue(l, cfg.QueueLen, cfg.QueueBytes, cfg.Writers)
	if cfg.Lifecycle {
		go l.ensureLifecycle()
	} else {
		go l.checkLifecycle()
	}
	return l, nil
}

// Close stops taking writes and waits up to wait for the queued ones.
func (l *Layer) Close(wait time.Duration) {
	l.closeOnce.Do(func() { close(l.done) })
	l.q.close(wait)
	done := make(chan struct{})
	go func() { l.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
	}
}

// Wait waits for the purges deleting entries in the background (tests).
func (l *Layer) Wait() { l.bg.Wait() }

// errOpen is what an operation returns when the breaker is open.
var errOpen = errors.New("shared cache: breaker open, store not asked")

// call runs op against the store, bounded by the layer's timeout, under the
// breaker.
func (l *Layer) call(ctx context.Context, op func(context.Context) error) error {
	return l.callFor(ctx, l.cfg.Timeout, op)
}

func (l *Layer) callFor(ctx context.Context, timeout time.Duration, op func(context.Context) error) error {
	if !l.br.allow() {
		l.stats.rejected.Add(1)
		return errOpen
	}
	octx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := op(octx)
	switch {
	case err == nil || answer(err):
		l.br.done(true)
	case ctx.Err() != nil:
		// The caller left (its clients gave up): no verdict on the store.
		l.br.abandon()
	default:
		l.br.done(false)
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

// maxObject bounds what a get reads: no entry the store writes is larger
// (a body is at most 4 GiB in the format, but no IIIF response near it is
// allowed by the proxy's limits).
const maxObject = 1 << 30

// fetch reads object k whole; found is false when it does not exist.
func (l *Layer) fetch(ctx context.Context, k string) (data []byte, mod time.Time, etag string, found bool, err error) {
	err = l.call(ctx, func(ctx context.Context) error {
		obj, err := l.c.GetObject(ctx, l.bucket, k, minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer obj.Close()
		st, err := obj.Stat()
		if err != nil {
			return err
		}
		if st.Size < 0 || st.Size > maxObject {
			return fmt.Errorf("object %s: size %d out of bounds", k, st.Size)
		}
		data = make([]byte, st.Size)
		if _, err := io.ReadFull(obj, data); err != nil {
			return err
		}
		mod, etag = st.LastModified, st.ETag
		return nil
	})
	if notFound(err) {
		return nil, time.Time{}, "", false, nil
	}
	return data, mod, etag, err == nil, err
}

// get reads the entry at k, verified and not purged since it was written;
// count says whether this look counts as a hit or miss.
func (l *Layer) get(ctx context.Context, k, id string, count bool) (store.Entry, bool) {
	data, mod, _, found, _ := l.fetch(ctx, k)
	if !found {
		if count {
			l.stats.misses.Add(1)
		}
		return store.Entry{}, false
	}
	e, err := store.Decode(data)
	if err != nil {
		// Never served; deleted so that the next render replaces it.
		l.stats.corrupt.Add(1)
		l.q.remove(k)
		if count {
			l.stats.misses.Add(1)
		}
		return store.Entry{}, false
	}
	if p := l.PurgedAt(id, l.cfg.GenerationTTL); !p.IsZero() && !e.StoredAt.After(p) {
		// Written by a render that began before the identifier's purge.
		l.stats.purged.Add(1)
		l.q.remove(k)
		if count {
			l.stats.misses.Add(1)
		}
		return store.Entry{}, false
	}
	if l.cfg.RefreshAfter < 1 && l.now().Sub(mod) > time.Duration(l.cfg.RefreshAfter*float64(l.cfg.Retention)) {
		l.refresh(k)
	}
	l.stats.hits.Add(1)
	return e, true
}

// refresh resets the age of entry k (the sliding lifetime), once however
// many reads ask at the same time.
func (l *Layer) refresh(k string) {
	if _, busy := l.refreshing.LoadOrStore(k, struct{}{}); busy {
		return
	}
	if !l.q.copy(k) {
		l.refreshing.Delete(k)
	}
}

// doRefresh copies k onto itself, replacing its metadata: S3 refuses a copy
// onto itself that changes nothing, and the copy gets a new Last-Modified,
// from which the lifecycle rule counts.
func (l *Layer) doRefresh(k string) {
	defer l.refreshing.Delete(k)
	err := l.call(context.Background(), func(ctx context.Context) error {
		_, err := l.c.CopyObject(ctx, minio.CopyDestOptions{Bucket: l.bucket, Object: k, ReplaceMetadata: true,
			UserMetadata: map[string]string{"Iiif-Refreshed": l.now().UTC().Format(time.RFC3339)}},
			minio.CopySrcOptions{Bucket: l.bucket, Object: k})
		return err
	})
	if err == nil {
		l.stats.refreshes.Add(1)
	}
}

// Claim implements cache.Shared.
func (l *Layer) Claim(ctx context.Context, tier string, key []byte, wait time.Duration) (store.Entry, bool, cache.Claim) {
	ek, lk, id := l.keys.entry(tier, key), l.keys.lease(tier, key), idOf(key)
	if e, ok := l.get(ctx, ek, id, true); ok {
		return e, true, &claim{l: l, ek: ek}
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	tick := time.NewTicker(l.cfg.PollInterval)
	defer tick.Stop()
	for {
		won, err := l.acquire(ctx, lk)
		if err != nil {
			return store.Entry{}, false, &claim{l: l, ek: ek} // store failing: render here
		}
		if won {
			// The last holder may have written the entry and released its
			// lease between this node's look and its lease.
			if e, ok := l.get(ctx, ek, id, false); ok {
				l.q.release(lk)
				return e, true, &claim{l: l, ek: ek}
			}
			return store.Entry{}, false, &claim{l: l, ek: ek, lk: lk}
		}
		l.stats.waits.Add(1)
		if !l.await(ctx, ek, lk, id, timer, tick) {
			return store.Entry{}, false, &claim{l: l, ek: ek}
		}
		if e, ok := l.get(ctx, ek, id, false); ok {
			l.stats.waitHits.Add(1)
			return e, true, &claim{l: l, ek: ek}
		}
		// The lease went without an entry (its render failed or was not
		// stored): try for it again.
	}
}

// await polls for another node's entry until it appears (true) or the
// lease goes (true: the caller looks once more and competes again), and
// gives up (false: the caller renders) at wait, when ctx ends, or when the
// store fails.
func (l *Layer) await(ctx context.Context, ek, lk, id string, timer *time.Timer, tick *time.Ticker) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			l.stats.waitTimeouts.Add(1)
			return false
		case <-tick.C:
		}
		_, _, _, found, err := l.fetch(ctx, ek)
		if err != nil {
			return false
		}
		if found {
			return true
		}
		var held bool
		err = l.call(ctx, func(ctx context.Context) error {
			_, err := l.c.StatObject(ctx, l.bucket, lk, minio.StatObjectOptions{})
			held = err == nil
			return err
		})
		if err != nil && !notFound(err) {
			return false
		}
		if !held {
			return true
		}
	}
}

// claim is a render the layer waits for: ek is the entry's object, lk the
// lease this node holds ("" when none).
type claim struct {
	l      *Layer
	ek, lk string
	once   sync.Once
}

// Finish implements cache.Claim.
func (c *claim) Finish(e *store.Entry) {
	c.once.Do(func() {
		if e == nil {
			c.l.q.release(c.lk)
			return
		}
		v, err := store.Encode(*e)
		if err != nil {
			c.l.q.release(c.lk)
			return
		}
		c.l.q.put(c.ek, v, c.lk)
	})
}

// PurgedAt implements cache.Shared.
func (l *Layer) PurgedAt(id string, maxAge time.Duration) time.Time {
	g, ok := l.gens.Get(id)
	if ok && l.now().Sub(g.read) <= maxAge {
		return g.at
	}
	v, _, _ := l.genFlight.Do(id, func() (any, error) {
		data, _, _, found, err := l.fetch(context.Background(), l.keys.generation(id))
		if err != nil {
			return g.at, nil // unknown: what was last known stands, and is asked again next time
		}
		var at time.Time
		if found {
			n, perr := strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64)
			if perr == nil {
				at = time.Unix(0, n)
			}
		}
		l.gens.Add(id, generation{at: at, read: l.now()})
		return at, nil
	})
	return v.(time.Time)
}

// purgeWait bounds a purge's listing and deletes.
const purgeWait = 30 * time.Second

// PurgeID implements cache.Shared: the generation first (waited for, so
// that no node takes an entry of id written before now from the moment it
// reads it), then the entries themselves, in the background.
func (l *Layer) PurgeID(id string) {
	at := l.now()
	body := []byte(strconv.FormatInt(at.UnixNano(), 10))
	err := l.call(context.Background(), func(ctx context.Context) error {
		_, err := l.c.PutObject(ctx, l.bucket, l.keys.generation(id), bytes.NewReader(body), int64(len(body)),
			minio.PutObjectOptions{ContentType: "text/plain"})
		return err
	})
	if err != nil {
		l.log.Warn("shared cache: purge not recorded; other nodes keep serving the identifier's entries until they revalidate its source",
			"id", id, "error", err)
		return
	}
	l.gens.Add(id, generation{at: at, read: at})
	l.stats.purges.Add(1)
	// The entries themselves go in the background: from now on they are
	// never served (the generation), and a listing of many objects must
	// not hold up the request or the admin call that purged.
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		l.deleteEntries(id)
	}()
}

// deleteEntries deletes every shared entry of id: one prefix listing, one
// batch delete.
func (l *Layer) deleteEntries(id string) {
	n := 0
	err := l.callFor(context.Background(), purgeWait, func(ctx context.Context) error {
		objs := l.c.ListObjects(ctx, l.bucket, minio.ListObjectsOptions{Prefix: l.keys.entries(id), Recursive: true})
		todo := make(chan minio.ObjectInfo)
		listed := make(chan struct{})
		var listErr error // written before listed closes
		go func() {
			defer close(listed)
			defer close(todo)
			for o := range objs {
				if o.Err != nil {
					listErr = o.Err
					continue
				}
				select {
				case todo <- o:
					n++
				case <-ctx.Done():
					listErr = ctx.Err()
					return
				}
			}
		}()
		var rmErr error
		for e := range l.c.RemoveObjects(ctx, l.bucket, todo, minio.RemoveObjectsOptions{}) {
			rmErr = e.Err
		}
		<-listed
		return errors.Join(listErr, rmErr)
	})
	if err != nil {
		// The generation holds: what is left is never served, and expires.
		l.log.Warn("shared cache: purge left entries behind (recorded: they are not served)", "id", id, "error", err)
	}
	l.log.Info("shared cache purged", "id", id, "objects", n)
}

// Stats implements cache.Shared.
func (l *Layer) Stats() cache.SharedStats {
	c := &l.stats
	state, opens := l.br.state()
	n, b := l.q.size()
	return cache.SharedStats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Corrupt: c.corrupt.Load(), Purged: c.purged.Load(),
		Writes: c.writes.Load(), Bytes: c.bytes.Load(), Drops: c.drops.Load(), Errors: c.errors.Load(),
		Rejected: c.rejected.Load(), Refreshes: c.refreshes.Load(),
		LeasesWon: c.won.Load(), LeaseWaits: c.waits.Load(), Takeovers: c.takeovers.Load(),
		WaitHits: c.waitHits.Load(), WaitTimeouts: c.waitTimeouts.Load(), Purges: c.purges.Load(),
		Breaker: state, BreakerOpens: opens, QueueLen: n, QueueBytes: b, Lifecycle: l.lifecycle.Load(),
	}
}

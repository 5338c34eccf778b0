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
// breaker (internal/breaker); a store that is down, slow, refusing or gone turns
// into misses and dropped writes, never into a failed request.
//
// Files: keys.go (the bucket's layout), call.go (an operation under the
// timeout and the breaker), entry.go (reading and refreshing an entry),
// claim.go and lease.go (a miss: look, lease or wait), queue.go (the
// background writes), purge.go (generations), lifecycle.go (expiry); the
// breaker is internal/breaker's.
package shared

import (
	"errors"
	"fmt"
	"github.com/iiif-proxy/iiif-proxy/internal/breaker"
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
	br     breaker.Breaker
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
	l.br = breaker.Breaker{Limit: breakerFailures, Cooldown: breakerMinBackoff, MaxCooldown: breakerMaxBackoff, Now: cfg.Clock}
	l.br.OnChange = func(open bool) {
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

// The breaker: three failures in a row open it; one probe after 1 s,
// doubling to 30 s. A request path must not wait on a dead store for long.
const (
	breakerFailures   = 3
	breakerMinBackoff = time.Second
	breakerMaxBackoff = 30 * time.Second
)

// Stats implements cache.Shared.
func (l *Layer) Stats() cache.SharedStats {
	c := &l.stats
	state, _, opens := l.br.State()
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

// Package cache is the cache policy of iiif-proxy, per tier (tile,
// thumbnail, info, other): a memory LRU in front of the tier's store, and
// optionally a layer shared by a fleet of nodes behind it (Shared; package
// cache/shared keeps it on S3), revalidation of old entries against their
// source's identity, one fill per key however many requests miss at once
// (detached from any one client and stopped when the last of them gives
// up), purge by identifier, the one ETag function, and the one cache of
// source descriptions.
//
// It knows nothing of HTTP: bodies go in and out as byte slices, and a disk
// hit is read into a buffer the caller passes in (the proxy passes its
// pooled response buffer, so a hit is not copied again). Time comes from
// Config.Clock, so tests move it instead of sleeping.
//
// Freshness: an entry older than its tier's Revalidate is checked against
// its source (Renderer.Info: a file's inode, size and times; an upstream's
// validators, asked with a conditional request). Unchanged, it is refreshed
// and served; changed or gone, every derivative of the identifier is purged
// and the caller renders again; unreachable (renderer.UnavailableError), the
// old entry is served as stale (stale-if-error). Within
// Config.StaleWhileRevalidate past Revalidate, the entry is served at once
// and one background check runs instead (stale-while-revalidate).
package cache

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/iiif-proxy/iiif-proxy/cache/cacheconf"
	"github.com/iiif-proxy/iiif-proxy/internal/lru"
	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/store"
)

// Store is what the cache needs from one tier's disk store.
type Store interface {
	Get(key []byte) (store.Entry, error)
	GetAppend(key, dst []byte) (store.Entry, []byte, error)
	// Lookup is Get without counting a miss: the fill's second look, whose
	// request already counted its miss at the first.
	Lookup(key []byte) (store.Entry, error)
	Put(key []byte, e store.Entry) (store.Entry, error)
	Refresh(key []byte, storedAt time.Time) error
	Touch(key []byte) error
	PurgePrefix(prefix []byte) (int, error)
	PurgeAll() error
	Stats() store.Stats
}

var _ Store = (*store.Tier)(nil)

// TierConfig configures one cache tier: its store and memory, and the
// Policy it is served by (package cacheconf owns the tiers' settings, their
// defaults and checks).
type TierConfig struct {
	// Store is the tier's disk cache. Nil means the tier is not cached on
	// disk (off, or its directory could not be opened).
	Store Store
	// MemLen is how many entries of the tier stay in memory in front of the
	// disk (RAIS's TileCacheLen for tiles). Zero means none.
	MemLen int
	// Policy is Revalidate, CacheControl and MaxEntryBytes; the zero Policy
	// never revalidates, sends no Cache-Control and bounds no entry.
	cacheconf.Policy
}

// Config configures a Cache.
type Config struct {
	// Tiers configures each tier, indexed by rules.Tier. A zero TierConfig
	// is an uncached tier: its requests still collapse into one fill.
	Tiers [rules.NumTiers]TierConfig
	// SourceCacheLen is how many source descriptions stay in memory, so a
	// hit touches neither the source nor the renderer (RAIS's
	// InfoCacheLen). Zero means none (concurrent misses still share one
	// Info call).
	SourceCacheLen int
	// RenderTimeout bounds one fill. Zero means
	// cacheconf.DefaultRenderTimeout (60s).
	RenderTimeout time.Duration
	// RenderWait bounds how long a request waits for a fill another request
	// started; the fill goes on and is stored. Zero means
	// cacheconf.DefaultRenderWait (30s).
	RenderWait time.Duration
	// StaleWhileRevalidate is how long past its tier's Revalidate an entry
	// is still served at once while one background check of its source
	// runs; older entries are checked before they are served. Zero means
	// every check happens before serving.
	StaleWhileRevalidate time.Duration
	// OnSourceChanged is called, after the purge, with each identifier
	// whose derivatives revalidation purged because its source changed or
	// went (the proxy forwards it to the caches in front, purge package).
	// Nil means nobody is told.
	OnSourceChanged func(id string)
	// Clock tells the time. Nil means time.Now.
	Clock func() time.Time
	// Logger receives fault and purge logs. Nil means slog.Default().
	Logger *slog.Logger
	// Shared is the object-store layer behind the local tiers of every
	// cached tier (see Shared). Nil means none: each node caches alone.
	Shared Shared
}

// How says how a response was produced (the proxy's X-Cache).
type How uint8

const (
	Hit         How = iota // from memory or disk, fresh
	Revalidated            // from the cache, after checking the source is unchanged
	Stale                  // from the cache, the source unreachable (stale-if-error) or being checked in the background (stale-while-revalidate)
	Miss                   // rendered for this request
	Collapsed              // rendered for a concurrent request with the same key
	Bypass                 // the tier is not cached
	SharedHit              // from the shared layer (another node rendered it)
)

var howNames = [...]string{"HIT", "REVALIDATED", "STALE", "MISS", "COLLAPSED", "BYPASS", "SHARED"}

func (h How) String() string { return howNames[h] }

// Cache is the cache of every tier.
type Cache struct {
	cfg      Config
	r        renderer.Renderer
	now      func() time.Time
	log      *slog.Logger
	tiers    []*Tier
	sources  *lru.Cache[string, described]
	describe singleflight.Group // one Info per identifier at a time
	flight   singleflight.Group // one fill per key at a time
	waits    waiters
	checks   sync.Map // keys being revalidated in the background
	timeouts atomic.Pointer[timeouts]
	bg       sync.WaitGroup // background revalidations, for Close
}

type timeouts struct{ render, wait time.Duration }

// New returns a cache over r's sources.
func New(cfg Config, r renderer.Renderer) *Cache {
	if cfg.RenderTimeout == 0 {
		cfg.RenderTimeout = cacheconf.DefaultRenderTimeout
	}
	if cfg.RenderWait == 0 {
		cfg.RenderWait = cacheconf.DefaultRenderWait
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Cache{cfg: cfg, r: r, now: cfg.Clock, log: cfg.Logger,
		sources: lru.New[string, described](cfg.SourceCacheLen)}
	for i := range rules.NumTiers {
		tc := cfg.Tiers[i]
		t := &Tier{name: i.String(), cfg: tc, mem: lru.New[string, memEntry](tc.MemLen)}
		t.live.Store(&tc)
		c.tiers = append(c.tiers, t)
	}
	c.timeouts.Store(&timeouts{cfg.RenderTimeout, cfg.RenderWait})
	return c
}

// Wait waits for the background revalidations running now (tests, shutdown).
func (c *Cache) Wait() { c.bg.Wait() }

// Tier returns tier t.
func (c *Cache) Tier(t rules.Tier) *Tier { return c.tiers[t] }

// Tiers returns every tier, indexed by rules.Tier.
func (c *Cache) Tiers() []*Tier { return c.tiers }

// Tier is one cache tier at run time.
type Tier struct {
	name   string
	cfg    TierConfig                 // Store and MemLen; the rest is read from live
	live   atomic.Pointer[TierConfig] // the settings SIGHUP may change
	mem    *lru.Cache[string, memEntry]
	stats  tierCounters
	logged atomic.Int64 // unix seconds of the last fault logged, to rate-limit
}

// Name is the tier's name ("tile", "thumbnail", "info", "other").
func (t *Tier) Name() string { return t.name }

// Conf returns the tier's live settings.
func (t *Tier) Conf() *TierConfig { return t.live.Load() }

// Cached reports whether the tier keeps anything, in memory or on disk.
func (t *Tier) Cached() bool { return t.cfg.Store != nil || t.cfg.MemLen > 0 }

// Store is the tier's disk store, nil when it has none.
func (t *Tier) Store() Store { return t.cfg.Store }

// memEntry is an entry held in memory, and when its disk copy was last
// marked as read: hits served from memory never reach the store, so they
// touch it now and then lest a hot entry expire on disk.
type memEntry struct {
	store.Entry
	touched time.Time
}

// memTouchEvery is how often a memory hit marks its disk copy as read.
const memTouchEvery = time.Hour

// SetTimeouts changes RenderTimeout and RenderWait while serving.
func (c *Cache) SetTimeouts(render, wait time.Duration) {
	c.timeouts.Store(&timeouts{render, wait})
}

// Timeouts returns RenderTimeout and RenderWait in force.
func (c *Cache) Timeouts() (render, wait time.Duration) {
	t := c.timeouts.Load()
	return t.render, t.wait
}

// SetTierConfig changes a tier's Revalidate, CacheControl and
// MaxEntryBytes while serving; its Store and MemLen stay.
func (c *Cache) SetTierConfig(t rules.Tier, nc TierConfig) {
	tt := c.tiers[t]
	live := *tt.Conf()
	live.Policy = nc.Policy
	tt.live.Store(&live)
}

// Source describes id, from memory when it can; concurrent calls for the
// same identifier share one Info.
func (c *Cache) Source(ctx context.Context, id string) (*renderer.Source, error) {
	if d, ok := c.sources.Get(id); ok {
		return d.src, nil
	}
	v, err, _ := c.describe.Do(id, func() (any, error) {
		if d, ok := c.sources.Get(id); ok {
			return d.src, nil
		}
		// Not the caller's context: the description is shared with every
		// request that joined, and (fasthttp) must not hold a request's.
		src, err := c.r.Info(context.Background(), id)
		var ue *renderer.UnavailableError
		if errors.As(err, &ue) {
			if stored := c.storedSource(id); stored != nil {
				return stored, nil // not kept: ask again next time
			}
		}
		if err != nil {
			return nil, err
		}
		c.sources.Add(id, described{src, c.now()})
		return src, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*renderer.Source), nil
}

// described is a source description and when the renderer gave it.
type described struct {
	src *renderer.Source
	at  time.Time
}

// storedSource describes id from its info.json in the info tier, when the
// renderer can (renderer.Describer: an upstream that cannot be asked now),
// so that cached derivatives keep their canonical keys and are served.
func (c *Cache) storedSource(id string) *renderer.Source {
	d, ok := c.r.(renderer.Describer)
	st := c.tiers[rules.TierInfo].cfg.Store
	if !ok || st == nil {
		return nil
	}
	// Either stored version gives the size; the upstream's own document
	// (the version it speaks) is preferred, so that its info.json is still
	// served as it wrote it. The other is one the proxy built from it.
	doc, _ := c.r.(renderer.Documenter)
	var other *renderer.Source
	for _, v := range []rules.Version{rules.V3, rules.V2} {
		e, err := st.Get(InfoKey(id, v))
		if err != nil {
			continue
		}
		src, err := d.Describe(id, e.Body, e.SourceIdentity, e.LastModified)
		if err != nil {
			continue
		}
		if doc == nil {
			return src
		}
		if _, own := doc.Document(src, v); own {
			return src
		}
		if other == nil {
			other = src
		}
	}
	return other
}

// ForgetSources drops every source description held in memory.
func (c *Cache) ForgetSources() { c.sources.RemoveFunc(func(string) bool { return true }) }

// fault counts a store failure and logs it at most once a minute per tier
// (a degraded tier fails every request until it recovers); the request goes
// on uncached.
func (c *Cache) fault(t *Tier, op faultOp, err error) {
	if errors.Is(err, store.ErrOpening) {
		// The tier is still opening (start-up: the port listens before
		// the databases are open): served uncached, and neither a fault
		// nor worth a warning. The store counts it (Stats.Unavailable).
		return
	}
	t.stats.faults[op].Add(1)
	now := c.now().Unix()
	if last := t.logged.Load(); now >= last+60 && t.logged.CompareAndSwap(last, now) {
		c.log.Warn("cache fault: serving uncached", "tier", t.name, "op", op.String(), "error", err)
	}
}

// PurgeID drops every cached derivative of id, in every tier, in memory, on
// disk and in the shared layer (whose purge the other nodes learn on their
// next revalidation of id), and forgets its source description. Keys start
// with the identifier and a NUL (see Key).
func (c *Cache) PurgeID(id string) int {
	n := c.purgeLocal(id)
	if c.cfg.Shared != nil {
		c.cfg.Shared.PurgeID(id)
	}
	return n
}

// purgeLocal is PurgeID on this node only: memory and disk.
func (c *Cache) purgeLocal(id string) int {
	prefix := append([]byte(id), 0)
	n := 0
	for _, t := range c.tiers {
		t.mem.RemoveFunc(func(k string) bool { return bytes.HasPrefix([]byte(k), prefix) })
		if t.cfg.Store != nil {
			m, err := t.cfg.Store.PurgePrefix(prefix)
			if err != nil {
				c.fault(t, opPurge, err)
			}
			n += m
		}
	}
	c.sources.Remove(id)
	c.log.Info("purged", "id", id, "entries", n)
	return n
}

// PurgeTier drops every entry of tier t, in memory and on disk.
func (c *Cache) PurgeTier(t rules.Tier) {
	tt := c.tiers[t]
	tt.mem.RemoveFunc(func(string) bool { return true })
	if tt.cfg.Store != nil {
		if err := tt.cfg.Store.PurgeAll(); err != nil {
			c.fault(tt, opPurge, err)
		}
	}
	c.log.Info("purged tier", "tier", tt.name)
}

// Key is an identifier and what the request renders:
// "ID\x00x,y,w,h/ow,oh/deg/quality.ext".
func Key(id string, res rules.Resolved) []byte {
	k := make([]byte, 0, len(id)+48)
	k = append(k, id...)
	k = append(k, 0)
	return res.AppendKey(k)
}

// NormalisedKey is "ID\x00~{normalised request}": the key of an image
// whose source's size is unknown (sidecar mode, an upstream whose info.json
// cannot be had), e.g. "ID\x00~full/max/0/default.jpg". The "~" keeps it
// apart from every canonical key (Key: a digit follows the NUL) and info
// key ("info.json"); it starts with the identifier and a NUL, so PurgeID
// drops it with the rest.
func NormalisedKey(id string, req rules.Request) []byte {
	k := make([]byte, 0, len(id)+48)
	k = append(k, id...)
	k = append(k, 0, '~')
	return req.AppendNormalised(k)
}

// InfoKey is "ID\x00info.json 3": one entry per image and version.
func InfoKey(id string, v rules.Version) []byte {
	k := make([]byte, 0, len(id)+16)
	k = append(k, id...)
	k = append(k, 0)
	k = append(k, "info.json "...)
	return append(k, v.String()...)
}

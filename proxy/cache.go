package proxy

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"

	"github.com/iiif-proxy/iiif-proxy/internal/lru"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/store"
)

// Store is what the proxy needs from one cache tier's disk store.
type Store interface {
	Get(key []byte) (store.Entry, error)
	GetAppend(key, dst []byte) (store.Entry, []byte, error)
	Lookup(key []byte) (store.Entry, error)
	Put(key []byte, e store.Entry) (store.Entry, error)
	Refresh(key []byte, storedAt time.Time) error
	Touch(key []byte) error
	PurgePrefix(prefix []byte) (int, error)
	PurgeAll() error
	Stats() store.Stats
}

var _ Store = (*store.Tier)(nil)

// TierConfig configures one cache tier in the proxy.
type TierConfig struct {
	// Store is the tier's disk cache. Nil means the tier is not cached on
	// disk (off, or its directory could not be opened).
	Store Store
	// MemLen is how many entries of the tier stay in memory in front of the
	// disk (RAIS's TileCacheLen for tiles). Zero means none.
	MemLen int
	// Revalidate is the age after which an entry's source is checked before
	// the entry is served. Zero means never.
	Revalidate time.Duration
	// CacheControl is sent with the tier's responses. Empty means none.
	CacheControl string
	// MaxEntryBytes is the largest response the tier stores, on disk and in
	// memory; larger ones are served but not stored (and counted). Zero
	// means no bound beyond the store's own budget.
	MaxEntryBytes int64
}

// How a response was produced, as X-Cache says.
const (
	xHit         = "HIT"         // from memory or disk, fresh
	xRevalidated = "REVALIDATED" // from cache, after checking the source is unchanged
	xMiss        = "MISS"        // rendered for this request
	xCollapsed   = "COLLAPSED"   // rendered for a concurrent request with the same key
	xBypass      = "BYPASS"      // the tier is not cached (off, or its store failed)
)

// tier is a cache tier at run time.
type tier struct {
	name   string
	cfg    TierConfig                 // Store and MemLen; the rest is read from live
	live   atomic.Pointer[TierConfig] // the settings SIGHUP may change
	mem    *lru.Cache[string, memEntry]
	faults atomic.Uint64
	logged atomic.Int64 // unix seconds of the last fault logged, to rate-limit
}

// memEntry is an entry held in memory, and when its disk copy was last
// marked as read: hits served from memory never reach the store, so they
// touch it now and then lest a hot entry expire on disk.
type memEntry struct {
	store.Entry
	touched time.Time
}

// memTouchEvery is how often a memory hit marks its disk copy as read.
const memTouchEvery = time.Hour

// fault counts a store failure and logs it at most once a minute per tier
// (a degraded tier fails every request until it recovers); the request goes
// on uncached.
func (p *Proxy) fault(t *tier, op string, err error) {
	t.faults.Add(1)
	p.metrics.faults.WithLabelValues(t.name, op).Inc()
	now := time.Now().Unix()
	if last := t.logged.Load(); now >= last+60 && t.logged.CompareAndSwap(last, now) {
		p.log.Warn("cache fault: serving uncached", "tier", t.name, "op", op, "error", err)
	}
}

// cacheKey is an identifier and what the request renders: "ID\x00x,y,w,h/ow,oh/deg/quality.ext".
func cacheKey(id string, res rules.Resolved) []byte {
	k := make([]byte, 0, len(id)+48)
	k = append(k, id...)
	k = append(k, 0)
	return res.AppendKey(k)
}

// infoKey is "ID\x00info.json 3": one entry per image and version, never
// per Host (see Proxy.info).
func infoKey(id string, v rules.Version) []byte {
	k := make([]byte, 0, len(id)+16)
	k = append(k, id...)
	k = append(k, 0)
	k = append(k, "info.json "...)
	return append(k, v.String()...)
}

// etag is a strong validator for body.
func etag(body []byte) string {
	return `"` + strconv.FormatUint(xxhash.Sum64(body), 16) + `"`
}

// lookup says what the cache had.
type lookup uint8

const (
	found   lookup = iota
	missing        // not cached
	changed        // cached, but its source changed: every derivative was purged
)

// cached looks key up in memory, then on disk, revalidating an entry older
// than the tier's Revalidate against the source's identity
// (renderer.Identity). A changed source purges every derivative of the
// identifier, in every tier, info.json included.
//
// A disk hit is read straight into ctx's pooled response buffer: the
// returned entry's Body aliases it, and send must not set it again.
func (p *Proxy) cached(ctx *fasthttp.RequestCtx, t *tier, key []byte, id string) (e store.Entry, how string, l lookup) {
	var ok bool
	how = xHit
	var m memEntry
	if m, ok = t.mem.Get(string(key)); ok {
		e = m.Entry
		p.metrics.hits[t.name].mem.Inc()
		if t.cfg.Store != nil && time.Since(m.touched) > memTouchEvery {
			if err := t.cfg.Store.Touch(key); err != nil && !errors.Is(err, store.ErrNotFound) {
				p.fault(t, "touch", err)
			}
			m.touched = time.Now()
			t.mem.Add(string(key), m)
		}
	} else if t.cfg.Store != nil {
		var err error
		buf := ctx.Response.SwapBody(nil)
		if buf == nil {
			buf = getBodyBuf() // send hands the last one to the socket
		}
		e, buf, err = t.cfg.Store.GetAppend(key, buf[:0])
		ctx.Response.SwapBody(buf)
		switch {
		case err == nil:
			ok = true
			p.metrics.hits[t.name].disk.Inc()
			if t.cfg.MemLen > 0 {
				mem := e
				mem.Body = bytes.Clone(e.Body)
				t.mem.Add(string(key), memEntry{mem, time.Now()})
			}
			e.Body = nil // it is in the response already
		case !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrCorrupt):
			p.fault(t, "get", err)
		}
	}
	if !ok {
		return e, "", missing
	}
	if rv := t.conf().Revalidate; rv > 0 && time.Since(e.StoredAt) > rv {
		src, err := p.r.Info(context.Background(), id)
		// The source's identity (inode, size, mtime and ctime in ns), not
		// its mtime: cp -p, rsync -a and tar x keep the mtime of a file they
		// replace. An entry stored before identities were (store format
		// 2) has none and counts as changed: comparing its whole-second
		// mtime is exactly what let replaced files be served for ever, and
		// the price is one render per image the first time it revalidates.
		if err != nil || e.SourceIdentity == "" || src.Identity.String() != e.SourceIdentity {
			// Changed, gone or unreadable: every derivative is suspect.
			p.metrics.revalidations[t.name].changed.Inc()
			p.purgeID(id)
			ctx.Response.ResetBody()
			return e, "", changed
		}
		p.metrics.revalidations[t.name].unchanged.Inc()
		e.StoredAt = time.Now()
		if t.cfg.Store != nil {
			if err := t.cfg.Store.Refresh(key, e.StoredAt); err != nil && !errors.Is(err, store.ErrNotFound) {
				p.fault(t, "refresh", err)
			}
		}
		if e.Body != nil {
			t.mem.Add(string(key), memEntry{e, time.Now()})
		}
		how = xRevalidated
	}
	return e, how, found
}

// flightResult is what a collapsed render hands its callers; leader tells
// the caller that started the flight from those that joined it, rendered
// whether the flight rendered or found the entry stored meanwhile.
type flightResult struct {
	e        store.Entry
	leader   *byte
	rendered bool
}

var errRenderWait = errors.New("timed out waiting for a render of the same image")

// waiters counts the requests waiting on each flight, so that a render
// nobody waits for any more stops (the renderer kills its libvips pipeline
// when its context ends) instead of holding a worker until RenderTimeout.
type waiters struct {
	mu sync.Mutex // protects m
	m  map[string]*flightCtx
}

// flightCtx is the context of one flight and how many requests wait on it.
type flightCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
	n      int // requests waiting; protected by waiters.mu
}

// join counts one more request waiting on key's flight, creating its
// context (bounded by timeout) for the first one.
func (w *waiters) join(key string, timeout time.Duration) *flightCtx {
	w.mu.Lock()
	defer w.mu.Unlock()
	fc := w.m[key]
	if fc == nil {
		if w.m == nil {
			w.m = make(map[string]*flightCtx)
		}
		fc = &flightCtx{}
		fc.ctx, fc.cancel = context.WithTimeout(context.Background(), timeout)
		w.m[key] = fc
	}
	fc.n++
	return fc
}

// leave counts a request that stopped waiting (it got its result, or gave up
// at RenderWait). When the last one leaves, the flight's context is
// cancelled: nobody is left to serve the render to.
func (w *waiters) leave(key string, fc *flightCtx) {
	w.mu.Lock()
	fc.n--
	last := fc.n == 0
	if last && w.m[key] == fc {
		delete(w.m, key)
	}
	w.mu.Unlock()
	if last {
		fc.cancel()
	}
}

// done forgets key's flight context once its flight has finished, so the
// next request starts afresh.
func (w *waiters) done(key string, fc *flightCtx) {
	w.mu.Lock()
	if w.m[key] == fc {
		delete(w.m, key)
	}
	w.mu.Unlock()
	fc.cancel()
}

// fill renders key once however many requests want it at the same time,
// cached tier or not: the render runs detached from any one client, looks in
// the store again first (a flight only collapses calls that overlap), and
// stores its result. Errors are never cached. The render's context ends at
// RenderTimeout, or as soon as every request waiting for it has given up
// (see waiters).
func (p *Proxy) fill(t *tier, key []byte, render func(context.Context) (store.Entry, error)) (store.Entry, string, error) {
	mine := new(byte)
	k := string(key)
	timeouts := p.timeouts.Load()
	timer := time.NewTimer(timeouts.wait)
	defer timer.Stop()
	for attempt := 0; ; attempt++ {
		fc := p.waits.join(k, timeouts.render)
		ch := p.flight.DoChan(k, func() (any, error) {
			defer p.waits.done(k, fc)
			if t.cfg.Store != nil {
				// Lookup: this request's miss was counted by its first look.
				if e, err := t.cfg.Store.Lookup(key); err == nil {
					return flightResult{e, mine, false}, nil
				}
			}
			p.metrics.misses[t.name].Inc()
			e, err := render(fc.ctx)
			if err != nil {
				return nil, err
			}
			e.StoredAt = time.Now()
			e.ETag = etag(e.Body)
			if max := t.conf().MaxEntryBytes; max > 0 && int64(len(e.Body)) > max {
				p.metrics.tooLarge[t.name].Inc()
				return flightResult{e, mine, true}, nil // served, not stored
			}
			if t.cfg.Store != nil {
				if stored, err := t.cfg.Store.Put(key, e); err != nil {
					p.fault(t, "put", err)
				} else {
					e = stored
				}
			}
			t.mem.Add(string(key), memEntry{e, time.Now()})
			return flightResult{e, mine, true}, nil
		})
		select {
		case r := <-ch:
			p.waits.leave(k, fc)
			if r.Err != nil {
				if errors.Is(r.Err, context.Canceled) && attempt == 0 {
					// This request joined a flight just as its last
					// waiters abandoned it: start one of its own.
					continue
				}
				return store.Entry{}, "", r.Err
			}
			fr := r.Val.(flightResult)
			switch {
			case !fr.rendered:
				p.metrics.hits[t.name].disk.Inc()
				return fr.e, xHit, nil
			case fr.leader != mine:
				p.metrics.collapsed[t.name].Inc()
				return fr.e, xCollapsed, nil
			case t.cfg.Store == nil && t.cfg.MemLen <= 0:
				return fr.e, xBypass, nil
			}
			return fr.e, xMiss, nil
		case <-timer.C:
			p.waits.leave(k, fc)
			return store.Entry{}, "", errRenderWait
		}
	}
}

// purgeID drops every cached derivative of id, in every tier, in memory and
// on disk, and forgets its source description.
func (p *Proxy) purgeID(id string) int {
	prefix := append([]byte(id), 0)
	n := 0
	for _, t := range p.tiers {
		t.mem.RemoveFunc(func(k string) bool { return bytes.HasPrefix([]byte(k), prefix) })
		if t.cfg.Store != nil {
			m, err := t.cfg.Store.PurgePrefix(prefix)
			if err != nil {
				p.fault(t, "purge", err)
			}
			n += m
		}
	}
	p.sources.Remove(id)
	p.log.Info("purged", "id", id, "entries", n)
	return n
}

// conditional answers 304 when the client's validators match e. If-None-Match
// wins over If-Modified-Since, as RFC 9110 says.
func conditional(ctx *fasthttp.RequestCtx, e store.Entry) bool {
	if inm := ctx.Request.Header.Peek("If-None-Match"); len(inm) > 0 {
		return etagMatch(inm, e.ETag)
	}
	return !ctx.IfModifiedSince(e.LastModified)
}

// etagMatch applies the weak comparison of If-None-Match.
func etagMatch(header []byte, tag string) bool {
	for part := range bytes.SplitSeq(header, []byte(",")) {
		part = bytes.TrimSpace(part)
		part = bytes.TrimPrefix(part, []byte("W/"))
		if string(part) == "*" || string(part) == tag {
			return true
		}
	}
	return false
}

// send writes a cached or rendered entry, or a 304 when the client has it.
// An entry with a nil Body is already in the response buffer (a disk hit).
// held, when not nil, is a reservation of in-flight bytes made for this
// response: send resizes it to the body and hands it to the body stream,
// setting *held to 0; a 304 leaves it to the caller to release.
func (p *Proxy) send(ctx *fasthttp.RequestCtx, t *tier, e store.Entry, how string, held *int64) {
	h := &ctx.Response.Header
	h.SetCanonical(hdrETag, s2b(e.ETag))
	h.SetCanonical(hdrLastModified, p.httpDate(e.LastModified))
	if cc := t.conf().CacheControl; cc != "" {
		h.SetCanonical(hdrCacheControl, s2b(cc))
	}
	h.SetCanonical(hdrXCache, s2b(how))
	h.SetCanonical(hdrXCacheTier, s2b(t.name))
	h.SetCanonical(hdrACEH, exposed)
	if conditional(ctx, e) {
		notModified(ctx)
		return
	}
	h.SetContentTypeBytes(s2b(e.ContentType))
	body, pooled := e.Body, false
	if body == nil {
		body, pooled = ctx.Response.SwapBody(nil), true // a disk hit, read into the response
	}
	n := int64(len(body))
	if held != nil {
		ok := p.budget.resize(*held, n)
		*held = 0 // resized into the stream's, or released
		if !ok {
			p.fail(ctx, errBusy)
			return
		}
	} else if !p.budget.acquire(n) {
		p.fail(ctx, errBusy)
		return
	}
	ctx.Response.SetBodyStream(newBodyReader(body, &p.budget, pooled), len(body))
}

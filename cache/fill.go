package cache

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/store"
)

// ErrRenderWait says a request gave up waiting for a fill that another
// request started (after RenderWait); the fill goes on and is stored.
var ErrRenderWait = errors.New("timed out waiting for a render of the same image")

// flightResult is what a collapsed fill hands its callers; leader tells
// the caller that started the flight from those that joined it, rendered
// whether the flight rendered or found the entry stored meanwhile.
type flightResult struct {
	e        store.Entry
	leader   *byte
	rendered bool
	shared   bool // found in the shared layer
}

// waiters counts the requests waiting on each flight, so that a render
// nobody waits for any more stops (the libvips renderer kills its pipeline,
// the upstream client drops its request, when the context ends) instead of
// holding a worker until RenderTimeout.
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
// context (bounded by timeout) for the first one; first says this request
// created it (it starts the flight).
func (w *waiters) join(key string, timeout time.Duration) (fc *flightCtx, first bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fc = w.m[key]
	if fc == nil {
		if w.m == nil {
			w.m = make(map[string]*flightCtx)
		}
		fc = &flightCtx{}
		fc.ctx, fc.cancel = context.WithTimeout(context.Background(), timeout)
		w.m[key] = fc
		first = true
	}
	fc.n++
	return fc, first
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

// Fill renders key once however many requests want it at the same time,
// cached tier or not: the render runs detached from any one client, looks in
// the store again first (a flight only collapses calls that overlap), then
// in the shared layer when there is one (whose hit is stored locally and
// served as SharedHit, and which may hold the flight up to RenderWait while
// another node renders the key), and stores its result with its ETag, in
// the shared layer too (queued, not waited for). Errors are never cached. The request
// that starts a flight waits for it up to RenderTimeout, the ones that join
// it up to RenderWait; the render's context ends at RenderTimeout, or as
// soon as every request waiting for it has given up (see waiters). The
// entry's Body is shared: do not modify it.
func (c *Cache) Fill(t rules.Tier, key []byte, render func(context.Context) (store.Entry, error)) (store.Entry, How, error) {
	tt := c.tiers[t]
	mine := new(byte)
	k := tt.name + "\x00" + string(key)
	to := c.timeouts.Load()
	var timer *time.Timer
	for attempt := 0; ; attempt++ {
		fc, first := c.waits.join(k, to.render)
		if timer == nil {
			// The first request of a flight would cancel the render by
			// leaving at RenderWait (it is usually the only waiter), so a
			// render longer than RenderWait could never finish: it waits
			// as long as the render may take.
			wait := to.wait
			if first {
				wait = max(wait, to.render)
			}
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		ch := c.flight.DoChan(k, func() (any, error) {
			defer c.waits.done(k, fc)
			if tt.cfg.Store != nil {
				// Lookup: this request's miss was counted by its first look.
				if e, err := tt.cfg.Store.Lookup(key); err == nil {
					return flightResult{e: e, leader: mine}, nil
				}
			}
			var claim Claim
			if sh := c.cfg.Shared; sh != nil && tt.Cached() {
				se, found, cl := sh.Claim(fc.ctx, tt.name, key, to.wait)
				if found && c.current(key, se) {
					se = c.keep(tt, key, se)
					return flightResult{e: se, leader: mine, shared: true}, nil
				}
				// Not found, or made from a version of the source this
				// node knows is gone: render, and write it over.
				claim = cl
			}
			tt.stats.misses.Add(1)
			e, err := render(fc.ctx)
			if err != nil {
				if claim != nil {
					claim.Finish(nil)
				}
				return nil, err
			}
			e.StoredAt = c.now()
			if e.LastModified.IsZero() {
				// The source gave no time (an upstream that sends no
				// Last-Modified): the entry's own time stands.
				e.LastModified = e.StoredAt.UTC().Truncate(time.Second)
			}
			e.ETag = ETag(e.Body)
			if max := tt.Conf().MaxEntryBytes; max > 0 && int64(len(e.Body)) > max {
				tt.stats.tooLarge.Add(1)
				if claim != nil {
					claim.Finish(nil)
				}
				return flightResult{e: e, leader: mine, rendered: true}, nil // served, not stored
			}
			if claim != nil {
				// Queued, never waited for: the response does not wait
				// on the object store.
				claim.Finish(&e)
			}
			return flightResult{e: c.keep(tt, key, e), leader: mine, rendered: true}, nil
		})
		select {
		case r := <-ch:
			c.waits.leave(k, fc)
			if r.Err != nil {
				if errors.Is(r.Err, context.Canceled) && attempt == 0 {
					// This request joined a flight just as its last
					// waiters abandoned it: start one of its own.
					continue
				}
				return store.Entry{}, 0, r.Err
			}
			fr := r.Val.(flightResult)
			switch {
			case fr.shared:
				tt.stats.sharedHits.Add(1) // each request that got it
				return fr.e, SharedHit, nil
			case !fr.rendered:
				tt.stats.diskHits.Add(1)
				return fr.e, Hit, nil
			case fr.leader != mine:
				tt.stats.collapsed.Add(1)
				return fr.e, Collapsed, nil
			case !tt.Cached():
				return fr.e, Bypass, nil
			}
			return fr.e, Miss, nil
		case <-timer.C:
			c.waits.leave(k, fc)
			return store.Entry{}, 0, ErrRenderWait
		}
	}
}

// keep stores e under key locally, on disk and in memory, and returns the
// entry as stored (or e, when the store failed).
func (c *Cache) keep(tt *Tier, key []byte, e store.Entry) store.Entry {
	if tt.cfg.Store != nil {
		e = c.put(tt, key, e)
	}
	tt.mem.Add(string(key), memEntry{e, c.now()})
	return e
}

// current says whether a shared entry was made from the version of its
// source this node knows, when it knows one (a description held in
// memory); an entry from a version it knows is gone is not served.
func (c *Cache) current(key []byte, e store.Entry) bool {
	id, _, _ := bytes.Cut(key, []byte{0})
	d, ok := c.sources.Get(string(id))
	return !ok || e.SourceIdentity == "" || d.src.Identity == e.SourceIdentity
}

// storeWait bounds how long a fill waits for its store write. A write
// normally takes microseconds; one that does not return is a store wedged
// by a fault (Pebble parks the goroutine that met a fatal error for ever,
// holding its database's mutex, and the store abandons that database:
// writes already inside it never return). Without a bound, the flight,
// and with it every later request for the key, would wait for ever.
const storeWait = 5 * time.Second

var errStoreStuck = errors.New("store write did not return in time; the entry is served uncached")

// put stores e under key within storeWait and returns the stored entry, or
// e itself when the store failed or did not answer in time (counted as a
// fault; the write goroutine is left to finish or not).
func (c *Cache) put(tt *Tier, key []byte, e store.Entry) store.Entry {
	type result struct {
		e   store.Entry
		err error
	}
	done := make(chan result, 1)
	key = bytes.Clone(key) // the caller's buffer may be reused if we stop waiting
	go func() {
		stored, err := tt.cfg.Store.Put(key, e)
		done <- result{stored, err}
	}()
	timer := time.NewTimer(storeWait)
	defer timer.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			c.fault(tt, opPut, r.err)
			return e
		}
		return r.e
	case <-timer.C:
		c.fault(tt, opPut, errStoreStuck)
		return e
	}
}

package shared

import (
	"context"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/iiif-proxy/iiif-proxy/cache"
	"github.com/iiif-proxy/iiif-proxy/store"
)

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

package cache

import (
	"bytes"
	"context"
	"errors"

	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/store"
)

// State says what Lookup found.
type State uint8

const (
	Found   State = iota
	Missing       // not cached
	Changed       // cached, but its source changed: every derivative was purged
)

// Result is what Lookup found.
type Result struct {
	State State
	How   How // Hit, Revalidated or Stale when Found
	// Entry is the entry found. Its Body is either memory's copy (shared:
	// read it, never write it) or, when InBuf, the bytes read into Buf.
	Entry store.Entry
	// Buf is the dst passed to Lookup, grown by a disk read; hand it back
	// to wherever dst came from whatever the State.
	Buf   []byte
	InBuf bool // Entry.Body is Buf[:len(Entry.Body)] (a disk hit)
}

// Lookup looks key up in tier t's memory, then on its disk (reading the body
// into dst), and checks an entry older than the tier's Revalidate against
// the source id (see the package doc).
func (c *Cache) Lookup(t rules.Tier, key []byte, id string, dst []byte) Result {
	tt := c.tiers[t]
	r := Result{Buf: dst, How: Hit}
	var ok bool
	var m memEntry
	now := c.now()
	if m, ok = tt.mem.Get(string(key)); ok {
		r.Entry = m.Entry
		tt.stats.memHits.Add(1)
		if tt.cfg.Store != nil && now.Sub(m.touched) > memTouchEvery {
			if err := tt.cfg.Store.Touch(key); err != nil && !errors.Is(err, store.ErrNotFound) {
				c.fault(tt, opTouch, err)
			}
			m.touched = now
			tt.mem.Add(string(key), m)
		}
	} else if tt.cfg.Store != nil {
		e, buf, err := tt.cfg.Store.GetAppend(key, dst[:0])
		r.Buf = buf
		switch {
		case err == nil:
			ok = true
			tt.stats.diskHits.Add(1)
			r.Entry, r.InBuf = e, true
			if tt.cfg.MemLen > 0 {
				mem := e
				mem.Body = bytes.Clone(e.Body)
				tt.mem.Add(string(key), memEntry{mem, now})
			}
		case !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrCorrupt):
			c.fault(tt, opGet, err)
		}
	}
	if !ok {
		r.State = Missing
		return r
	}
	rv := tt.Conf().Revalidate
	age := now.Sub(r.Entry.StoredAt)
	if rv <= 0 || age <= rv {
		return r
	}
	if swr := c.cfg.StaleWhileRevalidate; swr > 0 && age <= rv+swr {
		// Served at once; one check per key runs behind it.
		tt.stats.stale.Add(1)
		r.How = Stale
		c.revalidateSoon(tt, key, id, r.Entry)
		return r
	}
	switch c.revalidate(tt, key, id, &r.Entry) {
	case Revalidated:
		r.How = Revalidated
	case Stale:
		r.How = Stale
	default:
		r.State, r.InBuf, r.Entry = Changed, false, store.Entry{}
	}
	return r
}

// revalidate checks e's source and says what to do with e: Revalidated
// (unchanged: refreshed), Stale (the source is unreachable: serve it old,
// stale-if-error) or Miss (changed, gone or undecodable: every derivative
// of id is purged; or purged by another node of the fleet since e was
// stored: this node's derivatives of id are purged).
//
// The source's identity is compared, not its time: cp -p, rsync -a and tar x
// keep the mtime of a file they replace. An entry with no identity (stored
// before identities were, store format 2) counts as changed: comparing a
// whole-second mtime is exactly what let replaced files be served for ever,
// and the price is one render per image the first time it revalidates.
func (c *Cache) revalidate(t *Tier, key []byte, id string, e *store.Entry) How {
	if sh := c.cfg.Shared; sh != nil {
		// Another node purged id after this entry was stored: the purge
		// holds here too (no message bus: the identifier's generation
		// object). The generation read may be a quarter of Revalidate old,
		// so a purge on any node holds here within 1.25 × Revalidate: an
		// entry revalidates once its age passes Revalidate, and what was
		// read a full Revalidate ago could predate the purge, letting the
		// entry live one Revalidate more (2 × in all). A viewer's hundred
		// tiles of one image still cost one read per quarter.
		if p := sh.PurgedAt(id, t.Conf().Revalidate/4); !p.IsZero() && !e.StoredAt.After(p) {
			t.stats.changed.Add(1)
			c.purgeLocal(id)
			return Miss
		}
	}
	var src *renderer.Source
	var err error
	rv, ok := c.r.(renderer.Revalidator)
	prev, known := c.sources.Get(id)
	asked := true
	switch {
	case known && c.now().Sub(prev.at) <= t.Conf().Revalidate:
		// Described within the tier's revalidation age (for another
		// entry of the same image): that answer stands. A viewer's
		// hundred old tiles of one image cost one check, not a hundred.
		src, asked = prev.src, false
	case ok && known:
		src, err = rv.Revalidate(context.Background(), prev.src) // conditional: a 304 moves nothing
	default:
		src, err = c.r.Info(context.Background(), id)
	}
	var ue *renderer.UnavailableError
	if errors.As(err, &ue) {
		t.stats.stale.Add(1)
		return Stale
	}
	if err != nil || e.SourceIdentity == "" || src.Identity != e.SourceIdentity {
		t.stats.changed.Add(1)
		c.PurgeID(id)
		if c.cfg.OnSourceChanged != nil {
			c.cfg.OnSourceChanged(id)
		}
		return Miss
	}
	t.stats.unchanged.Add(1)
	if asked {
		c.sources.Add(id, described{src, c.now()})
	}
	e.StoredAt = c.now()
	if t.cfg.Store != nil {
		if err := t.cfg.Store.Refresh(key, e.StoredAt); err != nil && !errors.Is(err, store.ErrNotFound) {
			c.fault(t, opRefresh, err)
		}
	}
	if m, ok := t.mem.Get(string(key)); ok {
		m.StoredAt = e.StoredAt
		t.mem.Add(string(key), m)
	}
	return Revalidated
}

// revalidateSoon checks e's source in the background, once per key at a
// time: a burst of requests for an old entry starts one check, not one each.
func (c *Cache) revalidateSoon(t *Tier, key []byte, id string, e store.Entry) {
	k := t.name + "\x00" + string(key)
	if _, busy := c.checks.LoadOrStore(k, struct{}{}); busy {
		return
	}
	t.stats.background.Add(1)
	e.Body = nil // not needed, and it may alias the caller's buffer
	key = bytes.Clone(key)
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer c.checks.Delete(k)
		c.revalidate(t, key, id, &e)
	}()
}

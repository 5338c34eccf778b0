package store

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// sweepBatch bounds the work done under one set of locks: this many index
// keys are read, their stripes locked, their entries checked and deleted in
// one batch, and the locks released. Gets never wait for it; a Put waits at
// most one batch (well under a millisecond with a warm cache).
const sweepBatch = 128

// wakeSweeper asks the sweeper to run soon without waiting for it.
func (t *engine) wakeSweeper() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// sweeper runs sweep every SweepEvery, and when woken, until Close; in
// between it flushes the memtable every flushEvery if anything was written.
func (t *engine) sweeper() {
	defer close(t.sweeperDone)
	tick := time.NewTicker(t.cfg.SweepEvery)
	defer tick.Stop()
	flushTick := time.NewTicker(flushEvery)
	defer flushTick.Stop()
	for {
		select {
		case <-t.done:
			return
		case <-flushTick.C:
			t.flushIfDirty()
			continue
		case <-tick.C:
		case <-t.kick:
		}
		if err := t.sweep(); err != nil && !errors.Is(err, ErrClosed) {
			t.log.Warn("store: sweep failed", "err", err)
		}
		if t.cfg.afterSweep != nil {
			t.cfg.afterSweep()
		}
	}
}

// sweep makes one pass: first it drops entries whose access bucket is older
// than Retention, then, while Bytes exceeds MaxBytes, the least recently read
// entries until Bytes is at most 95% of MaxBytes. It returns early on Close.
func (t *engine) sweep() error {
	t.sweepMu.Lock()
	defer t.sweepMu.Unlock()
	if r := t.retentionSecs.Load(); r > 0 {
		cutoff := seconds(t.now()) - r
		if err := t.dropOldest(accessBound(cutoff), -1, dropExpired); err != nil {
			return err
		}
	}
	if limit := t.maxBytes.Load(); limit > 0 && t.bytes.Load() > limit {
		low := limit - limit/100*(100-lowWaterPercent)
		if err := t.dropOldest([]byte{spaceAccess + 1}, low, dropEvicted); err != nil {
			return err
		}
	}
	return nil
}

// dropOldest walks the access index from the front up to (not including)
// upper, deleting entries whose index key is current, and stale index keys,
// in batches of sweepBatch. With target >= 0 it stops once Bytes <= target.
func (t *engine) dropOldest(upper []byte, target int64, why dropReason) error {
	lower := []byte{spaceAccess}
	for {
		select {
		case <-t.done:
			return ErrClosed
		default:
		}
		if target >= 0 && t.bytes.Load() <= target {
			return nil
		}
		next, more, err := t.dropBatch(lower, upper, target, why)
		if err != nil || !more {
			return err
		}
		lower = next
	}
}

// candidate is one access-index key read by dropBatch.
type candidate struct {
	indexKey []byte
	access   int64
	key      []byte // aliases indexKey
}

// dropBatch handles up to sweepBatch index keys in [lower, upper). It returns
// the lower bound for the next batch and whether there may be more.
func (t *engine) dropBatch(lower, upper []byte, target int64, why dropReason) (next []byte, more bool, err error) {
	if err := t.enter(); err != nil {
		return nil, false, err
	}
	defer t.leave()
	t.writeMu.RLock()
	defer t.writeMu.RUnlock()

	cands, err := t.scanIndex(lower, upper)
	if err != nil || len(cands) == 0 {
		return nil, false, err
	}
	next = append(bytes.Clone(cands[len(cands)-1].indexKey), 0)
	more = len(cands) == sweepBatch

	// Lock every stripe involved, in ascending order. Only the sweeper holds
	// more than one stripe (and sweeps are serialized), so this cannot
	// deadlock with Put or touches, which hold one.
	var locked [stripes]bool
	for _, c := range cands {
		locked[t.stripe(c.key)] = true
	}
	for i := range locked {
		if locked[i] {
			t.keyMu[i].Lock()
		}
	}
	defer func() {
		for i := range locked {
			if locked[i] {
				t.keyMu[i].Unlock()
			}
		}
	}()

	b := t.db.NewBatch()
	defer b.Close()
	var d counters
	var dropped, corrupt uint64
	ek := make([]byte, 0, 256)
	for _, c := range cands {
		if target >= 0 && t.bytes.Load()+d.bytes <= target {
			more = false
			break
		}
		ek = appendEntryKey(ek[:0], c.key)
		v, closer, err := t.db.Get(ek)
		if errors.Is(err, pebble.ErrNotFound) {
			_ = b.Delete(c.indexKey, nil) // stale: entry gone
			continue
		}
		if err != nil {
			return nil, false, t.pebbleErr("sweep", err)
		}
		h, ok := parseHeader(v)
		switch {
		case !ok:
			// Corrupt: drop it whatever its real bucket.
			if access, ok := rawAccess(v); ok && access != c.access {
				_ = b.Delete(appendAccessKey(nil, access, c.key), nil)
			}
			corrupt++
		case h.access != c.access:
			_ = b.Delete(c.indexKey, nil) // stale: entry touched since
			closer.Close()
			continue
		default:
			dropped++
		}
		_ = b.DeleteSized(ek, uint32(len(v)), nil)
		_ = b.Delete(c.indexKey, nil)
		d.bytes -= int64(len(c.key) + len(v))
		d.entries--
		closer.Close()
	}
	if b.Empty() {
		return next, more, nil
	}
	if d.entries != 0 {
		_ = b.Merge(keyMeta, d.encode(), nil)
	}
	if err := t.commit(b); err != nil {
		return nil, false, t.pebbleErr("sweep", err)
	}
	t.bytes.Add(d.bytes)
	t.entries.Add(d.entries)
	t.countDrop(why, dropped)
	t.countDrop(dropCorrupt, corrupt)
	return next, more, nil
}

// scanIndex copies up to sweepBatch access-index keys from [lower, upper).
func (t *engine) scanIndex(lower, upper []byte) ([]candidate, error) {
	it, err := t.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, t.pebbleErr("sweep", err)
	}
	cands := make([]candidate, 0, sweepBatch)
	for ok := it.First(); ok && len(cands) < sweepBatch; ok = it.Next() {
		k := bytes.Clone(it.Key())
		access, key, ok := parseAccessKey(k)
		if !ok {
			continue // not an index key; cannot happen within the bounds
		}
		cands = append(cands, candidate{indexKey: k, access: access, key: key})
	}
	if err := it.Close(); err != nil {
		return nil, t.pebbleErr("sweep", err)
	}
	return cands, nil
}

// shed evicts the least recently read entries worth about want bytes, then
// flushes, so that the file system can get the space back: the Tier's answer
// to a file system below MinFree. Space returns when compactions rewrite
// the sstables that held the entries; the deletions carry the size of what
// they delete (DeleteSized), which makes Pebble's picker prefer those
// files. When the whole keyspace can be rewritten within the free space
// (free above the live bytes plus the reserve), it is compacted at once.
func (t *engine) shed(want int64, free int64) error {
	if !t.hooks.canFlush() {
		// Below the reserve no flush or compaction may run, so deletions
		// would free nothing: keep the entries, and serve them.
		return nil
	}
	t.sweepMu.Lock()
	target := max(t.bytes.Load()-want, 0)
	err := t.dropOldest([]byte{spaceAccess + 1}, target, dropEvicted)
	t.sweepMu.Unlock()
	if err != nil {
		return err
	}
	if err := t.enter(); err != nil {
		return err
	}
	defer t.leave()
	if err := t.db.Flush(); err != nil {
		return err
	}
	t.dirty.Store(false)
	if free < 0 || free < t.bytes.Load()+t.hooks.reserve() {
		return nil
	}
	return t.db.Compact(context.Background(), rangeStart, rangeEnd, false)
}

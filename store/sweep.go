package store

import (
	"bytes"
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

// sweeper runs sweepPass every SweepEvery, and when woken, until Close,
// handing reclaim to the reclaimer; in between it flushes the memtable
// every flushEvery if anything was written.
func (t *engine) sweeper() {
	defer close(t.sweeperDone)
	reclaimerDone := make(chan struct{})
	go t.reclaimer(reclaimerDone)
	defer func() { <-reclaimerDone }()
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
			t.measureDisk()
			t.kickReclaim() // a tier gone idle reclaims within reclaimEvery, not at the next sweep
			continue
		case <-tick.C:
		case <-t.kick:
		}
		if err := t.sweepPass(); err != nil && !errors.Is(err, ErrClosed) {
			t.log.Warn("store: sweep failed", "err", err)
		}
		t.kickReclaim()
		if t.cfg.afterSweep != nil {
			t.cfg.afterSweep()
		}
	}
}

// sweep is sweepPass, then reclaim: what the sweeper and the reclaimer do
// between them, in one call (tests, and shedding for space).
func (t *engine) sweep() error {
	if err := t.sweepPass(); err != nil {
		return err
	}
	t.reclaim(false)
	return nil
}

// sweepPass writes the index keys of entries read since their last
// checkpoint (see policy), drops entries not read for Retention, then,
// while Bytes exceeds MaxBytes, evicts in the policy's order until Bytes is
// at most 99% of MaxBytes. It returns early on Close. Giving the space of
// what it removed back to the file system is reclaim's job, on its own
// goroutine: a reclaim's compactions take seconds, and eviction must not
// wait for them (a tier being filled fast overshot its budget by 80% while
// it did).
func (t *engine) sweepPass() error {
	t.sweepMu.Lock()
	defer t.sweepMu.Unlock()
	if err := t.checkpoint(); err != nil {
		return err
	}
	if r := t.retentionSecs.Load(); r > 0 {
		cutoff := seconds(t.now()) - r
		if err := t.expireOldest(cutoff); err != nil {
			return err
		}
	}
	if limit := t.maxBytes.Load(); limit > 0 && t.bytes.Load() > limit {
		low := limit - limit/100*(100-lowWaterPercent)
		if err := t.evict(low); err != nil {
			return err
		}
	}
	return nil
}

// lockStripes locks the stripes of keys in ascending order and returns the
// function that unlocks them. Only the sweeper holds more than one stripe
// (and sweeps are serialized), so this cannot deadlock with Put or drops,
// which hold one.
func (t *engine) lockStripes(keys [][]byte) (unlock func()) {
	var locked [stripes]bool
	for _, k := range keys {
		locked[t.stripe(k)] = true
	}
	for i := range locked {
		if locked[i] {
			t.keyMu[i].Lock()
		}
	}
	return func() {
		for i := range locked {
			if locked[i] {
				t.keyMu[i].Unlock()
			}
		}
	}
}

// checkpoint moves the index keys of entries whose last read is TouchEvery
// past their bucket, sweepBatch at a time: index keys only, never values.
func (t *engine) checkpoint() error {
	if !t.hooks.canWrite() {
		return nil // below MinFree nothing is written; reads are kept in memory
	}
	for {
		select {
		case <-t.done:
			return ErrClosed
		default:
		}
		t.polMu.Lock()
		cps := t.pol.takePending(sweepBatch)
		t.polMu.Unlock()
		if len(cps) == 0 {
			return nil
		}
		if err := t.checkpointBatch(cps); err != nil {
			return err
		}
	}
}

func (t *engine) checkpointBatch(cps []checkpoint) error {
	if err := t.enter(); err != nil {
		return err
	}
	defer t.leave()
	t.writeMu.RLock()
	defer t.writeMu.RUnlock()
	keys := make([][]byte, len(cps))
	for i := range cps {
		keys[i] = cps[i].key
	}
	unlock := t.lockStripes(keys)
	defer unlock()
	b := t.db.NewBatch()
	defer b.Close()
	moved := cps[:0]
	t.polMu.Lock()
	for _, c := range cps {
		if n := t.pol.get(c.key); n == nil || n.persisted != c.old {
			continue // dropped or stored again since
		}
		_ = b.Delete(appendAccessKey(nil, c.old, c.key), nil)
		_ = b.Set(appendAccessKey(nil, c.access, c.key), sizeValue(c.size), nil)
		moved = append(moved, c)
	}
	t.polMu.Unlock()
	if b.Empty() {
		return nil
	}
	if err := t.commit(b); err != nil {
		return t.pebbleErr("checkpoint", err)
	}
	t.touches.Add(uint64(len(moved)))
	t.polMu.Lock()
	for _, c := range moved {
		if n := t.pol.get(c.key); n != nil && n.persisted == c.old {
			n.persisted = c.access
		}
	}
	t.polMu.Unlock()
	return nil
}

// expireOldest walks the access index from the front up to buckets before
// cutoff, sweepBatch keys at a time (see expireBatch).
func (t *engine) expireOldest(cutoff int64) error {
	lower, upper := []byte{spaceAccess}, accessBound(cutoff)
	for {
		select {
		case <-t.done:
			return ErrClosed
		default:
		}
		next, more, err := t.expireBatch(lower, upper, cutoff)
		if err != nil || !more {
			return err
		}
		lower = next
	}
}

// candidate is one access-index key read by expireBatch.
type candidate struct {
	indexKey []byte
	access   int64
	key      []byte // aliases indexKey
}

// expireBatch handles up to sweepBatch index keys in [lower, upper), all of
// buckets before cutoff: a key the policy holds under another bucket is
// stale and deleted; an entry read since cutoff has its index key moved to
// its last read; the others are past Retention and dropped. It returns the
// lower bound for the next batch and whether there may be more.
func (t *engine) expireBatch(lower, upper []byte, cutoff int64) (next []byte, more bool, err error) {
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
	keys := make([][]byte, len(cands))
	for i := range cands {
		keys[i] = cands[i].key
	}
	unlock := t.lockStripes(keys)
	defer unlock()

	b := t.db.NewBatch()
	defer b.Close()
	var d counters
	var dropped, corrupt uint64
	var gone [][]byte
	type move struct {
		key    []byte
		access int64
	}
	var moves []move
	ek := make([]byte, 0, 256)
	for _, c := range cands {
		t.polMu.Lock()
		n := t.pol.get(c.key)
		var access, size int64
		current := n != nil && n.persisted == c.access
		if current {
			access, size = n.access, n.size
		}
		t.polMu.Unlock()
		if !current {
			_ = b.Delete(c.indexKey, nil) // stale
			continue
		}
		if access >= cutoff {
			_ = b.Delete(c.indexKey, nil)
			_ = b.Set(appendAccessKey(nil, access, c.key), sizeValue(size), nil)
			moves = append(moves, move{c.key, access})
			continue
		}
		ek = appendEntryKey(ek[:0], c.key)
		v, closer, err := t.db.Get(ek)
		if errors.Is(err, pebble.ErrNotFound) {
			_ = b.Delete(c.indexKey, nil)
			gone = append(gone, c.key)
			continue
		}
		if err != nil {
			return nil, false, t.pebbleErr("sweep", err)
		}
		if _, ok := parseHeader(v); ok {
			dropped++
		} else {
			corrupt++
		}
		if raw, ok := rawAccess(v); ok && raw != c.access {
			_ = b.Delete(appendAccessKey(nil, raw, c.key), nil)
		}
		_ = b.DeleteSized(ek, uint32(len(v)), nil)
		_ = b.Delete(c.indexKey, nil)
		d.bytes -= int64(len(c.key) + len(v))
		d.entries--
		gone = append(gone, c.key)
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
	t.countDrop(dropExpired, dropped)
	t.countDrop(dropCorrupt, corrupt)
	t.polMu.Lock()
	for _, k := range gone {
		t.pol.remove(k)
	}
	for _, m := range moves {
		if n := t.pol.get(m.key); n != nil {
			n.persisted = m.access
		}
	}
	t.polMu.Unlock()
	return next, more, nil
}

// evict removes entries in the policy's order until Bytes <= target.
func (t *engine) evict(target int64) error {
	for t.bytes.Load() > target {
		select {
		case <-t.done:
			return ErrClosed
		default:
		}
		n, err := t.evictBatch(target)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil // the policy is empty: Bytes counts what it cannot see (see tryForget)
		}
	}
	return nil
}

// victim is an entry the policy chose to evict.
type victim struct {
	key       []byte
	persisted int64
	size      int64
}

// evictBatch evicts up to sweepBatch victims, enough by the policy's sizes
// to bring Bytes down to target, and returns how many the policy gave.
func (t *engine) evictBatch(target int64) (int, error) {
	if err := t.enter(); err != nil {
		return 0, err
	}
	defer t.leave()
	t.writeMu.RLock()
	defer t.writeMu.RUnlock()

	want := t.bytes.Load() - target
	limit := t.maxBytes.Load()
	var vs []victim
	t.polMu.Lock()
	for got := int64(0); got < want && len(vs) < sweepBatch; {
		k, p, size, ok := t.pol.victim(limit)
		if !ok {
			break
		}
		vs = append(vs, victim{[]byte(k), p, size})
		got += size
	}
	t.polMu.Unlock()
	if len(vs) == 0 {
		return 0, nil
	}
	keys := make([][]byte, len(vs))
	for i := range vs {
		keys[i] = vs[i].key
	}
	unlock := t.lockStripes(keys)
	defer unlock()

	b := t.db.NewBatch()
	defer b.Close()
	var d counters
	var dropped, corrupt uint64
	ek := make([]byte, 0, 256)
	for _, c := range vs {
		t.polMu.Lock()
		back := t.pol.get(c.key) != nil
		t.polMu.Unlock()
		if back {
			continue // stored again since the policy chose it
		}
		ik := appendAccessKey(nil, c.persisted, c.key)
		ek = appendEntryKey(ek[:0], c.key)
		v, closer, err := t.db.Get(ek)
		if errors.Is(err, pebble.ErrNotFound) {
			_ = b.Delete(ik, nil)
			continue
		}
		if err != nil {
			return 0, t.pebbleErr("evict", err)
		}
		if _, ok := parseHeader(v); ok {
			dropped++
		} else {
			corrupt++
		}
		if raw, ok := rawAccess(v); ok && raw != c.persisted {
			_ = b.Delete(appendAccessKey(nil, raw, c.key), nil)
		}
		_ = b.DeleteSized(ek, uint32(len(v)), nil)
		_ = b.Delete(ik, nil)
		d.bytes -= int64(len(c.key) + len(v))
		d.entries--
		closer.Close()
	}
	if !b.Empty() {
		if d.entries != 0 {
			_ = b.Merge(keyMeta, d.encode(), nil)
		}
		if err := t.commit(b); err != nil {
			// The entries stay: give them back to the policy, or nothing
			// would ever evict them.
			t.polMu.Lock()
			for _, c := range vs {
				if t.pol.get(c.key) == nil {
					t.pol.load(c.key, c.size, c.persisted)
				}
			}
			t.polMu.Unlock()
			return 0, t.pebbleErr("evict", err)
		}
	}
	t.bytes.Add(d.bytes)
	t.entries.Add(d.entries)
	t.countDrop(dropEvicted, dropped)
	t.countDrop(dropCorrupt, corrupt)
	return len(vs), nil
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
//
// stop (the Tier's Close) ends its waits for the flush and the compaction.
func (t *engine) shed(want int64, free int64, stop <-chan struct{}) error {
	if !t.hooks.canFlush() {
		// Below the reserve no flush or compaction may run, so deletions
		// would free nothing: keep the entries, and serve them.
		return nil
	}
	t.sweepMu.Lock()
	target := max(t.bytes.Load()-want, 0)
	err := t.evict(target)
	t.sweepMu.Unlock()
	if err != nil {
		return err
	}
	if err := t.enter(); err != nil {
		return err
	}
	defer t.leave()
	ctx, cancel := t.untilDone(stop)
	defer cancel()
	if err := t.flushBounded(ctx, nil); err != nil {
		if ctx.Err() != nil {
			return ErrClosed
		}
		return err
	}
	t.dirty.Store(false)
	if free < 0 || free < t.bytes.Load()+t.hooks.reserve() {
		return nil
	}
	if err := t.compact(ctx, rangeStart, rangeEnd); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

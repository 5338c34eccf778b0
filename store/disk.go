package store

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// What a tier holds on disk. Without a WAL (see tier.go) the database is
// its sstables plus a MANIFEST and an OPTIONS file, so what MaxBytes does
// not count is:
//
//   - deleted data awaiting compaction: an evicted, expired or purged entry
//     stays in its sstable until a compaction rewrites that file. Pebble's
//     own compactions bound it for a small tier shaped to its budget
//     (sizeToBudget in pebble.go: a base level of a twelfth of it), and
//     reclaim bounds it for every tier: once the sstables hold more than
//     reclaimSlack beyond the live bytes (twice that while Puts arrive),
//     the memtable is flushed (so the deletions reach disk) and the
//     keyspace compacted in reclaimPieces pieces, which rewrites the live
//     bytes and deletes the old files. Eviction runs down to 99% of
//     MaxBytes, so at rest the directory is within a few per cent of it
//     plus the fixed overhead.
//   - new data not yet merged down: a flush brings new entries to disk
//     while the entries they displaced are still there, until a compaction
//     meets both; and a compaction writes its outputs before deleting its
//     inputs. Both are transients of a tier being written.
//   - bookkeeping: the access index (9 bytes + key + a 4-byte size per
//     entry) and Pebble's block and filter overhead, a few per cent of
//     small entries;
//   - fixed overhead: the MANIFEST, rolled over at maxManifest (the
//     previous one is kept until the next roll), and the OPTIONS file: at
//     most about 2 × maxManifest + 8 KiB per tier (FixedOverhead). The
//     reserve file beside the directory (tier.go) comes on top.
//
// While a tier is written the directory is held under 1.2 × MaxBytes +
// DiskSlack, bursts included (measured: every replay sample, and all but
// 2 samples of one run of tens of thousands filling tiers; a compaction
// larger than predicted is rare, not ruled out): Put declines to store (overBound)
// when the directory plus what the work already admitted may still add to
// it (ahead: memtables to flush, then the compaction under way or the one
// a flush leads to) would pass the bound, so what is on disk plus every
// transient Pebble can produce from it stays under. The LSM's shape
// (sizeToBudget) keeps those transients a slice of the budget, so that
// the tier seldom has to decline; when every Put is declined and Pebble
// has nothing left to compact, reclaim frees the room. The price is write
// amplification: Pebble rewrites a small tier's data more often (about
// 9.4–11.4 × the body per Put measured on 6–58 MB tiers at 2 MB/s, against
// 2.4–4.3 × when the directory was allowed to reach twice the budget;
// bench/RESULTS.md).
//
// Memtables are memory, not disk: without a WAL they cost nothing on disk.
const (
	// maxManifest rolls the MANIFEST over (Pebble's default is 128 MB, a
	// fixed cost per tier larger than many budgets).
	maxManifest = 1 << 20
	// FixedOverhead bounds what a tier's directory holds beyond its live
	// entries, their bookkeeping and reclaimable garbage: two MANIFESTs and
	// the OPTIONS file.
	FixedOverhead = 2*maxManifest + 8<<10
	// DiskSlack is the constant in the bound on a tier's directory,
	// 1.2 × MaxBytes + DiskSlack (overBound): the fixed overhead, which a
	// budget of a few MB cannot pay out of its fifth, and 2 MiB for what
	// Pebble's measure of the directory does not see (the sstable a flush
	// or compaction is writing, beyond what ahead predicts of it; the LOCK
	// and marker files).
	DiskSlack = FixedOverhead + 2<<20
	// diskFresh is how old overBound lets its measure of the directory be.
	diskFresh = 10 * time.Millisecond
	// reclaimMinSlack is garbage never worth a compaction.
	reclaimMinSlack = 1 << 20
	// reclaimEvery spaces reclaims out, so a tier being filled and evicted
	// at a high rate does not compact back to back.
	reclaimEvery = 2 * time.Second
)

// reclaimSlack is how much deleted data the sstables may hold beyond the
// live bytes before reclaim compacts: an eighth of them, at least
// reclaimMinSlack.
func reclaimSlack(live int64) int64 { return max(live/8, reclaimMinSlack) }

// diskBound is the most a tier of budget limit lets its directory hold
// before Put declines: 1.2 × limit + DiskSlack, plus whatever bookkeeping
// beyond a tenth of the budget the last reclaim could not remove (a tier of
// tiny entries, whose index keys weigh as much as they do, must not be
// locked out of storing anything).
func (t *engine) diskBound(limit int64) int64 {
	// An atomic, not reclaimMu: reclaim holds that for seconds, and Put
	// must not wait for it.
	return limit + limit/5 + DiskSlack + max(t.reclaimFloor.Load()-limit/10, 0)
}

// overBound reports whether Put should decline to store: the directory,
// plus what the work already admitted may still add to it before it frees
// anything (ahead), is over diskBound. Declining only once the directory
// itself is over the bound, as before, let it pass the bound by the
// compaction or flush under way at that moment (peaks of 1.35–1.65 × the
// budget filling at 2–16 MB/s): a compaction writes its outputs before
// deleting its inputs, and a flush brings a memtable to disk while the
// entries it displaces are still there. A cache may decline to store; the
// entry is served all the same. The measure is Pebble's, at most diskFresh
// old: this is the only place that asks for it on the write path, at most
// 100 times a second; what Puts stored since (admitted) counts on top, so
// a burst cannot slip past a stale measure. The caller has entered the
// engine.
func (t *engine) overBound() bool {
	limit := t.maxBytes.Load()
	if limit <= 0 {
		return false
	}
	now := time.Now().UnixNano()
	if last := t.diskAt.Load(); now-last > int64(diskFresh) && t.diskAt.CompareAndSwap(last, now) {
		m := t.db.Metrics()
		t.disk.Store(int64(m.DiskSpaceUsage()))
		t.ahead.Store(ahead(m, &t.hooks.inflight, t.shape.file))
		t.admitted.Store(0)
	}
	return t.disk.Load()+t.ahead.Load()+t.admitted.Load() > t.diskBound(limit)
}

// ahead is how much more the directory may come to hold, beyond what
// Pebble measures now, from work already admitted, before that work
// deletes anything:
//
//   - the memtables, at their allocated size: each is flushed to level 0
//     as a new sstable, and is then part of the next compaction's input
//     too (counting it once let a tier whose level-0 files do not overlap,
//     so that several flushes wait in level 0, pass the bound);
//   - then the larger of the compactions under way, what their outputs
//     may still add (their inputs not yet rewritten: remaining), and the
//     next one Pebble may start (nextCompaction), such as the one a flush
//     leads to: level 0 into the base level. Tile keys arrive in random
//     order, so level 0 overlaps the whole base level and that compaction
//     rewrites all of both (sizeToBudget keeps them a small part of the
//     budget). Pebble runs one compaction at a time
//     (CompactionConcurrencyRange's default), so these do not add up:
//     each one's inputs are deleted before the next starts.
//
// Obsolete files not yet deleted are already in Pebble's measure.
func ahead(m *pebble.Metrics, c *inflight, file int64) int64 {
	mem := int64(m.MemTable.Size)
	return mem + max(c.nextCompaction(m, file)+mem, c.remaining(m.Compact.InProgressBytes))
}

// nextCompaction is how much the next compaction Pebble may start could
// rewrite: level 0 into the base level (all of both: upperLevels); one
// base-level file into the level below, whose key range Pebble cuts where
// it would overlap more than ten files of that level (its grandparent
// limit; file is their target size, 0 for Pebble's defaults, whose
// levels are many files: then a 1/(files) share of the last level); or as
// much as the largest of Pebble's last compactions (it expands one with
// neighbouring files when that does not widen it below).
func (c *inflight) nextCompaction(m *pebble.Metrics, file int64) int64 {
	n := upperLevels(m)
	last := m.Levels[len(m.Levels)-1].TablesSize
	for l := 1; l < len(m.Levels)-1; l++ {
		if size := m.Levels[l].TablesSize; size > 0 {
			files := max(m.Levels[l].TablesCount, 1)
			below := last / files
			if file > 0 {
				below = min(last, 11*file)
			}
			n = max(n, size/files+below)
			break
		}
	}
	return max(n, c.recentMax())
}

// upperLevels is the size of level 0 and the base level (the first
// non-empty one below it): what an L0 → Lbase compaction may rewrite.
func upperLevels(m *pebble.Metrics) int64 {
	upper := m.Levels[0].TablesSize
	for l := 1; l < len(m.Levels)-1; l++ {
		if n := m.Levels[l].TablesSize; n > 0 {
			return upper + n
		}
	}
	return upper
}

// inflight sums the input bytes of the compactions under way, from
// Pebble's CompactionBegin and CompactionEnd events (which Pebble pairs).
// A compaction's output is at most its input: entries only disappear.
type inflight struct {
	mu     sync.Mutex
	jobs   map[int]int64 // job → input bytes
	sum    atomic.Int64
	manual atomic.Int32 // engine.compact calls under way
	// The input bytes of Pebble's last automatic compactions and when they
	// began; guarded by mu. Manual ones (reclaim's pieces, a purge's whole
	// keyspace) are not what Pebble starts by itself.
	recent [16]struct {
		n  int64
		at time.Time
	}
	next int // where the next one goes in recent
}

// recentFor is how long a compaction's size counts in recentMax: a tier
// that stopped being written must not keep declining for one long past.
const recentFor = 10 * time.Second

// recentMax is the largest input of the last automatic compactions that
// began within recentFor.
func (c *inflight) recentMax() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, r := range c.recent {
		if time.Since(r.at) < recentFor {
			n = max(n, r.n)
		}
	}
	return n
}

func (c *inflight) begin(info pebble.CompactionInfo) {
	var n int64
	for _, l := range info.Input {
		for _, tb := range l.Tables {
			n += int64(tb.Size)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.jobs == nil {
		c.jobs = make(map[int]int64)
	}
	c.jobs[info.JobID] = n
	c.sum.Add(n)
	if c.manual.Load() == 0 {
		c.recent[c.next].n, c.recent[c.next].at = n, time.Now()
		c.next = (c.next + 1) % len(c.recent)
	}
}

func (c *inflight) end(info pebble.CompactionInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sum.Add(-c.jobs[info.JobID])
	delete(c.jobs, info.JobID)
}

// remaining is what the compactions under way may still write: their
// inputs less what they have written (Pebble's InProgressBytes, already
// in its measure of the directory).
func (c *inflight) remaining(written int64) int64 {
	if c == nil {
		return 0
	}
	return max(c.sum.Load()-written, 0)
}

// reclaimer runs reclaim when kicked, until Close; it closes done on exit.
func (t *engine) reclaimer(done chan struct{}) {
	defer close(done)
	for {
		select {
		case <-t.done:
			return
		case <-t.reclaimKick:
			t.reclaim(false)
		}
	}
}

// kickReclaim asks the reclaimer to run without waiting for it.
func (t *engine) kickReclaim() {
	select {
	case t.reclaimKick <- struct{}{}:
	default:
	}
}

// reclaimSoon asks the sweeper to run and reclaim now (after a purge).
func (t *engine) reclaimSoon() {
	t.reclaimForce.Store(true)
	t.wakeSweeper()
}

// diskBytes is what the database held on disk at the sweeper's last look
// (every flushEvery, and after each reclaim), by Pebble's accounting. It is
// kept rather than asked for, because Stats must never wait on Pebble's
// locks (a database Pebble gave up on holds them forever; see pebbleLogger).
func (t *engine) diskBytes() int64 { return t.disk.Load() }

// measureDisk updates diskBytes.
func (t *engine) measureDisk() {
	if err := t.enter(); err != nil {
		return
	}
	defer t.leave()
	t.disk.Store(int64(t.db.Metrics().DiskSpaceUsage()))
}

// reclaim gives the space of deleted entries back to the file system when
// the sstables hold more than reclaimSlack beyond the live bytes (see the
// top of this file). It runs on the sweeper, at most once per reclaimEvery
// unless a purge asked for it, and only when the file system has room for
// the rewrite (above the reserve, and free space for the live bytes).
func (t *engine) reclaim(force bool) {
	force = t.reclaimForce.Swap(false) || force
	t.reclaimMu.Lock() // protects lastReclaim
	defer t.reclaimMu.Unlock()
	defer t.measureDisk()
	if !force && time.Since(t.lastReclaim) < reclaimEvery {
		return
	}
	// While Puts arrive, a reclaim's rewrite is a transient on top of the
	// flushes' (measured filling a 23 MB tier at 2 MB/s: peaks of 1.58 ×
	// the budget with reclaim running meanwhile, 1.33 × without), and
	// Pebble's own compactions keep the garbage near the base level's size
	// (sizeToBudget). So a busy tier reclaims only past twice the slack; an
	// idle one (no Put for reclaimEvery) past the slack.
	busy := time.Since(time.Unix(0, t.lastPut.Load())) < reclaimEvery
	// Locked out: Puts arrive but every one is declined (the directory
	// plus what Pebble has yet to write is over the bound, and Pebble's
	// compactions have nothing left to do: they do not rewrite the last
	// level for the garbage in it). Only reclaim frees room then, however
	// little garbage there is. (Reclaiming so whenever some Puts are
	// declined made a 58 MB tier filled at 2 MB/s reclaim 16 times and
	// write 18.7 × the body per Put instead of 10.7 ×.)
	locked := !busy && time.Since(time.Unix(0, t.lastDecline.Load())) < reclaimEvery
	if !t.hooks.canFlush() {
		return
	}
	if err := t.enter(); err != nil {
		return
	}
	defer t.leave()
	live := t.bytes.Load()
	m := t.db.Metrics()
	// Only the current version's tables: obsolete ones are already being
	// deleted in the background, and a compaction would not speed that up.
	tables := int64(m.Table.Local.LiveSize)
	// Deletions still in the memtable count as garbage already: the flush
	// below takes them to the tables.
	garbage := tables - live
	// floor is what the last reclaim could not remove (block and index
	// overhead, tombstones Pebble keeps): compacting for it again would
	// rewrite the tier every reclaimEvery for nothing.
	slack := reclaimSlack(live)
	switch {
	case locked:
		slack = reclaimMinSlack
	case busy && !force:
		slack *= 2
	}
	if garbage-t.reclaimFloor.Load() <= slack {
		return
	}
	if free := t.hooks.freeBytes(); free >= 0 && free < live+t.hooks.reserve() {
		return // no room to rewrite: MinFree's shedding takes over
	}
	t.lastReclaim = time.Now()
	ctx, cancel := t.untilDone(nil) // see bounded.go
	defer cancel()
	if t.dirty.Swap(false) {
		if err := t.flushBounded(ctx, nil); err != nil {
			t.dirty.Store(true)
			_ = t.pebbleErr("flush", err)
			return
		}
	}
	for _, r := range t.reclaimRanges() {
		if !t.roomFor(r) {
			return // the next reclaim goes on
		}
		if err := t.compact(ctx, r[0], r[1]); err != nil {
			_ = t.pebbleErr("compact", err)
			return
		}
	}
	t.reclaims.Add(1)
	m = t.db.Metrics()
	t.reclaimFloor.Store(max(int64(m.Table.Local.LiveSize)-t.bytes.Load(), 0))
}

// roomFor waits, at most reclaimWait, until compacting the range r cannot
// take the directory past its bound: what is on disk, plus what Pebble
// may still add (ahead: Puts admitted before this compaction began may
// flush during it), plus the range's share of the tables (which this
// compaction rewrites, with level 0 and the base level, already in
// ahead: keys arrive in random order, so their files span the keyspace).
// Puts stay
// within the bound by themselves (overBound counts this compaction once it
// has begun); reclaim must not start one without room.
func (t *engine) roomFor(r [2][]byte) bool {
	limit := t.maxBytes.Load()
	if limit <= 0 {
		return true
	}
	deadline := time.Now().Add(reclaimWait)
	for {
		m := t.db.Metrics()
		in, err := t.db.EstimateDiskUsage(r[0], r[1])
		if err != nil {
			return false
		}
		need := int64(m.DiskSpaceUsage()) + ahead(m, &t.hooks.inflight, t.shape.file) + int64(in)
		if need <= t.diskBound(limit) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-t.done:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// compact compacts the keys in [lo, hi) at the engine's request (not one
// Pebble chose: see inflight.recent).
func (t *engine) compact(ctx context.Context, lo, hi []byte) error {
	t.hooks.inflight.manual.Add(1)
	defer t.hooks.inflight.manual.Add(-1)
	return t.db.Compact(ctx, lo, hi, false)
}

// reclaimWait bounds how long a reclaim waits for room for a piece.
const reclaimWait = 2 * time.Second

// reclaimPieces is how many pieces reclaim compacts the entry space in, one
// after the other: a compaction writes its outputs before deleting its
// inputs, so compacting the whole keyspace at once would briefly hold it
// twice; in pieces the transient is about a piece.
const reclaimPieces = 32

// reclaimRanges splits the keyspace for reclaim: the access index, then the
// entry space cut at keys sampled from the policy (Go's map order is
// random enough for a sample).
func (t *engine) reclaimRanges() [][2][]byte {
	ranges := [][2][]byte{{rangeStart, []byte{spaceAccess + 1}}}
	var cuts [][]byte
	t.polMu.Lock()
	for k := range t.pol.nodes {
		if len(cuts) == reclaimPieces-1 {
			break
		}
		cuts = append(cuts, appendEntryKey(nil, []byte(k)))
	}
	t.polMu.Unlock()
	slices.SortFunc(cuts, bytes.Compare)
	lo := []byte{spaceEntry}
	for _, c := range cuts {
		if bytes.Compare(c, lo) > 0 {
			ranges = append(ranges, [2][]byte{lo, c})
			lo = c
		}
	}
	return append(ranges, [2][]byte{lo, rangeEnd})
}

// freeBytes is the cache file system's free space at the Tier's last
// statfs; -1 when unknown (no Tier: tests of the keyspace).
func (h *hooks) freeBytes() int64 {
	if h == nil || h.t == nil {
		return -1
	}
	return h.t.free.Load()
}

package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A Tier survives every fault of its directory: full, read-only,
// unwritable, deleted while running, failing with EIO, corrupt, or locked by
// another process. None of them stops the server or a request: the tier
// serves uncached (ErrUnavailable) while it is out of service and comes
// back by itself when the fault clears. Pebble is not panic-safe, so the
// design is to never drive it into a fatal path, not to recover from one:
//
//   - No WAL (Options.DisableWAL). It is a cache: a crash may lose the last
//     flushEvery (2 s) of writes, never tear one. Without a WAL the commit
//     path writes no file, so Pebble's fatal commit error and WAL-rotation
//     panic (the two crashes of a full or read-only disk) cannot happen.
//     The sweeper flushes a dirty memtable every flushEvery; purges flush
//     at once.
//   - Headroom, as nginx's proxy_cache_path min_free: a supervisor
//     goroutine per tier reads the file system's free space (statfs) every
//     second and after every few megabytes written. Below MinFree the tier
//     is "full": Puts and access-index checkpoints are refused, entries
//     are evicted in the policy's order and their space compacted away,
//     until the free space is back above MinFree plus a tenth (so the state
//     does not flap). Below the much smaller reserve (MinFree/4, 64 KiB to
//     16 MiB) faultFS refuses to create sstables, so Pebble's flushes and
//     compactions fail cleanly before writing; Pebble never meets a full
//     disk with data in hand.
//   - Below the reserve for emergencyAfter (5 s), eviction cannot help: it
//     needs room to flush and compact. The tier then closes its database and
//     deletes its directory, giving all its space back (a cache may; nginx's
//     cache manager would evict everything too), and starts empty once the
//     file system is above twice the reserve.
//   - A reserve file ("<dir>.reserve", the reserve's size, like CockroachDB's
//     emergency ballast) is released by vfs.OnDiskFull when a write meets
//     ENOSPC anyway (another process filled the disk between two checks),
//     and the write is retried once: a MANIFEST write under way, whose
//     failure Pebble treats as fatal, can finish.
//   - faultFS sees every file error first and reports it. A hard fault (a
//     write or background error: ENOSPC, EROFS/EACCES/EPERM, EIO, a missing
//     directory; corruption met by a compaction) takes the database out of
//     service at once: new calls get ErrUnavailable, the supervisor closes
//     it (within closeTimeout, else it is abandoned) and then probes the
//     directory (create, write, fsync, remove a file; free space above the
//     reserve) with backoff from retryMin to retryMax, and re-opens it.
//   - Pebble's Logger.Fatalf never returns and never unwinds: it reports,
//     then blocks its goroutine forever (see pebbleLogger). The supervisor
//     abandons that database without touching it, moves its directory
//     aside ("<dir>.failed-<time>") and opens a fresh one.
//   - A database that fails to open as corrupt (a WAL, sstable or MANIFEST
//     checksum, an unknown layout) is moved aside ("<dir>.corrupt-<time>")
//     and recreated empty. At most keepAside such directories are kept per
//     tier, and they are the first thing deleted when space is short.
//     Corruption found by a read drops that key (so it can be cached again);
//     from corruptRebuild of them on, the database is moved aside and
//     rebuilt.
//   - Another process holding the lock: the error names the lock file and
//     the holder's PID (written to LOCK.pid beside it); the tier retries, so
//     it opens when that process exits.
//   - Start-up never waits: New returns at once and the supervisor opens
//     the database in the background, serving uncached meanwhile. Every log
//     line about a fault is rate-limited to one a minute per kind.
//   - A full disk never wedges, hangs or crashes the tier (full.go,
//     bounded.go): every wait for a flush or compaction is bounded and
//     Close returns within closeWait; Puts are admitted against the free
//     space less what the memtables hold; moved-aside directories of every
//     tier are deleted (truncated first) when space is short; a tier whose
//     own data keeps it from opening, or fails it for space right after
//     each open, drops that data; a panic inside pebble.Open is recovered;
//     at most maxAbandoned databases are abandoned per tier.

// State is what a Tier is doing.
type State int32

// Tier states, as the iiif_cache_state metric reports them.
const (
	StateOK       State = 0 // serving and storing
	StateFull     State = 1 // below MinFree: serving hits, storing nothing, evicting
	StateDegraded State = 2 // out of service after a fault: serving uncached, probing
	StateOpening  State = 3 // the database is being opened: serving uncached
)

func (s State) String() string {
	switch s {
	case StateOK:
		return "ok"
	case StateFull:
		return "full"
	case StateDegraded:
		return "degraded"
	case StateOpening:
		return "opening"
	}
	return "unknown"
}

// MarshalText makes the state readable in the stats JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads what MarshalText writes, so that clients of the stats
// JSON (iiif-proxy stats) can decode it.
func (s *State) UnmarshalText(b []byte) error {
	for st := StateOK; st <= StateOpening; st++ {
		if st.String() == string(b) {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("store: unknown tier state %q", b)
}

// Timing of the supervisor.
const (
	spaceEvery     = time.Second            // statfs period
	spaceBytes     = 4 << 20                // and after this many bytes written
	retryMin       = 250 * time.Millisecond // first re-open attempt after a fault
	retryMax       = 5 * time.Second        // backoff cap
	stableAfter    = 30 * time.Second       // a database that fails sooner than this after opening keeps the backoff growing
	closeTimeout   = 10 * time.Second       // a close that takes longer is abandoned
	shedEvery      = 3 * time.Second        // at most one eviction round for space this often
	logEvery       = time.Minute            // rate limit of fault log lines, per kind
	keepAside      = 2                      // moved-aside directories kept per tier
	corruptRebuild = 16                     // read-time corruptions that trigger a rebuild
	emergencyAfter = 5 * time.Second        // below the reserve this long: drop the tier's contents
	closeWait      = 20 * time.Second       // Close returns after this even if the supervisor is stuck (within shutdownGrace)
	probeSize      = 4096
)

// Tier is one cache tier: a supervisor that keeps one Pebble database (an
// engine) open in Config.Dir whenever the directory allows, and serves
// uncached otherwise. Its methods are safe for concurrent use.
type Tier struct {
	cfg Config
	log *slog.Logger

	eng   atomic.Pointer[engine] // the engine in service; nil when none
	state atomic.Int32           // a State
	why   atomic.Pointer[string] // why the tier is out of service, for errors

	free, total atomic.Int64 // last statfs; free -1 when unknown
	minFree     atomic.Int64 // MinFree in bytes at the last statfs
	written     atomic.Int64 // bytes written since the last statfs

	faults      [NumFaults]atomic.Uint64
	unavailable atomic.Uint64 // calls answered ErrUnavailable
	retired     Stats         // counters of engines no longer in service; guarded by retiredMu
	retiredMu   sync.Mutex

	pendMu  sync.Mutex // protects pending and pendAll
	pending [][]byte   // prefixes purged while out of service, applied at the next open
	pendAll bool       // PurgeAll while out of service, or too many pending prefixes

	logMu   sync.Mutex           // protects logLast
	logLast map[string]time.Time // rate limit of log lines

	wake     chan struct{} // a fault or a write burst: the supervisor looks now
	done     chan struct{} // closed by Close
	supDone  chan struct{} // closed when the supervisor exits
	firstTry chan error    // the first open attempt's result, for Open
	closed   atomic.Bool
	lowSince time.Time // since when the file system is below the reserve; supervisor only

	openLowSince time.Time    // since when open has found too little space for it; supervisor only (full.go)
	abandoned    atomic.Int32 // databases abandoned (full.go: maxAbandoned)
	want         atomic.Int64 // room a Put refused for space asked for (full.go: roomFor)
	churn        int          // databases retired for space soon after opening, in a row; supervisor only

	limitsMu  sync.Mutex    // protects maxBytes and retention
	maxBytes  int64         // Config.MaxBytes in force (SetLimits)
	retention time.Duration // Config.Retention in force (SetLimits)
	reshape   atomic.Bool   // SetLimits asks the supervisor to look at the LSM's shape (reshape.go)
	reshapes  atomic.Uint64 // reopens for a new budget
}

// New returns a Tier for cfg at once and opens its database in the
// background: until it is open (or while its directory is faulty) every
// method returns ErrUnavailable. Only an invalid cfg is an error.
func New(cfg Config) (*Tier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	t := &Tier{
		cfg:       cfg,
		log:       cfg.Logger.With("dir", cfg.Dir),
		logLast:   map[string]time.Time{},
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		supDone:   make(chan struct{}),
		firstTry:  make(chan error, 1),
		maxBytes:  cfg.MaxBytes,
		retention: cfg.Retention,
	}
	t.state.Store(int32(StateOpening))
	t.free.Store(-1)
	opening := "opening"
	t.why.Store(&opening)
	go t.supervise()
	return t, nil
}

// Open is New, then waits for the first attempt to open the database and
// returns its error (closing the Tier) if it failed. For tools and tests;
// the server uses New, so that start-up never waits on the cache.
func Open(cfg Config) (*Tier, error) {
	t, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := <-t.firstTry; err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// State returns what the tier is doing now.
func (t *Tier) State() State { return State(t.state.Load()) }

// Close stops the supervisor and closes the database. Calls after Close
// return ErrClosed.
func (t *Tier) Close() error {
	if t.closed.Swap(true) {
		return ErrClosed
	}
	close(t.done)
	select {
	case <-t.supDone:
	case <-time.After(closeWait):
		// Every wait of the supervisor on Pebble is bounded (bounded.go,
		// closeTimeout); this one is the last guard of a clean exit.
		t.log.Error("store: the tier did not close in time; leaving it to the process's exit", "waited", closeWait)
	}
	return nil
}

// engine returns the engine in service, or the error to answer with.
func (t *Tier) engine() (*engine, error) {
	if t.closed.Load() {
		return nil, ErrClosed
	}
	if e := t.eng.Load(); e != nil {
		return e, nil
	}
	t.unavailable.Add(1)
	if t.State() == StateOpening {
		return nil, ErrOpening
	}
	return nil, fmt.Errorf("%w: %s", ErrUnavailable, *t.why.Load())
}

// mapErr turns an engine's ErrClosed (it was retired mid-call) into
// ErrUnavailable, and counts unavailability.
func (t *Tier) mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrClosed) && !t.closed.Load() {
		t.unavailable.Add(1)
		if t.State() == StateOpening { // retired to reshape, not for a fault
			return ErrOpening
		}
		return fmt.Errorf("%w: %s", ErrUnavailable, *t.why.Load())
	}
	if errors.Is(err, ErrUnavailable) {
		t.unavailable.Add(1)
	}
	return err
}

// Get returns the entry stored under key; see engine.GetAppend.
func (t *Tier) Get(key []byte) (Entry, error) {
	e, _, err := t.GetAppend(key, nil)
	return e, err
}

// Lookup is Get for a second look at a key whose miss the caller has
// already counted (the proxy's look again once it holds the key's render
// flight): a hit counts as a hit, a miss is not counted again, so Stats'
// Misses is one per request that missed.
func (t *Tier) Lookup(key []byte) (Entry, error) {
	e, err := t.engine()
	if err != nil {
		return Entry{}, err
	}
	en, _, err := e.getAppend(key, nil, false)
	return en, t.mapErr(err)
}

// GetAppend is Get appending the body to dst, so a caller with a reusable
// buffer reads a hit without allocating it: the returned Entry's Body is the
// tail of the returned slice. On error the slice is dst unchanged.
func (t *Tier) GetAppend(key, dst []byte) (Entry, []byte, error) {
	e, err := t.engine()
	if err != nil {
		return Entry{}, dst, err
	}
	en, out, err := e.GetAppend(key, dst)
	return en, out, t.mapErr(err)
}

// Put stores e under key; see engine.Put. While the file system is below
// MinFree it stores nothing and returns ErrUnavailable.
func (t *Tier) Put(key []byte, en Entry) (Entry, error) {
	e, err := t.engine()
	if err != nil {
		return Entry{}, err
	}
	stored, err := e.Put(key, en)
	return stored, t.mapErr(err)
}

// Touch marks the entry read now; see engine.Touch.
func (t *Tier) Touch(key []byte) error {
	e, err := t.engine()
	if err != nil {
		return err
	}
	return t.mapErr(e.Touch(key))
}

// Refresh records a successful revalidation; see engine.Refresh.
func (t *Tier) Refresh(key []byte, storedAt time.Time) error {
	e, err := t.engine()
	if err != nil {
		return err
	}
	return t.mapErr(e.Refresh(key, storedAt))
}

// PurgePrefix deletes every entry whose key starts with prefix; see
// engine.PurgePrefix. While the tier is out of service the purge is kept
// and applied when the database opens again (ErrUnavailable still says it
// has not happened yet), so a source that changed meanwhile never has its
// old derivatives served after the tier recovers.
func (t *Tier) PurgePrefix(prefix []byte) (int, error) {
	e, err := t.engine()
	if err != nil {
		t.defer1(prefix, false)
		return 0, err
	}
	n, err := e.PurgePrefix(prefix)
	if err = t.mapErr(err); errors.Is(err, ErrUnavailable) {
		t.defer1(prefix, false)
	}
	return n, err
}

// PurgeAll deletes every entry; see engine.PurgeAll. Out of service, it is
// kept for the next open, as PurgePrefix.
func (t *Tier) PurgeAll() error {
	e, err := t.engine()
	if err != nil {
		t.defer1(nil, true)
		return err
	}
	if err = t.mapErr(e.PurgeAll()); errors.Is(err, ErrUnavailable) {
		t.defer1(nil, true)
	}
	return err
}

// maxPending bounds the purges kept while out of service; past it the
// whole tier is purged at the next open.
const maxPending = 10000

// defer1 keeps a purge for the next open.
func (t *Tier) defer1(prefix []byte, all bool) {
	if t.closed.Load() {
		return
	}
	t.pendMu.Lock()
	defer t.pendMu.Unlock()
	if all || len(t.pending) >= maxPending {
		t.pendAll, t.pending = true, nil
		return
	}
	if !t.pendAll {
		t.pending = append(t.pending, bytes.Clone(prefix))
	}
}

// applyPending applies the purges kept while out of service to e, before
// it serves; those that fail stay pending.
func (t *Tier) applyPending(e *engine) error {
	t.pendMu.Lock()
	defer t.pendMu.Unlock()
	if t.pendAll {
		if err := e.PurgeAll(); err != nil {
			return err
		}
		t.pendAll, t.pending = false, nil
		return nil
	}
	for len(t.pending) > 0 {
		if _, err := e.PurgePrefix(t.pending[0]); err != nil {
			return err
		}
		t.pending = t.pending[1:]
	}
	t.pending = nil
	return nil
}

// Stats returns the tier's counters: those of every database it has run
// since New, its live contents, state, free space and faults.
func (t *Tier) Stats() Stats {
	t.retiredMu.Lock()
	s := t.retired
	t.retiredMu.Unlock()
	if e := t.eng.Load(); e != nil {
		c := e.Stats()
		s.Hits += c.Hits
		s.Misses += c.Misses
		s.Puts += c.Puts
		s.Touches += c.Touches
		s.Evicted += c.Evicted
		s.Expired += c.Expired
		s.Corrupt += c.Corrupt
		s.Purged += c.Purged
		s.Declined += c.Declined
		s.Errors += c.Errors
		s.Bytes, s.Entries, s.DiskBytes = c.Bytes, c.Entries, c.DiskBytes
	}
	s.FixedOverhead = FixedOverhead
	s.MaxBytes, _ = t.Limits()
	if n := s.Hits + s.Misses; n > 0 {
		s.HitRatio = float64(s.Hits) / float64(n)
	}
	s.State = t.State()
	s.FreeBytes = t.free.Load()
	s.MinFreeBytes = t.minFree.Load()
	s.Unavailable = t.unavailable.Load()
	for f := FaultNoSpace; f < NumFaults; f++ {
		s.Faults[f] = t.faults[f].Load()
	}
	return s
}

// allowLog reports whether a line about key may be logged now: at most one
// a minute per key.
func (t *Tier) allowLog(key string) bool {
	t.logMu.Lock()
	defer t.logMu.Unlock()
	now := time.Now()
	if last, ok := t.logLast[key]; ok && now.Sub(last) < logEvery {
		return false
	}
	t.logLast[key] = now
	return true
}

func (t *Tier) kick() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// setOut takes the tier out of service for why (new calls get
// ErrUnavailable naming it).
func (t *Tier) setOut(s State, why string) {
	t.why.Store(&why)
	t.state.Store(int32(s))
}

// hooks connect one engine to its Tier: the engine and its faultFS report
// faults through them and ask whether they may write. A nil *hooks or one
// without a Tier (the keyspace tests) allows everything and reports nothing.
type hooks struct {
	t        *Tier
	fail     atomic.Uint32 // the Fault that retires this engine; 0 while healthy
	fatalErr atomic.Bool   // Pebble called Fatalf: abandon, do not close
	fatalCh  chan struct{} // closed when fatalErr is set
	corrupt  atomic.Int64  // read-time corruptions seen
	pending  atomic.Int64  // bytes admitted since the last flush (full.go: roomFor)
	lastErr  atomic.Pointer[error]
	inflight inflight // compactions under way (disk.go)
}

// fault records a fault seen while this engine was in service. Corruption
// found by a read retires the engine only from the corruptRebuild-th on.
func (h *hooks) fault(f Fault, err error) {
	if h == nil || h.t == nil || f == FaultNone || h.failed() {
		return // an engine already retired: its faults were counted once
	}
	h.t.faults[f].Add(1)
	if f == FaultCorrupt && h.corrupt.Add(1) < corruptRebuild {
		return
	}
	h.lastErr.Store(&err)
	if h.fail.CompareAndSwap(0, uint32(f)) {
		h.t.kick()
	}
}

// backgroundCorrupt retires the engine at once: a flush or compaction met
// corruption, and would meet it again on every retry.
func (h *hooks) backgroundCorrupt(err error) {
	if h == nil || h.t == nil {
		return
	}
	h.corrupt.Store(corruptRebuild)
	h.fault(FaultCorrupt, err)
}

func (h *hooks) fatal(err error) {
	if h == nil || h.t == nil {
		return
	}
	if !h.fatalErr.Swap(true) {
		close(h.fatalCh)
	}
	h.fault(FaultIO, err)
}

// failed reports whether this engine has been retired by a fault.
func (h *hooks) failed() bool { return h != nil && h.fail.Load() != 0 }

// canWrite: Puts and touches are allowed (state OK, healthy).
func (h *hooks) canWrite() bool {
	if h == nil || h.t == nil {
		return true
	}
	return !h.failed() && h.t.State() == StateOK
}

func (h *hooks) reserve() int64 {
	if h == nil || h.t == nil {
		return 0
	}
	return h.t.reserve()
}

// canFlush: flushes and new sstables are allowed (above the reserve).
func (h *hooks) canFlush() bool {
	if h == nil || h.t == nil {
		return true
	}
	if h.failed() {
		return false
	}
	free := h.t.statfs()
	return free < 0 || free >= h.t.reserve()
}

func (h *hooks) wrote(n int) {
	if h == nil || h.t == nil || n <= 0 {
		return
	}
	if h.t.written.Add(int64(n)) >= spaceBytes {
		h.t.kick()
	}
}

func (h *hooks) allowLog(key string) bool {
	if h == nil || h.t == nil {
		return true
	}
	return h.t.allowLog(key)
}

// statfs reads the free space of the cache file system, records it and
// returns it (-1 when the file system cannot tell, as MemFS).
func (t *Tier) statfs() int64 {
	t.written.Store(0)
	dir := t.cfg.Dir
	u, err := t.cfg.fs.GetDiskUsage(dir)
	if err != nil {
		u, err = t.cfg.fs.GetDiskUsage(filepath.Dir(dir))
	}
	if err != nil {
		t.free.Store(-1)
		return -1
	}
	free := int64(u.AvailBytes)
	t.free.Store(free)
	t.total.Store(int64(u.TotalBytes))
	t.minFree.Store(t.cfg.minFree(int64(u.TotalBytes)))
	return free
}

// reserve is the free space below which no data file is created, and the
// size of the reserve file.
func (t *Tier) reserve() int64 {
	return min(max(t.minFree.Load()/4, 64<<10), 16<<20)
}

// checkSpace reads the free space and moves between StateOK and StateFull,
// with a hysteresis of a tenth of MinFree.
func (t *Tier) checkSpace() {
	free := t.statfs()
	if free < 0 {
		if t.State() == StateFull {
			t.state.Store(int32(StateOK))
		}
		return
	}
	mf := t.minFree.Load()
	want := t.want.Load() // room a refused Put asked for (full.go)
	switch s := t.State(); {
	case s == StateOK && free < mf+want:
		t.setOut(StateFull, fmt.Sprintf("cache file system below its minimum free space (%d of %d bytes free)", free, mf))
		if t.allowLog("full") {
			t.log.Warn("store: cache file system below MinFree: storing nothing, evicting (logged at most once a minute)",
				"free", free, "minFree", mf)
		}
	case s == StateFull && free >= mf+mf/10+want:
		t.want.Store(0)
		t.state.Store(int32(StateOK))
		t.log.Info("store: free space back above MinFree: storing again", "free", free, "minFree", mf)
	}
}

// supervise runs the tier until Close: it opens the database, watches the
// free space and the engine's faults, retires a faulty engine and opens
// the next one.
func (t *Tier) supervise() {
	defer close(t.supDone)
	first := true
	retry := retryMin
	tick := time.NewTicker(spaceEvery)
	defer tick.Stop()
	var lastShed, openedAt time.Time
	wait := func() bool { // false when the tier is closing
		select {
		case <-t.done:
			return false
		case <-time.After(retry):
		}
		retry = min(retry*2, retryMax)
		return true
	}
	for {
		e := t.eng.Load()
		if e == nil {
			if t.closed.Load() || t.tooManyAbandoned() {
				<-t.done
				return
			}
			err := t.open()
			if first {
				t.firstTry <- err
				first = false
			}
			if err != nil {
				if !wait() {
					return
				}
				continue
			}
			openedAt = time.Now()
			continue
		}
		select {
		case <-t.done:
			t.retire(e, "closed")
			return
		case <-tick.C:
		case <-t.wake:
		}
		if t.reshapeIfAsked(e) {
			continue
		}
		if e.hooks.failed() {
			t.retire(e, "")
			if t.noSpaceChurn(Fault(e.hooks.fail.Load()), time.Since(openedAt) < stableAfter) {
				t.dropContents("its databases keep failing for space right after opening, and it holds more than is free")
			}
			// A fault the probe cannot see (say EIO on sstables only)
			// fails a fresh database again at once: back off as for a
			// failed open rather than re-open twice a second forever.
			if time.Since(openedAt) < stableAfter {
				if !wait() {
					return
				}
			} else {
				retry = retryMin
			}
			continue
		}
		t.checkSpace()
		if t.emergency(t.free.Load()) {
			t.retire(e, "below the free-space reserve")
			t.setOut(StateDegraded, "cache file system below its free-space reserve")
			t.dropContents("below the free-space reserve for a while")
			continue
		}
		if t.State() == StateFull && time.Since(lastShed) >= shedEvery {
			lastShed = time.Now()
			t.shed(e)
		}
	}
}

// shed evicts, from a tier below MinFree, entries (in the policy's order)
// worth the missing space (at least a fiftieth of the tier), at most every
// shedEvery, and lets compaction give the space back (engine.shed). Every
// tier on the file system does the same, each giving back what it can.
func (t *Tier) shed(e *engine) {
	deficit := t.minFree.Load() + t.minFree.Load()/10 + t.want.Load() - t.free.Load()
	if deficit <= 0 {
		return
	}
	want := max(deficit, e.bytes.Load()/50)
	if err := e.shed(want, t.free.Load(), t.done); err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrUnavailable) && t.allowLog("shed") {
		t.log.Warn("store: evicting for space failed (logged at most once a minute)", "err", err)
	}
}

// open probes the directory and opens a database in it; on success the
// engine is in service. Failures are recorded, logged at most once a
// minute, and returned.
func (t *Tier) open() (err error) {
	defer func() {
		if err != nil {
			f := openFault(err)
			t.faults[f].Add(1)
			t.setOut(StateDegraded, fmt.Sprintf("%s: %v", f, err))
			if t.allowLog("open " + f.String()) {
				t.log.Warn("store: cache tier unavailable, serving uncached and retrying (logged at most once a minute)",
					"fault", f.String(), "err", err)
			}
		}
	}()
	if err := t.cfg.fs.MkdirAll(t.cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("store: create %s: %w", t.cfg.Dir, err)
	}
	free := t.statfs()
	if free >= 0 && free < 2*t.reserve() {
		t.removeAllAside()
		free = t.statfs()
	}
	if low := t.emergency(free); low || t.lowAtOpen(free) {
		why := "its own data keeps the free space below what opening needs"
		if low {
			why = "below the free-space reserve for a while"
		}
		t.dropContents(why)
		_ = t.cfg.fs.MkdirAll(t.cfg.Dir, 0o755) // for the probe below
		free = t.statfs()
	}
	if free >= 0 && free < 2*t.reserve() {
		return fmt.Errorf("store: %s: %d bytes free, below twice the reserve (%d): %w", t.cfg.Dir, free, t.reserve(), errRefused)
	}
	if err := t.probe(); err != nil {
		return err
	}
	onDefault := isOnDefault(t.cfg.fs)
	if onDefault && !lockDir(t.cfg.Dir) {
		return &lockedError{lock: t.cfg.Dir, holder: "this process: two tiers cannot share a directory"}
	}
	e, err := t.openEngine()
	if err != nil && openFault(err) == FaultCorrupt {
		t.faults[FaultCorrupt].Add(1)
		aside := t.moveAside("corrupt")
		t.log.Warn("store: corrupt cache tier moved aside and recreated empty", "aside", aside, "err", err)
		e, err = t.openEngine()
	}
	if err != nil {
		t.openPanicked(err)
		if onDefault {
			unlockDir(t.cfg.Dir)
		}
		return err
	}
	if onDefault {
		_ = os.WriteFile(filepath.Join(t.cfg.Dir, pidFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	}
	if err := t.applyPending(e); err != nil {
		e.halted.Store(true)
		_ = e.Close()
		if onDefault {
			unlockDir(t.cfg.Dir)
		}
		return fmt.Errorf("store: purges kept while out of service: %w", err)
	}
	was := t.State()
	t.eng.Store(e)
	// A SetLimits (SIGHUP) between openEngine's read of the limits and
	// the Store above reached no engine: apply what is in force now.
	e.setLimits(t.Limits())
	t.state.Store(int32(StateOK))
	t.checkSpace()
	if was == StateDegraded {
		t.log.Info("store: cache tier recovered", "state", t.State().String())
	} else {
		t.log.Debug("store: cache tier open", "state", t.State().String())
	}
	return nil
}

// emergency reports whether the file system has been below the reserve
// for emergencyAfter: then eviction cannot help (it needs room to flush and
// compact), and the tier gives back its whole directory, as a cache may.
func (t *Tier) emergency(free int64) bool {
	if free < 0 || free >= t.reserve() {
		t.lowSince = time.Time{}
		return false
	}
	if t.lowSince.IsZero() {
		t.lowSince = time.Now()
		return false
	}
	return time.Since(t.lowSince) >= emergencyAfter
}

// dropContents deletes the tier's directory (the database is closed) to
// give its space back; the next open starts empty.
func (t *Tier) dropContents(why string) {
	t.lowSince = time.Time{}
	t.removeAllAside()
	t.faults[FaultNoSpace].Add(1)
	t.log.Warn("store: cache file system too full: dropping this tier's contents to give the space back",
		"why", why, "reserve", t.reserve(), "free", t.free.Load())
	if err := t.cfg.fs.RemoveAll(t.cfg.Dir); err != nil && t.allowLog("drop") {
		t.log.Warn("store: dropping the tier's contents failed (logged at most once a minute)", "err", err)
	}
}

// openEngine opens a database on a fresh faultFS and hooks.
func (t *Tier) openEngine() (*engine, error) {
	h := &hooks{t: t, fatalCh: make(chan struct{})}
	cfg := t.cfg
	cfg.MaxBytes, cfg.Retention = t.Limits()
	cfg.fs = &faultFS{FS: vfs.OnDiskFull(t.cfg.fs, t.releaseReserve), h: h}
	t.ensureReserve()
	return openEngine(cfg, h)
}

// probe creates, writes, syncs and removes a file in the directory, so that
// a read-only, unwritable or failing directory is found before Pebble is.
func (t *Tier) probe() error {
	name := t.cfg.fs.PathJoin(t.cfg.Dir, ".probe")
	f, err := t.cfg.fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("store: probe %s: %w", t.cfg.Dir, err)
	}
	_, werr := f.Write(make([]byte, probeSize))
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	rerr := t.cfg.fs.Remove(name)
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return fmt.Errorf("store: probe %s: %w", t.cfg.Dir, err)
	}
	return nil
}

// reservePath is the tier's reserve file, beside its directory.
func (t *Tier) reservePath() string { return t.cfg.Dir + ".reserve" }

// ensureReserve creates the reserve file if it is missing and there is room
// for it above the reserve itself.
func (t *Tier) ensureReserve() {
	p, size := t.reservePath(), t.reserve()
	if fi, err := t.cfg.fs.Stat(p); err == nil && fi.Size() >= size {
		return
	}
	if free := t.free.Load(); free >= 0 && free < 3*size {
		return
	}
	f, err := t.cfg.fs.Create(p, vfs.WriteCategoryUnspecified)
	if err != nil {
		return
	}
	_, err = f.Write(make([]byte, size))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err != nil || cerr != nil {
		_ = t.cfg.fs.Remove(p)
	}
}

// releaseReserve is vfs.OnDiskFull's callback: a write met ENOSPC. It
// deletes the reserve file so the write's retry can succeed, and reports
// the file system full.
func (t *Tier) releaseReserve() {
	_ = t.cfg.fs.Remove(t.reservePath())
	t.faults[FaultNoSpace].Add(1)
	t.kick()
}

// retire takes e out of service: new calls get ErrUnavailable at once; e
// is closed (abandoned if Pebble reported a fatal error, or if closing takes
// longer than closeTimeout) and its counters kept. A corrupt or abandoned
// directory is moved aside.
func (t *Tier) retire(e *engine, why string) {
	h := e.hooks
	f := Fault(h.fail.Load())
	if why == "" {
		msg := f.String()
		if p := h.lastErr.Load(); p != nil {
			msg += ": " + (*p).Error()
		}
		why = msg
		t.setOut(StateDegraded, why)
	}
	t.eng.Store(nil)
	// Its memtable is flushed at close, or lost: no longer admitted room.
	defer h.flushed()
	e.halted.Store(f != FaultNone) // a faulty engine must not flush at close
	// Its counters join the retired ones now, so that they never dip while
	// it closes, and again after the close for what its sweeper did
	// meanwhile (a reshape retires an engine whose sweeper is evicting).
	t.retiredMu.Lock()
	c := e.Stats()
	t.retired.addCounts(c, Stats{})
	t.retiredMu.Unlock()
	defer func() {
		t.retiredMu.Lock()
		t.retired.addCounts(e.Stats(), c)
		t.retiredMu.Unlock()
	}()

	abandoned := h.fatalErr.Load()
	if !abandoned {
		closed := make(chan error, 1)
		go func() { closed <- e.Close() }()
		select {
		case err := <-closed:
			if err != nil && t.allowLog("close") {
				t.log.Warn("store: closing a faulty database (logged at most once a minute)", "err", err)
			}
		case <-h.fatalCh:
			abandoned = true // Close waits on Pebble's lock forever: leaked
		case <-time.After(closeTimeout):
			abandoned = true // the goroutine above is leaked with it
		}
	}
	if f != FaultNone && t.allowLog("retire "+f.String()) {
		t.log.Warn("store: cache tier out of service, serving uncached until it recovers (logged at most once a minute)",
			"fault", f.String(), "why", why, "abandoned", abandoned)
	}
	switch {
	case abandoned:
		t.abandoned.Add(1)
		aside := t.moveAside("failed")
		t.log.Error("store: abandoned a database Pebble could not close; moved aside, a fresh one follows", "aside", aside)
	case f == FaultCorrupt:
		aside := t.moveAside("corrupt")
		t.log.Warn("store: corrupt cache tier moved aside and recreated empty", "aside", aside)
	}
	if isOnDefault(t.cfg.fs) {
		_ = os.Remove(filepath.Join(t.cfg.Dir, pidFile))
		unlockDir(t.cfg.Dir)
	}
}

// addCounts adds the counters of c less those of base to s, and takes c's
// bytes and entries.
func (s *Stats) addCounts(c, base Stats) {
	s.Hits += c.Hits - base.Hits
	s.Misses += c.Misses - base.Misses
	s.Puts += c.Puts - base.Puts
	s.Touches += c.Touches - base.Touches
	s.Evicted += c.Evicted - base.Evicted
	s.Expired += c.Expired - base.Expired
	s.Corrupt += c.Corrupt - base.Corrupt
	s.Purged += c.Purged - base.Purged
	s.Declined += c.Declined - base.Declined
	s.Errors += c.Errors - base.Errors
	s.Bytes, s.Entries = c.Bytes, c.Entries
}

// moveAside renames the tier's directory to "<dir>.<kind>-<time>", keeping
// at most keepAside such directories, and returns the new name. If the
// rename fails the directory is removed instead.
func (t *Tier) moveAside(kind string) string {
	t.removeAside(keepAside - 1)
	aside := fmt.Sprintf("%s.%s-%s", t.cfg.Dir, kind, time.Now().UTC().Format("20060102T150405.000"))
	if err := t.cfg.fs.Rename(t.cfg.Dir, aside); err != nil {
		_ = t.cfg.fs.RemoveAll(t.cfg.Dir)
		return "(removed: " + err.Error() + ")"
	}
	return aside
}

// removeAside deletes the oldest moved-aside directories of the tier until
// at most keep remain.
func (t *Tier) removeAside(keep int) {
	parent, base := filepath.Split(t.cfg.Dir)
	if parent == "" {
		parent = "."
	}
	names, err := t.cfg.fs.List(parent)
	if err != nil {
		return
	}
	var aside []string
	for _, n := range names {
		if strings.HasPrefix(n, base+".corrupt-") || strings.HasPrefix(n, base+".failed-") {
			aside = append(aside, n)
		}
	}
	// The suffix after the kind is a sortable time.
	sort.Slice(aside, func(i, j int) bool { return asideTime(aside[i]) < asideTime(aside[j]) })
	for len(aside) > keep {
		_ = t.cfg.fs.RemoveAll(t.cfg.fs.PathJoin(parent, aside[0]))
		aside = aside[1:]
	}
}

func asideTime(name string) string {
	i := strings.LastIndexByte(name, '-')
	return name[i+1:]
}

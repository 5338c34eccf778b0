// Package store is the on-disk cache of iiif-proxy: one Tier per cache tier
// (tiles, thumbnails, info.json, other), each a Pebble database in its own
// directory, holding HTTP response bodies under opaque keys.
//
// The proxy keys an entry as ID + "\x00" + canonical request, e.g.
//
//	"book1/p12.tif\x00full/!200,200/0/default.jpg"
//
// so that PurgePrefix([]byte("book1/p12.tif\x00")) removes every derivative of
// one image. IDs never contain NUL.
//
// How it works:
//
//   - A value is a checksummed header (format version, content type, source
//     Last-Modified, stored-at, last-access bucket, body length, body hash)
//     followed by the source identity and the body; see format.go. Get verifies both checksums on
//     every read; a value that fails is deleted, counted in Stats.Corrupt and
//     reported as a miss, never served.
//   - The eviction order is S3-FIFO, held in memory (policy.go): a hit sets
//     a counter there and writes nothing to disk. Beside each entry
//     ("e"+key) an access-index key ("a"+bucket+key, its value the entry's
//     size) records its last access as far as the disk knows: written by
//     Put, and moved by the sweeper, in batches, for entries read since
//     (at most once per Config.TouchEvery each, index key only, never the
//     value). Open rebuilds the order from the index.
//   - A background sweeper drops entries not read for Config.Retention,
//     then evicts in the policy's order while the tier holds more than
//     Config.MaxBytes, down to 99% of it; a reclaimer compacts away what
//     it deleted once that passes an eighth of the live bytes (disk.go), so
//     the directory tracks the budget, and Put declines to store when the
//     directory, with what flushes and compactions may still add to it,
//     would pass 1.2 × MaxBytes + DiskSlack. The sweeper works in small
//     batches and never blocks reads.
//   - Live bytes and entries are kept in a merge-operator counter written in
//     the same batch as each change, so Open reads two numbers instead of
//     scanning, and a crash can never separate an entry from its accounting.
//   - There is no WAL (it is a cache): writes reach the memtable, which the
//     sweeper flushes every 2 s, so a crash may lose the last 2 s of Puts,
//     never tear one, because each change is one atomic Pebble batch, a
//     memtable is flushed whole, and Get verifies checksums anyway. Purges
//     flush at once.
//   - A Tier (tier.go) supervises the database: no fault of its directory
//     (full, read-only, failing, corrupt, locked, deleted) stops the server;
//     the tier serves uncached (ErrUnavailable) and recovers by itself.
//     Pebble is never driven into its fatal paths; see tier.go for how.
//
// Retention's clock has a granularity of one second (access buckets,
// expiry); the eviction order has none: it is the order of the policy's
// queues, exact to the event.
package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Errors returned by a Tier. Errors from Pebble are wrapped, not replaced.
var (
	// ErrNotFound reports a miss: the key is absent, expired, or its value
	// failed verification (then the error also matches ErrCorrupt).
	ErrNotFound = errors.New("store: not found")
	// ErrCorrupt marks a miss caused by a value that failed verification and
	// was dropped. Every error that matches ErrCorrupt also matches
	// ErrNotFound, so callers can treat both as a plain miss.
	ErrCorrupt = errors.New("store: corrupt value dropped")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("store: closed")
	// ErrTooLarge is returned by Put for an entry that could never fit:
	// larger than MaxBytes, a body of 4 GiB or more, or a content type
	// longer than 1024 bytes.
	ErrTooLarge = errors.New("store: entry too large")
	// ErrUnavailable is returned while the tier cannot serve: it is
	// opening, or degraded after a fault of its directory (full, read-only,
	// failing, locked by another process, corrupt), and Put also returns it
	// while the file system is below MinFree. The request goes on
	// uncached; the Tier recovers by itself (see tier.go).
	ErrUnavailable = errors.New("store: tier unavailable")
	// ErrOpening is the ErrUnavailable of a tier whose database is still
	// being opened (start-up, or reopening after a fault cleared): a state
	// the tier passes through, not a fault, so callers need not report it.
	ErrOpening = fmt.Errorf("%w: opening", ErrUnavailable)
)

// errNoRoom is Put's error while the cache file system is below MinFree.
var errNoRoom = fmt.Errorf("%w: cache file system below its minimum free space", ErrUnavailable)

// errLayout marks a database that opened but is not one of ours, or whose
// accounting is unreadable: the Tier moves it aside like a corrupt one.
var errLayout = errors.New("store: unknown layout")

// errCorruptMiss is what Get returns for a dropped corrupt value.
var errCorruptMiss = fmt.Errorf("%w: %w", ErrNotFound, ErrCorrupt)

// Defaults for zero Config fields.
const (
	DefaultSweepEvery = 10 * time.Second
	DefaultCacheBytes = 64 << 20
	// DefaultMinFreePercent applies when MinFreeBytes and MinFreePercent
	// are both zero.
	DefaultMinFreePercent = 5
	// DefaultTouchEvery applies when Retention is zero.
	DefaultTouchEvery = time.Hour
)

// lowWaterPercent is how far below MaxBytes budget eviction goes, so that
// every Put at the limit does not start another eviction round. 99: with the
// policy in memory a round costs little, and every per cent left unused is
// hit ratio lost (95 cost 1.7 points at half the payload on the viewer
// trace).
const lowWaterPercent = 99

// Config configures a Tier. The zero value of every field but Dir is usable.
type Config struct {
	// Dir is the directory of the Pebble database; required. It is created
	// if missing. Two Tiers cannot share a directory.
	Dir string
	// MaxBytes is the byte budget for live entries, counted as
	// len(key) + len(stored value) (header + content type + body) per entry.
	// When exceeded, entries are evicted in the policy's order (S3-FIFO)
	// down to 99% of it. Zero means unlimited. The directory holds a little
	// more: the access index (13 bytes + key per entry), Pebble's block
	// overhead, deleted data until reclaim compacts it (at most an eighth of
	// the live bytes), and FixedOverhead; see disk.go.
	MaxBytes int64
	// Retention drops entries not read for this long (a sliding window: a
	// read pushes it back). Zero keeps entries until evicted by MaxBytes.
	Retention time.Duration
	// TouchEvery: hits write nothing; the sweeper moves an entry's index key
	// to its last read (index key only, never the value) once that read is
	// TouchEvery past the bucket on disk. Zero means Retention/16, or one
	// hour when Retention is zero. It must be less than Retention. Reads
	// newer than the last checkpoint are lost by a restart, so an entry read
	// steadily may expire up to TouchEvery early after one.
	TouchEvery time.Duration
	// SweepEvery is how often the background sweeper looks for expired
	// entries and checks the budget. Zero means 10s. A Put that takes the
	// tier over MaxBytes also wakes the sweeper at once.
	SweepEvery time.Duration
	// CacheBytes sizes Pebble's block cache. Zero means 64 MiB.
	CacheBytes int64
	// MinFreeBytes and MinFreePercent are the free space the cache file
	// system must keep, as nginx's proxy_cache_path min_free: the larger of
	// MinFreeBytes and MinFreePercent of the file system's size. Below it
	// the tier stores nothing and evicts until it is back above (see
	// tier.go). Both zero means DefaultMinFreePercent.
	MinFreeBytes   int64
	MinFreePercent float64
	// Logger receives Pebble's messages (Info at Debug, errors at Warn) and
	// the tier's own. Nil means slog.Default().
	Logger *slog.Logger

	fs         vfs.FS           // nil means vfs.Default; tests use vfs.NewMem()
	now        func() time.Time // nil means time.Now
	noSweeper  bool             // tests run sweeps synchronously
	afterSweep func()           // called by the sweeper after each pass; tests
}

// Validate reports every invalid field at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("store: Dir is required"))
	}
	if c.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("store: MaxBytes %d is negative", c.MaxBytes))
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("store: Retention %v is negative", c.Retention))
	}
	if c.TouchEvery < 0 {
		errs = append(errs, fmt.Errorf("store: TouchEvery %v is negative", c.TouchEvery))
	}
	if c.Retention > 0 && c.TouchEvery >= c.Retention {
		errs = append(errs, fmt.Errorf("store: TouchEvery %v must be less than Retention %v", c.TouchEvery, c.Retention))
	}
	if c.SweepEvery < 0 {
		errs = append(errs, fmt.Errorf("store: SweepEvery %v is negative", c.SweepEvery))
	}
	if c.MinFreeBytes < 0 {
		errs = append(errs, fmt.Errorf("store: MinFreeBytes %d is negative", c.MinFreeBytes))
	}
	if c.MinFreePercent < 0 || c.MinFreePercent >= 100 {
		errs = append(errs, fmt.Errorf("store: MinFreePercent %v must be in [0, 100)", c.MinFreePercent))
	}
	if c.CacheBytes < 0 {
		errs = append(errs, fmt.Errorf("store: CacheBytes %d is negative", c.CacheBytes))
	}
	return errors.Join(errs...)
}

// minFree is the free space to keep on a file system of total bytes.
func (c *Config) minFree(total int64) int64 {
	pct := c.MinFreePercent
	if pct == 0 && c.MinFreeBytes == 0 {
		pct = DefaultMinFreePercent
	}
	return max(c.MinFreeBytes, int64(float64(total)*pct/100))
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.TouchEvery == 0 {
		c.TouchEvery = DefaultTouchEvery
		if c.Retention > 0 {
			c.TouchEvery = c.Retention / 16
		}
	}
	if c.SweepEvery == 0 {
		c.SweepEvery = DefaultSweepEvery
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = DefaultCacheBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.fs == nil {
		c.fs = vfs.Default
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Entry is one cached response.
type Entry struct {
	ContentType string
	// LastModified is the source image's modification time, kept to whole
	// seconds. The zero time round-trips as the zero time.
	LastModified time.Time
	// SourceIdentity identifies the version of the source the entry was
	// made from (renderer.Identity's String), so that revalidation can tell
	// a replaced file from an unchanged one. Opaque to the store; at most
	// 1024 bytes. Entries stored before format version 3 read back with "".
	SourceIdentity string
	// StoredAt is when Put stored the entry (or Refresh revalidated it); set
	// by the Tier, ignored on Put.
	StoredAt time.Time
	// ETag is a strong, quoted ETag of Body derived from its 64-bit xxhash,
	// e.g. "\"9f2c0e51a3b4d6e7\""; set by the Tier, ignored on Put.
	ETag string
	// Body is the response body. On Get it is a private copy the caller may
	// keep and modify.
	Body []byte
}

// Stats are a tier's counters. The uint64 fields count events since Open;
// Bytes and Entries describe the live contents and survive restarts.
type Stats struct {
	Hits    uint64 // Gets that returned an entry
	Misses  uint64 // Gets that returned ErrNotFound (absent, expired or corrupt)
	Puts    uint64 // entries stored
	Touches uint64 // access-index keys written for reads: the sweeper's checkpoints and Refresh (hits write nothing)
	Evicted uint64 // entries dropped to stay within MaxBytes (eviction cause "budget")
	Expired uint64 // entries dropped for not being read within Retention ("retention")
	Corrupt uint64 // values that failed verification and were dropped ("corrupt")
	Purged  uint64 // entries removed by PurgePrefix or PurgeAll ("purge")
	// Declined counts Puts not stored because the directory, with what
	// flushes and compactions under way may still add, would have passed
	// its bound (1.2 × MaxBytes + DiskSlack): a cache may decline to store
	// rather than overshoot its disk (disk.go).
	Declined uint64
	Errors   uint64 // Pebble errors
	Bytes    int64  // live bytes, as counted for MaxBytes
	Entries  int64  // live entries
	// DiskBytes is what the tier's database holds on disk: sstables
	// (including deleted data not yet compacted away), MANIFEST and OPTIONS
	// files, as Pebble accounts them. The reserve file beside the directory
	// (see tier.go) is not included. Zero while no database is open.
	DiskBytes int64
	// FixedOverhead bounds what DiskBytes holds beyond entries, their
	// bookkeeping and garbage awaiting reclaim: the constant FixedOverhead.
	FixedOverhead int64
	// MaxBytes is the budget in force (Config.MaxBytes, or SetLimits'); 0
	// means none. While it is set, the directory is kept under
	// 1.2 × MaxBytes + DiskSlack, transients included, by declining Puts
	// (Declined).
	MaxBytes int64
	// HitRatio is Hits / (Hits + Misses), 0 before any Get.
	HitRatio float64

	// Health of the tier (see tier.go).
	State        State       // what the tier is doing now
	FreeBytes    int64       // free space of the cache file system at the last check; -1 unknown
	MinFreeBytes int64       // MinFree in bytes on that file system
	Unavailable  uint64      // calls answered ErrUnavailable (served uncached)
	Faults       FaultCounts // faults seen, by kind
}

// FaultCounts counts faults by kind; it marshals to JSON as an object keyed
// by the kinds' names ("nospace", "readonly", "io", "corrupt", "locked").
type FaultCounts [NumFaults]uint64

// Of returns the count of kind f.
func (c FaultCounts) Of(f Fault) uint64 { return c[f] }

// MarshalJSON implements json.Marshaler.
func (c FaultCounts) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for f := FaultNoSpace; f < NumFaults; f++ {
		if f > FaultNoSpace {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, f.String()...)
		b = append(b, `":`...)
		b = strconv.AppendUint(b, c[f], 10)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads what MarshalJSON writes; unknown kinds are ignored.
func (c *FaultCounts) UnmarshalJSON(b []byte) error {
	var m map[string]uint64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for f := FaultNoSpace; f < NumFaults; f++ {
		c[f] = m[f.String()]
	}
	return nil
}

// stripes is the number of per-key locks. Writers to one key (Put, touches,
// drops) serialize on its stripe so that reading the old value and writing
// the new one, with its accounting delta, is atomic.
const stripes = 256

// engine is one open Pebble database of a tier: the keyspace, the
// accounting and the sweeper. A Tier runs one engine at a time and replaces
// it after a fault (see tier.go); every lock here belongs to one engine, so
// an engine abandoned with a call stuck inside Pebble holds nothing the next
// one needs. Its methods are safe for concurrent use. Reads take no lock
// beyond closeMu's read side.
type engine struct {
	cfg   Config
	db    *pebble.DB
	log   *slog.Logger
	hooks *hooks

	// closeMu guards db against Close: every method holds its read side,
	// Close takes the write side. closed is set first so that new callers
	// fail fast.
	closeMu sync.RWMutex
	closed  atomic.Bool
	halted  atomic.Bool // the Tier retired this engine: every call fails fast

	// writeMu orders whole-keyspace writers against per-key writers:
	// PurgePrefix and PurgeAll hold its write side (their accounting needs
	// the affected keys to hold still); Put, touches, drops and the sweeper
	// hold its read side. Get only ever tries it (TryRLock) and skips its
	// optional write if a purge is running.
	writeMu sync.RWMutex
	keyMu   [stripes]sync.Mutex // keyMu[stripe(key)] protects that key's entry and index keys

	bytes   atomic.Int64 // live bytes; mirrors the persisted counters
	entries atomic.Int64 // live entries; mirrors the persisted counters

	hits, misses, puts, touches atomic.Uint64
	evicted, expired, corrupt   atomic.Uint64
	errs                        atomic.Uint64
	writes                      atomic.Uint64 // batches committed; for tests
	dirty                       atomic.Bool   // the memtable holds writes not yet flushed
	touchSecs                   int64
	retentionSecs, maxBytes     atomic.Int64  // cfg.Retention and cfg.MaxBytes; Tier.SetLimits changes them live
	kick                        chan struct{} // wakes the sweeper; capacity 1
	reclaimKick                 chan struct{} // wakes the reclaimer; capacity 1
	done                        chan struct{} // closed by Close
	sweeperDone                 chan struct{} // closed when the sweeper exits
	sweepMu                     sync.Mutex    // one sweep at a time
	purged                      atomic.Uint64 // entries removed by PurgePrefix and PurgeAll
	declined                    atomic.Uint64 // Puts declined by overBound
	lastPut                     atomic.Int64  // when a Put last stored, Unix ns (reclaim)
	lastDecline                 atomic.Int64  // when a Put was last declined, Unix ns (reclaim)
	diskAt                      atomic.Int64  // when disk was last measured, Unix ns (overBound)

	polMu sync.Mutex // protects pol
	pol   *policy    // eviction order and last reads; changed under the key's stripe lock too, except by hits

	reclaimMu    sync.Mutex // one reclaim at a time; protects lastReclaim
	lastReclaim  time.Time
	reclaimFloor atomic.Int64  // tables beyond the live bytes right after the last reclaim
	reclaimForce atomic.Bool   // a purge asks the next sweep to reclaim at once
	reclaims     atomic.Uint64 // compactions run by reclaim
	disk         atomic.Int64  // see diskBytes
	ahead        atomic.Int64  // see ahead (disk.go): measured with disk by overBound
	admitted     atomic.Int64  // bytes Put stored since overBound last measured
	shape        shape         // the LSM's shape (sizeToBudget), fixed at open
}

// openEngine opens (creating if needed) the Pebble database in cfg.Dir,
// whose fields are already defaulted. It reads no values: the counters,
// and the access index's keys and sizes to rebuild the eviction order
// (rebuild). h connects the engine to
// its Tier; nil means no Tier (tests of the keyspace).
func openEngine(cfg Config, h *hooks) (*engine, error) {
	if h == nil {
		h = &hooks{}
	}
	t := &engine{
		cfg:         cfg,
		hooks:       h,
		log:         cfg.Logger.With("dir", cfg.Dir),
		touchSecs:   ceilSeconds(cfg.TouchEvery),
		kick:        make(chan struct{}, 1),
		reclaimKick: make(chan struct{}, 1),
		done:        make(chan struct{}),
		sweeperDone: make(chan struct{}),
		pol:         newPolicy(),
	}
	t.retentionSecs.Store(ceilSeconds(cfg.Retention))
	t.maxBytes.Store(cfg.MaxBytes)
	t.shape = shapeFor(cfg.MaxBytes)
	cache := pebble.NewCache(cfg.CacheBytes)
	defer cache.Unref() // the DB holds its own reference
	db, err := openPebble(cfg.Dir, pebbleOptions(&t.cfg, cache, h))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", cfg.Dir, err)
	}
	t.db = db
	if err := t.load(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %s: %w", cfg.Dir, err)
	}
	t.disk.Store(int64(db.Metrics().DiskSpaceUsage()))
	if cfg.noSweeper {
		close(t.sweeperDone)
	} else {
		go t.sweeper()
		t.wakeSweeper() // a first pass now: MaxBytes or Retention may have shrunk
	}
	return t, nil
}

// load checks the layout version and reads the counters.
func (t *engine) load() error {
	v, closer, err := t.db.Get(keyLayout)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := t.db.Set(keyLayout, layoutV1, pebble.NoSync); err != nil {
			return err
		}
		t.dirty.Store(true)
	case err != nil:
		return err
	default:
		ok := bytes.Equal(v, layoutV1)
		got := append([]byte(nil), v...)
		closer.Close()
		if !ok {
			return fmt.Errorf("%w: unknown store layout version %x", errLayout, got)
		}
	}
	v, closer, err = t.db.Get(keyMeta)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	c, ok := decodeCounters(v)
	closer.Close()
	if !ok {
		return fmt.Errorf("%w: malformed counters (%d bytes)", errLayout, len(v))
	}
	t.bytes.Store(c.bytes)
	t.entries.Store(c.entries)
	return t.rebuild()
}

// rebuild loads the eviction order from the access index: keys only (and a
// 4-byte size), no values, in index order, so the least recently stored or
// checkpointed entries are evicted first; reads since the last checkpoint
// are forgotten, which costs a little hit ratio after a restart, never
// correctness. About 1 s per million entries. A key found twice (possible
// only after a crash between a checkpoint and its flush... which cannot tear
// a batch, so in practice never) keeps its later bucket; the earlier index
// key is deleted.
func (t *engine) rebuild() error {
	avg := int64(0)
	if n := t.entries.Load(); n > 0 {
		avg = t.bytes.Load() / n
	}
	it, err := t.db.NewIter(&pebble.IterOptions{LowerBound: []byte{spaceAccess}, UpperBound: []byte{spaceAccess + 1}})
	if err != nil {
		return err
	}
	var stale [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		bucket, key, ok := parseAccessKey(it.Key())
		if !ok {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		size, ok := parseSizeValue(v)
		if !ok {
			size = avg
		}
		if old, dup := t.pol.load(key, size, bucket); dup {
			stale = append(stale, appendAccessKey(nil, old, key))
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	if len(stale) > 0 {
		b := t.db.NewBatch()
		defer b.Close()
		for _, k := range stale {
			_ = b.Delete(k, nil)
		}
		if err := t.commit(b); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the sweeper, flushes the memtable and closes the database.
// Methods called after Close return ErrClosed; Close waits for calls in
// flight. Closing twice returns ErrClosed. A halted engine (retired after a
// fault) is closed without the flush: its disk is failing, and without a
// WAL what the memtable holds is simply lost, as after a crash.
func (t *engine) Close() error {
	if t.closed.Swap(true) {
		return ErrClosed
	}
	close(t.done)
	<-t.sweeperDone
	t.closeMu.Lock()
	defer t.closeMu.Unlock()
	if !t.halted.Load() && t.hooks.canFlush() {
		// Without a WAL, what is not flushed is lost.
		if err := t.flushWithin(nil); err != nil {
			t.log.Warn("store: flush at close", "err", err)
		}
	}
	if err := t.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", t.cfg.Dir, err)
	}
	return nil
}

// enter admits a call: it holds closeMu's read side until leave.
func (t *engine) enter() error {
	t.closeMu.RLock()
	if t.closed.Load() {
		t.closeMu.RUnlock()
		return ErrClosed
	}
	if t.halted.Load() || t.hooks.failed() {
		// A fault was seen: no call goes further into this database,
		// even before the Tier retires it.
		t.closeMu.RUnlock()
		return ErrUnavailable
	}
	return nil
}

func (t *engine) leave() { t.closeMu.RUnlock() }

// pebbleErr counts and wraps an unexpected Pebble error, and logs it at most
// once a minute per operation.
func (t *engine) pebbleErr(op string, err error) error {
	t.errs.Add(1)
	if pebble.IsCorruptionError(err) {
		t.hooks.fault(FaultCorrupt, err)
	}
	if t.hooks.allowLog("pebble error " + op) {
		t.log.Warn("store: pebble error (logged at most once a minute)", "op", op, "err", err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

func (t *engine) now() time.Time { return t.cfg.now() }

// stripe returns the lock of key's stripe.
func (t *engine) stripe(key []byte) int { return int(xxhash.Sum64(key) % stripes) }

// keyBuf is a pooled scratch buffer for Pebble keys; Pebble does not retain
// keys passed to Get.
type keyBuf struct{ b []byte }

var keyBufs = sync.Pool{New: func() any { return &keyBuf{b: make([]byte, 0, 256)} }}

func getKeyBuf() *keyBuf   { return keyBufs.Get().(*keyBuf) }
func putKeyBuf(kb *keyBuf) { kb.b = kb.b[:0]; keyBufs.Put(kb) }

// Get returns the entry stored under key, or ErrNotFound. The returned Body is
// a private copy (Pebble's buffer is only valid until its closer is closed).
//
// A value that fails verification is deleted, counted in Stats.Corrupt and
// reported as ErrNotFound (the error also matches ErrCorrupt). An entry not
// read within Retention is a miss even if the sweeper has not reached it. A
// hit writes nothing unless its access bucket is older than TouchEvery; then
// it rewrites header and index once, best effort (a failure is counted in
// Stats.Errors but does not fail the Get).
func (t *engine) Get(key []byte) (Entry, error) {
	e, _, err := t.GetAppend(key, nil)
	return e, err
}

// GetAppend is Get appending the body to dst, so a caller with a reusable
// buffer (a server's response buffer) reads a hit without allocating it: the
// returned Entry's Body is the tail of the returned slice. On error the
// slice is dst unchanged.
func (t *engine) GetAppend(key, dst []byte) (e Entry, out []byte, err error) {
	return t.getAppend(key, dst, true)
}

// getAppend is GetAppend; countMiss false leaves a miss uncounted (Lookup).
func (t *engine) getAppend(key, dst []byte, countMiss bool) (e Entry, out []byte, err error) {
	out = dst
	if err := t.enter(); err != nil {
		return Entry{}, out, err
	}
	defer t.leave()

	kb := getKeyBuf()
	defer putKeyBuf(kb)
	kb.b = appendEntryKey(kb.b, key)
	v, closer, err := t.db.Get(kb.b)
	if errors.Is(err, pebble.ErrNotFound) {
		t.miss(countMiss)
		return Entry{}, out, ErrNotFound
	}
	if pebble.IsCorruptionError(err) {
		// A block failed Pebble's checksum. Shadow the key with a deletion
		// so that it can be cached again (a Put's newer value is read
		// before the bad block); the Tier counts the corruption and
		// rebuilds the database if it keeps happening.
		t.miss(countMiss)
		t.corrupt.Add(1)
		t.hooks.fault(FaultCorrupt, err)
		t.tryForget(key)
		return Entry{}, out, fmt.Errorf("%w: %w", errCorruptMiss, err)
	}
	if err != nil {
		return Entry{}, out, t.pebbleErr("get", err)
	}
	h, ok := decodeValue(v)
	if !ok {
		closer.Close()
		t.miss(countMiss)
		t.tryDrop(key, dropCorrupt)
		return Entry{}, out, errCorruptMiss
	}
	now := seconds(t.now())
	if t.isExpired(t.lastRead(key, h.access), now) {
		closer.Close()
		t.miss(countMiss)
		t.tryDrop(key, dropExpired)
		return Entry{}, out, ErrNotFound
	}
	e, out = toEntry(v, &h, dst) // copies: v dies at closer.Close
	closer.Close()
	t.hits.Add(1)
	t.polMu.Lock()
	t.pol.hit(key, now, t.touchSecs)
	t.polMu.Unlock()
	return e, out, nil
}

// miss counts a miss unless the caller counted it already.
func (t *engine) miss(count bool) {
	if count {
		t.misses.Add(1)
	}
}

// lastRead is key's last read: the later of its value's access field
// (written by Put and Refresh) and the policy's memory of reads since.
func (t *engine) lastRead(key []byte, stored int64) int64 {
	t.polMu.Lock()
	defer t.polMu.Unlock()
	if n := t.pol.get(key); n != nil && n.access > stored {
		return n.access
	}
	return stored
}

// indexBucket is the access bucket of key's index key: the policy's, else
// (a value written before the policy knew it) the value's access field.
// The caller holds key's stripe lock.
func (t *engine) indexBucket(key, v []byte) (int64, bool) {
	t.polMu.Lock()
	if n := t.pol.get(key); n != nil {
		b := n.persisted
		t.polMu.Unlock()
		return b, true
	}
	t.polMu.Unlock()
	return rawAccess(v)
}

// tryForget deletes key's entry without reading it (its block is corrupt),
// skipped while a purge holds writeMu. Its index key stays behind until the
// sweeper finds it stale; the accounting cannot know the entry's size, so
// the live byte count stays too high until the entry's space is reclaimed by
// the Tier's rebuild (bounded drift, and only on a corrupt disk).
func (t *engine) tryForget(key []byte) {
	if !t.hooks.canWrite() || !t.writeMu.TryRLock() {
		return
	}
	defer t.writeMu.RUnlock()
	mu := &t.keyMu[t.stripe(key)]
	mu.Lock()
	defer mu.Unlock()
	b := t.db.NewBatch()
	defer b.Close()
	_ = b.Delete(appendEntryKey(nil, key), nil)
	if bucket, ok := t.indexBucket(key, nil); ok {
		_ = b.Delete(appendAccessKey(nil, bucket, key), nil)
	}
	if err := t.commit(b); err != nil {
		_ = t.pebbleErr("forget", err)
		return
	}
	t.polMu.Lock()
	t.pol.remove(key)
	t.polMu.Unlock()
}

// tryDrop is Get's removal of a corrupt or expired entry: skipped while a
// purge holds writeMu (the next Get or the sweeper will do it).
func (t *engine) tryDrop(key []byte, why dropReason) {
	if !t.writeMu.TryRLock() {
		return
	}
	defer t.writeMu.RUnlock()
	t.drop(key, why)
}

// isExpired reports whether an entry last read at bucket access is past
// Retention at now.
func (t *engine) isExpired(access, now int64) bool {
	r := t.retentionSecs.Load()
	return r > 0 && access < now-r
}

// Touch marks the entry read now, as a hit does: in memory only (see
// policy). ErrNotFound if the tier does not hold it or it is past Retention
// (the sweeper drops it).
func (t *engine) Touch(key []byte) (err error) {
	if err := t.enter(); err != nil {
		return err
	}
	defer t.leave()
	now := seconds(t.now())
	t.polMu.Lock()
	defer t.polMu.Unlock()
	n := t.pol.get(key)
	if n == nil || t.isExpired(n.access, now) {
		return ErrNotFound
	}
	t.pol.hit(key, now, t.touchSecs)
	return nil
}

// Refresh records that the entry was revalidated against its source and found
// unchanged: StoredAt becomes storedAt (now, if zero) and the entry is marked
// read now. The body is kept. ErrNotFound if absent or past Retention.
func (t *engine) Refresh(key []byte, storedAt time.Time) (err error) {
	if err := t.enter(); err != nil {
		return err
	}
	defer t.leave()
	now := t.now()
	if storedAt.IsZero() {
		storedAt = now
	}
	sa := storedAt.UnixNano()
	t.writeMu.RLock()
	defer t.writeMu.RUnlock()
	_, err = t.touch(key, seconds(now), &sa)
	return err
}

// touch rewrites key's header with access bucket now and, if storedAt is not
// nil, a new stored-at time, and moves its index key to bucket now. It
// reports whether it wrote. Only Refresh writes this way (a revalidation
// must persist its new stored-at); hits and Touch change memory only. The
// caller holds writeMu's read side.
func (t *engine) touch(key []byte, now int64, storedAt *int64) (bool, error) {
	mu := &t.keyMu[t.stripe(key)]
	mu.Lock()
	defer mu.Unlock()

	kb := getKeyBuf()
	defer putKeyBuf(kb)
	kb.b = appendEntryKey(kb.b, key)
	ek := kb.b
	v, closer, err := t.db.Get(ek)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, ErrNotFound
	}
	if err != nil {
		return false, t.pebbleErr("touch", err)
	}
	defer closer.Close()
	h, ok := decodeValue(v)
	if !ok {
		t.dropLocked(key, ek, v, dropCorrupt)
		return false, errCorruptMiss
	}
	if t.isExpired(t.lastRead(key, h.access), now) {
		t.dropLocked(key, ek, v, dropExpired) // reading it now must not revive it
		return false, ErrNotFound
	}
	old, _ := t.indexBucket(key, v)
	if h.access >= now && old >= now && (storedAt == nil || *storedAt == h.storedAt) {
		return false, nil // already current (or from the future: keep it)
	}
	if !t.hooks.canWrite() {
		// Below MinFree nothing is stored, access times included: the entry
		// may expire or be evicted a little early, which a cache can afford.
		return false, nil
	}
	if now > h.access {
		h.access = now
	}
	if storedAt != nil {
		h.storedAt = *storedAt
	}
	b := t.db.NewBatch()
	defer b.Close()
	op := b.SetDeferred(len(ek), len(v))
	copy(op.Key, ek)
	copy(op.Value, v)
	putHeader(op.Value, &h)
	if err := op.Finish(); err != nil {
		return false, t.pebbleErr("touch", err)
	}
	size := int64(len(key) + len(v))
	if old != h.access {
		ik := appendAccessKey(nil, old, key)
		if err := b.Delete(ik, nil); err != nil {
			return false, t.pebbleErr("touch", err)
		}
		ik = appendAccessKey(ik[:0], h.access, key)
		if err := b.Set(ik, sizeValue(size), nil); err != nil {
			return false, t.pebbleErr("touch", err)
		}
	}
	if err := t.commit(b); err != nil {
		return false, t.pebbleErr("touch", err)
	}
	t.touches.Add(1)
	t.polMu.Lock()
	if n := t.pol.get(key); n != nil {
		n.persisted = h.access
		n.access = max(n.access, h.access)
	} else {
		t.pol.add(key, size, h.access)
	}
	t.polMu.Unlock()
	return true, nil
}

// commit applies b and counts it. Nothing is synced: the database runs
// without a WAL (see tier.go), so a commit only reaches the memtable, which
// the sweeper flushes every flushEvery.
func (t *engine) commit(b *pebble.Batch) error {
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	t.writes.Add(1)
	t.dirty.Store(true)
	return nil
}

// commitDurable applies b and flushes the memtable, so that b survives a
// crash: purges must, or a crash could bring back what they removed.
func (t *engine) commitDurable(b *pebble.Batch) error {
	if err := t.commit(b); err != nil {
		return err
	}
	t.dirty.Store(false)
	if err := t.flushWithin(t.done); err != nil {
		t.dirty.Store(true)
		return err
	}
	return nil
}

// flushEvery bounds what a crash of the process can lose: without a WAL,
// writes live in the memtable until it is flushed to an sstable. Each flush
// with something in it writes one small sstable, which compactions merge.
const flushEvery = 2 * time.Second

// flushIfDirty writes the memtable to an sstable if anything was written
// since the last flush and the file system has room; otherwise it tries
// again next time.
func (t *engine) flushIfDirty() {
	if !t.dirty.Load() || !t.hooks.canWrite() {
		return
	}
	if err := t.enter(); err != nil {
		return
	}
	defer t.leave()
	t.dirty.Store(false)
	if err := t.flushWithin(t.done); err != nil {
		t.dirty.Store(true)
		_ = t.pebbleErr("flush", err)
	}
}

// Put stores e under key, replacing any previous entry, and returns the
// entry as stored: StoredAt is now, ETag is derived from Body, LastModified
// is truncated to whole seconds. Body is copied into the store, so the caller
// may reuse its buffer once it is done with the returned Entry, whose Body is
// e.Body itself.
func (t *engine) Put(key []byte, e Entry) (stored Entry, err error) {
	if len(e.ContentType) > maxCTLen || len(e.SourceIdentity) > maxIdentLen || int64(len(e.Body)) > maxBodyLen {
		return Entry{}, ErrTooLarge
	}
	size := int64(len(key) + entryLen(&e))
	if max := t.maxBytes.Load(); max > 0 && size > max {
		return Entry{}, ErrTooLarge
	}
	if !t.hooks.canWrite() || !t.hooks.roomFor(size) {
		return Entry{}, errNoRoom
	}
	if err := t.enter(); err != nil {
		return Entry{}, err
	}
	defer t.leave()

	nowT := t.now()
	now := seconds(nowT)
	h := header{storedAt: nowT.UnixNano(), access: now, bodyHash: xxhash.Sum64(e.Body)}
	stored = Entry{
		ContentType:    e.ContentType,
		SourceIdentity: e.SourceIdentity,
		StoredAt:       time.Unix(0, h.storedAt).UTC(),
		ETag:           etag(h.bodyHash),
		Body:           e.Body,
	}
	if !e.LastModified.IsZero() {
		h.flags |= flagLastMod
		h.lastMod = e.LastModified.Unix()
		stored.LastModified = time.Unix(h.lastMod, 0).UTC()
	}

	if t.overBound() {
		// The directory is over its bound: decline (see overBound).
		t.declined.Add(1)
		t.lastDecline.Store(nowT.UnixNano())
		return stored, nil
	}

	// Build the batch before taking the key lock: encoding copies the body.
	b := t.db.NewBatch()
	defer b.Close()
	kb := getKeyBuf()
	defer putKeyBuf(kb)
	kb.b = appendEntryKey(kb.b, key)
	ek := kb.b
	op := b.SetDeferred(len(ek), entryLen(&e))
	copy(op.Key, ek)
	encodeEntry(op.Value, &h, &e)
	if err := op.Finish(); err != nil {
		return Entry{}, t.pebbleErr("put", err)
	}
	ik := appendAccessKey(make([]byte, 0, accessKeyLen+len(key)), now, key)

	t.writeMu.RLock()
	defer t.writeMu.RUnlock()
	mu := &t.keyMu[t.stripe(key)]
	mu.Lock()
	defer mu.Unlock()

	delta := counters{bytes: size, entries: 1}
	v, closer, err := t.db.Get(ek)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case pebble.IsCorruptionError(err):
		// The old value is unreadable: replace it anyway (its size is
		// unknown, see tryForget), or the key could never be cached again.
		t.hooks.fault(FaultCorrupt, err)
	case err != nil:
		return Entry{}, t.pebbleErr("put", err)
	default:
		delta.bytes -= int64(len(key) + len(v))
		delta.entries = 0
		if old, ok := t.indexBucket(key, v); ok && old != now {
			// Best effort if v is corrupt: deleting an absent key is harmless,
			// and a stale index key left behind is dropped by the sweeper.
			if err := b.Delete(appendAccessKey(nil, old, key), nil); err != nil {
				closer.Close()
				return Entry{}, t.pebbleErr("put", err)
			}
		}
		closer.Close()
	}
	if err := b.Set(ik, sizeValue(size), nil); err != nil {
		return Entry{}, t.pebbleErr("put", err)
	}
	if err := b.Merge(keyMeta, delta.encode(), nil); err != nil {
		return Entry{}, t.pebbleErr("put", err)
	}
	if err := t.commit(b); err != nil {
		return Entry{}, t.pebbleErr("put", err)
	}
	t.puts.Add(1)
	t.admitted.Add(size)
	t.lastPut.Store(nowT.UnixNano())
	t.polMu.Lock()
	t.pol.add(key, size, now)
	t.polMu.Unlock()
	t.entries.Add(delta.entries)
	if n, max := t.bytes.Add(delta.bytes), t.maxBytes.Load(); max > 0 && n > max {
		t.wakeSweeper()
	}
	return stored, nil
}

// dropReason says why an entry is dropped, for the counters.
type dropReason int

const (
	dropCorrupt dropReason = iota
	dropExpired
	dropEvicted
)

// drop deletes key's entry if it is still corrupt (dropCorrupt) or still
// expired (dropExpired) once its lock is held. The caller holds writeMu's
// read side. Errors are counted and logged, not returned: a drop is always
// someone else's side effect.
func (t *engine) drop(key []byte, why dropReason) {
	mu := &t.keyMu[t.stripe(key)]
	mu.Lock()
	defer mu.Unlock()
	kb := getKeyBuf()
	defer putKeyBuf(kb)
	kb.b = appendEntryKey(kb.b, key)
	v, closer, err := t.db.Get(kb.b)
	if errors.Is(err, pebble.ErrNotFound) {
		return
	}
	if err != nil {
		_ = t.pebbleErr("drop", err)
		return
	}
	defer closer.Close()
	h, ok := decodeValue(v)
	switch {
	case !ok:
		why = dropCorrupt
	case why == dropExpired && t.isExpired(h.access, seconds(t.now())):
	default:
		return // replaced or touched in the meantime
	}
	t.dropLocked(key, kb.b, v, why)
}

// dropLocked deletes the entry ek (user key key, current value v) and its
// index key, with its accounting, in one batch. The caller holds key's
// stripe lock and writeMu's read side.
func (t *engine) dropLocked(key, ek, v []byte, why dropReason) {
	b := t.db.NewBatch()
	defer b.Close()
	_ = b.DeleteSized(ek, uint32(len(v)), nil)
	if access, ok := t.indexBucket(key, v); ok {
		_ = b.Delete(appendAccessKey(nil, access, key), nil)
	}
	d := counters{bytes: -int64(len(key) + len(v)), entries: -1}
	_ = b.Merge(keyMeta, d.encode(), nil)
	if err := t.commit(b); err != nil {
		_ = t.pebbleErr("drop", err)
		return
	}
	t.polMu.Lock()
	t.pol.remove(key)
	t.polMu.Unlock()
	t.bytes.Add(d.bytes)
	t.entries.Add(d.entries)
	t.countDrop(why, 1)
	if why == dropCorrupt {
		t.log.Warn("store: dropped corrupt value", "key", fmt.Sprintf("%q", key), "len", len(v))
	}
}

func (t *engine) countDrop(why dropReason, n uint64) {
	switch why {
	case dropCorrupt:
		t.corrupt.Add(n)
	case dropExpired:
		t.expired.Add(n)
	case dropEvicted:
		t.evicted.Add(n)
	}
}

// PurgePrefix deletes every entry whose key starts with prefix (for the proxy,
// one identifier's "ID\x00") and returns how many there were. The entries go
// in one range deletion; their index keys and the counter update are in the
// same batch, which is synced. It reads the prefix's values to account for
// them, so it is meant for small prefixes; Puts wait while it runs, Gets do
// not.
func (t *engine) PurgePrefix(prefix []byte) (n int, err error) {
	if err := t.enter(); err != nil {
		return 0, err
	}
	defer t.leave()
	t.writeMu.Lock()
	defer t.writeMu.Unlock()

	lo, hi := appendEntryKey(nil, prefix), prefixEnd(prefix)
	it, err := t.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, t.pebbleErr("purge", err)
	}
	b := t.db.NewBatch()
	defer b.Close()
	var d counters
	var keys [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return 0, t.pebbleErr("purge", err)
		}
		key := bytes.Clone(k[1:])
		keys = append(keys, key)
		if access, ok := t.indexBucket(key, v); ok {
			_ = b.Delete(appendAccessKey(nil, access, key), nil)
		}
		d.bytes -= int64(len(key) + len(v))
		d.entries--
	}
	if err := it.Close(); err != nil {
		return 0, t.pebbleErr("purge", err)
	}
	if d.entries == 0 {
		return 0, nil
	}
	_ = b.DeleteRange(lo, hi, nil)
	_ = b.Merge(keyMeta, d.encode(), nil)
	if err := t.commitDurable(b); err != nil {
		return 0, t.pebbleErr("purge", err)
	}
	t.bytes.Add(d.bytes)
	t.entries.Add(d.entries)
	t.polMu.Lock()
	for _, k := range keys {
		t.pol.remove(k)
	}
	t.polMu.Unlock()
	t.purged.Add(uint64(-d.entries))
	t.reclaimSoon()
	return int(-d.entries), nil
}

// PurgeAll deletes every entry and resets the counters, in one synced batch.
func (t *engine) PurgeAll() (err error) {
	if err := t.enter(); err != nil {
		return err
	}
	defer t.leave()
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	b := t.db.NewBatch()
	defer b.Close()
	_ = b.DeleteRange(rangeStart, rangeEnd, nil)
	_ = b.Set(keyMeta, counters{}.encode(), nil)
	if err := t.commitDurable(b); err != nil {
		return t.pebbleErr("purge all", err)
	}
	t.purged.Add(uint64(max(t.entries.Load(), 0)))
	t.bytes.Store(0)
	t.entries.Store(0)
	t.polMu.Lock()
	t.pol.reset()
	t.polMu.Unlock()
	t.reclaimSoon()
	return nil
}

// Stats returns the tier's counters. It may be called after Close.
func (t *engine) Stats() Stats {
	return Stats{
		Hits:      t.hits.Load(),
		Misses:    t.misses.Load(),
		Puts:      t.puts.Load(),
		Touches:   t.touches.Load(),
		Evicted:   t.evicted.Load(),
		Expired:   t.expired.Load(),
		Corrupt:   t.corrupt.Load(),
		Purged:    t.purged.Load(),
		Declined:  t.declined.Load(),
		Errors:    t.errs.Load(),
		Bytes:     max(t.bytes.Load(), 0),
		Entries:   max(t.entries.Load(), 0),
		DiskBytes: t.diskBytes(),
	}
}

// ceilSeconds rounds d up to whole seconds, at least one.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(int64((d+time.Second-1)/time.Second), 1)
}

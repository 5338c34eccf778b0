package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
)

// Pebble settings that are not worth a Config field.
const (
	// memTableSize bounds the memory a tier holds before flushing (there is
	// no WAL: see tier.go); small tiers use less (sizeToBudget).
	memTableSize = 8 << 20
	// bloomBitsPerKey gives about a 1% false-positive rate, so a miss
	// (common in a cache) rarely reads a data block.
	bloomBitsPerKey = 10
)

// pebbleOptions returns the Pebble options of a tier.
//
// Tuning for this workload (values of 2–100 KB read by point lookups):
//   - bloom filters on every level, so misses skip data blocks;
//   - the fastest compression Pebble offers (MinLZ on amd64, Snappy on arm64)
//     with its 12% minimum reduction: JPEG/PNG/WebP bodies do not compress and
//     are stored as they are for the price of a quick failed attempt, while
//     info.json does compress;
//   - the default 4 KB block size: a large value is a block of its own, so a
//     point read loads just that value;
//   - a shared block cache of cfg.CacheBytes.
//
// Fault handling (see tier.go): no WAL, so the commit path never writes a
// file and cannot hit Pebble's fatal commit and WAL-rotation paths; cfg.fs
// is the Tier's faultFS, which sees every file error first; background
// errors and corruption are reported to the Tier and logged at most once a
// minute per kind, so a failing disk cannot flood the log.
func pebbleOptions(cfg *Config, cache *pebble.Cache, h *hooks) *pebble.Options {
	log := cfg.Logger.With("dir", cfg.Dir)
	opts := &pebble.Options{
		FS:                  cfg.fs,
		Cache:               cache,
		Merger:              counterMerger,
		FormatMajorVersion:  pebble.FormatNewest,
		MemTableSize:        memTableSize,
		MaxManifestFileSize: maxManifest,
		DisableWAL:          true,
		Logger:              pebbleLogger{log: log, h: h},
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) {
				f := classify(err)
				if f == FaultCorrupt {
					h.backgroundCorrupt(err)
				} else {
					h.fault(f, err)
				}
				if h.allowLog("background " + f.String()) {
					log.Warn("store: pebble background error (logged at most once a minute)", "fault", f.String(), "err", err)
				}
			},
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				// Pebble's default is Fatalf; for a cache a failed read is
				// an error on that read (counted there), and the Tier
				// rebuilds the store when a compaction meets it.
				if h.allowLog("corruption") {
					log.Error("store: pebble data corruption (logged at most once a minute)", "info", info.String())
				}
			},
			CompactionBegin: func(info pebble.CompactionInfo) {
				if h != nil {
					h.inflight.begin(info)
				}
			},
			CompactionEnd: func(info pebble.CompactionInfo) {
				if h != nil {
					h.inflight.end(info)
				}
			},
			DiskSlow: func(info pebble.DiskSlowInfo) {
				if h.allowLog("slow") {
					log.Warn("store: slow disk (logged at most once a minute)", "info", info.String())
				}
			},
		},
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(bloomBitsPerKey)
		opts.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.FastestCompression }
	}
	sizeToBudget(opts, cfg.MaxBytes)
	return opts
}

// sizeToBudget shapes the LSM of a tier under 256 MB so that no
// compaction or flush adds much to its directory at once: a compaction
// writes its outputs before deleting its inputs, and a flush brings new
// entries to disk while the entries they displaced are still there, so
// these are what Put's bound must leave room for (ahead, disk.go), and the
// larger they are, the more Puts it declines.
//
// Cache keys arrive in random order, so every flushed sstable spans the
// whole keyspace. With Pebble's defaults a tier of tens of MB lives in one
// level (L6) of a few 4 MB files, and each compaction from level 0 rewrites
// all of it: the directory doubled. Here:
//   - every level's files are about budget/fileShare bytes, so a flush is
//     split where it would overlap more than ten of the files below
//     (Pebble's grandparent limit) and a compaction takes a slice;
//   - two levels below level 0: a base level (L5) of a twelfth of the budget
//     (LBaseMaxBytes) and L6 (levelMultiplier), so level 0 is compacted
//     into a small sorted level rather than into all the data, and that
//     level into L6 a file's key range at a time. The garbage a tier
//     carries while written is about the base level's size (its entries'
//     predecessors, evicted, are still in L6);
//   - level 0 is compacted as soon as it holds one sublevel
//     (L0CompactionThreshold 2: Pebble's score is twice the depth over it),
//     so deletions reach the data they delete sooner;
//   - memtables of a 24th of the budget (at least 256 KiB, at most 8 MiB):
//     a flush, and the L0 → Lbase compaction it leads to, are the largest
//     transients. Up to four may queue before writes wait
//     (MemTableStopWritesThreshold), so a burst does not stall Puts
//     behind each small flush.
//
// Chosen by measurement (TestDiskDuringFill at 2 MB/s, a replay's misses,
// on a 58 MB tier; bench/RESULTS.md). With a base level of a tenth,
// memtables of a 16th of the budget declined 591 of 12,167 Puts, a 24th
// 69, a 32nd 21, and the Put's write amplification rose from 9.8 × to
// 10.9 × and 12.1 × the body (each flush's L0 → Lbase compaction
// rewrites the base level). The garbage (about the base level) and the
// next L0 → Lbase compaction (the base level again) both count against
// the bound, so a tenth sat at its edge: one run of three declined 3,121
// Puts and passed the bound once. A twelfth (27 declined, 11.4 ×) leaves
// a margin; a 25th declined none and wrote 18 ×.
//
// From fileShare × maxFileSize (256 MB) on, Pebble's defaults stand: such
// a tier has many files per level, its base level is at most 64 MB, and
// its transients are a small part of the budget (a 256 MB tier filled at
// 16 MB/s peaked at 1.20 × with 13 % of Puts declined). The options are
// fixed at open; a budget changed by SIGHUP reopens the tier with a new
// shape (reshape.go).
func sizeToBudget(opts *pebble.Options, maxBytes int64) {
	sh := shapeFor(maxBytes)
	if sh.isDefault() {
		return
	}
	for i := range opts.TargetFileSizes {
		opts.TargetFileSizes[i] = sh.file
	}
	opts.LBaseMaxBytes = sh.lbase
	opts.L0CompactionThreshold = 2
	opts.Experimental.LevelMultiplier = levelMultiplier
	opts.MemTableSize = uint64(sh.mem)
	opts.MemTableStopWritesThreshold = 4
}

// shape is what sizeToBudget sets for a budget: the sstable size, the base
// level's size and the memtable size; zero for Pebble's defaults.
type shape struct{ file, lbase, mem int64 }

func (s shape) isDefault() bool { return s == shape{} }

// shapeFor is the shape of a tier of budget maxBytes (see sizeToBudget).
func shapeFor(maxBytes int64) shape {
	if maxBytes <= 0 || maxBytes >= fileShare*maxFileSize {
		return shape{}
	}
	return shape{
		file:  max(maxBytes/fileShare, minFileSize),
		lbase: max(maxBytes/lbaseShare, minFileSize),
		mem:   min(max(maxBytes/memShare, minMemTable), memTableSize),
	}
}

const (
	// fileShare: sstables of about budget/fileShare bytes.
	fileShare = 128
	// minFileSize and maxFileSize bound the sstable size.
	minFileSize = 64 << 10
	maxFileSize = 2 << 20
	// lbaseShare: a base level of budget/lbaseShare bytes.
	lbaseShare = 12
	// memShare: memtables of budget/memShare bytes, at least minMemTable.
	memShare    = 24
	minMemTable = 256 << 10
	// levelMultiplier keeps a shaped tier in two levels below level 0, the
	// base level and L6. Pebble sizes the levels from the bottom one down by
	// this ratio and moves the base level up while it would exceed
	// LBaseMaxBytes; with its default of 10, a tier whose directory held a
	// little more than its budget got a third level, and a base level of a
	// quarter of the budget instead of a tenth (measured: 6 MB of L5 in a
	// 23 MB tier), whose L0 → Lbase compactions passed the bound.
	levelMultiplier = 100
)

// pebbleLogger routes Pebble's own log lines to slog: Infof at Debug, Errorf
// at Warn (at most once a minute). Fatalf means Pebble cannot safely
// continue, and Pebble is not panic-safe: a panic unwinding through its
// locks can turn into an unrecoverable "unlock of unlocked mutex". So
// Fatalf reports the fault, which makes the Tier abandon this database and
// start a fresh one in a new directory, and then blocks its goroutine
// forever. That goroutine, and whatever it holds of the abandoned
// database, is leaked: the price of never unwinding through Pebble. It
// cannot happen on the paths the Tier guards (no WAL; writes refused below
// the free-space reserve); what remains is a MANIFEST write failing with
// EIO, or with ENOSPC once the reserve file is gone too.
type pebbleLogger struct {
	log *slog.Logger
	h   *hooks
}

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	if l.h.allowLog("pebble errorf") {
		l.log.Warn("pebble (logged at most once a minute): " + fmt.Sprintf(format, args...))
	}
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error("pebble: fatal: abandoning this database; the tier starts a fresh one: " + msg)
	l.h.fatal(errors.New(msg))
	select {} // never return, never unwind: see pebbleLogger
}

// counters is the persisted accounting of a tier: live bytes and entries.
// It is stored under keyMeta as Pebble merge operands, each a 16-byte delta
// (bytes, entries as little-endian int64) written in the same batch as the
// change it accounts for, so it is exactly as durable as the entries. The
// merge operator sums them, so reading the key at Open yields the totals
// without a scan.
type counters struct {
	bytes, entries int64
}

func (c counters) encode() []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b[0:], uint64(c.bytes))
	binary.LittleEndian.PutUint64(b[8:], uint64(c.entries))
	return b
}

func decodeCounters(b []byte) (counters, bool) {
	if len(b) != 16 {
		return counters{}, false
	}
	return counters{
		bytes:   int64(binary.LittleEndian.Uint64(b[0:])),
		entries: int64(binary.LittleEndian.Uint64(b[8:])),
	}, true
}

// counterMerger sums counter deltas. Its name is recorded in the store's
// OPTIONS file; renaming it makes existing stores fail to open.
var counterMerger = &pebble.Merger{
	Name: "iiif-proxy.store.counters.v1",
	Merge: func(_, value []byte) (pebble.ValueMerger, error) {
		s := &counterSum{}
		return s, s.MergeNewer(value)
	},
}

// counterSum is the pebble.ValueMerger of counterMerger. Addition is
// associative and commutative, so operand order does not matter. A malformed
// operand (impossible unless the keyspace is written by someone else) is
// skipped: failing the merge would fail compactions of the whole store.
type counterSum struct{ c counters }

func (s *counterSum) MergeNewer(v []byte) error {
	if d, ok := decodeCounters(v); ok {
		s.c.bytes += d.bytes
		s.c.entries += d.entries
	}
	return nil
}

func (s *counterSum) MergeOlder(v []byte) error { return s.MergeNewer(v) }

func (s *counterSum) Finish(bool) ([]byte, io.Closer, error) {
	return s.c.encode(), nil, nil
}

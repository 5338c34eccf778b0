package store

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
)

// Pebble settings that are not worth a Config field.
const (
	// memTableSize bounds both the memory a tier holds before flushing and
	// the WAL replayed by Open after a crash (Close flushes, so a clean
	// restart replays nothing). Replay costs about 1 s per 50 MB of small
	// entries on a slow machine, so keep it modest.
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
func pebbleOptions(cfg *Config, cache *pebble.Cache, failed *atomic.Bool) *pebble.Options {
	log := cfg.Logger.With("dir", cfg.Dir)
	opts := &pebble.Options{
		FS:                 cfg.fs,
		Cache:              cache,
		Merger:             counterMerger,
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       memTableSize,
		Logger:             pebbleLogger{log: log, failed: failed},
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) {
				log.Warn("store: pebble background error", "err", err)
			},
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				// Pebble's default is Fatalf; for a cache a failed read is
				// an error on that read, not a reason to exit.
				log.Error("store: pebble data corruption", "info", info.String())
			},
			DiskSlow: func(info pebble.DiskSlowInfo) {
				log.Warn("store: slow disk", "info", info.String())
			},
		},
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(bloomBitsPerKey)
		opts.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.FastestCompression }
	}
	return opts
}

// pebbleLogger routes Pebble's own log lines to slog: Infof at Debug, Errorf
// at Warn. Fatalf means Pebble cannot safely continue: it logs at Error,
// marks the tier failed and panics; the Tier's methods recover that panic and
// return ErrFailed from then on.
type pebbleLogger struct {
	log    *slog.Logger
	failed *atomic.Bool
}

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Warn("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error("pebble: fatal: " + msg)
	l.failed.Store(true)
	panic(fmt.Errorf("%w: %s", ErrFailed, msg))
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

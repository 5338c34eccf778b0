package store

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// TestOpenDoesNotScan fills a tier on disk with many small entries, closes
// it, and counts what Open reads from the sstables: the counters and the
// access index (for the eviction order), never the entries. The index is
// about a tenth of the entries' bytes, so reading a quarter of them would
// mean a scan. Counted, not timed: Open's speed is BenchmarkOpen's
// business.
func TestOpenDoesNotScan(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100k entries")
	}
	n := 100_000
	if raceEnabled {
		n = 20_000 // the race detector makes each Put ~30 times slower
	}
	dir := t.TempDir()
	fs := &readCountFS{FS: vfs.Default}
	cfg := Config{Dir: dir, Logger: quiet, noSweeper: true, fs: fs}
	tier, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 0, 32)
	for i := range n {
		key = binary.BigEndian.AppendUint32(append(key[:0], "img\x00"...), uint32(i))
		if _, err := tier.Put(key, jpeg(200, byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	want := tier.Stats()
	// Compact now, so that the reopened database has no compaction to run
	// (which would read everything, and be counted): a slow run (the race
	// detector) closes with flushes not yet compacted.
	if err := tier.eng.Load().db.Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
	if err := tier.Close(); err != nil {
		t.Fatal(err)
	}

	tables := sstBytes(t, dir)
	fs.read.Store(0)
	tier, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	read := fs.read.Load()
	t.Logf("Open with %d entries (%d bytes, %d of sstables) read %d bytes of sstables", n, want.Bytes, tables, read)
	if got := tier.Stats(); got.Entries != int64(n) || got.Bytes != want.Bytes {
		t.Errorf("after Open Entries=%d Bytes=%d, want %d, %d", got.Entries, got.Bytes, n, want.Bytes)
	}
	if read == 0 || read > tables/4 {
		t.Errorf("Open read %d bytes of the %d of sstables: want some (the index), and under a quarter", read, tables)
	}
	if _, err := tier.Get(key); err != nil {
		t.Errorf("Get(last key): %v", err)
	}
}

// sstBytes is the size of the sstables in dir.
func sstBytes(t *testing.T, dir string) int64 {
	t.Helper()
	ssts, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range ssts {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// readCountFS counts the bytes read from sstables through it.
type readCountFS struct {
	vfs.FS
	read atomic.Int64
}

func (fs *readCountFS) Unwrap() vfs.FS { return fs.FS } // so the tier locks as on vfs.Default

func (fs *readCountFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.Open(name, opts...)
	if err != nil || !strings.HasSuffix(name, ".sst") {
		return f, err
	}
	return &readCountFile{File: f, n: &fs.read}, nil
}

type readCountFile struct {
	vfs.File
	n *atomic.Int64
}

func (f *readCountFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.n.Add(int64(n))
	return n, err
}

func (f *readCountFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.n.Add(int64(n))
	return n, err
}

// failWrites fails every write operation of a file system.
var failWrites = errorfs.InjectorFunc(func(op errorfs.Op) error {
	if op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
		return errorfs.ErrInjected
	}
	return nil
})

func TestOpenFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	locked := t.TempDir()
	first, err := Open(Config{Dir: locked, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()

	tests := []struct {
		name string
		cfg  Config
	}{
		{"invalid config", Config{}},
		{"dir under a file", Config{Dir: filepath.Join(file, "db")}},
		{"dir is a file", Config{Dir: file}},
		{"dir in use", Config{Dir: locked}},
		{"unwritable fs", Config{Dir: "db", fs: errorfs.Wrap(vfs.NewMem(), failWrites)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = quiet
			tier, err := Open(tt.cfg)
			if err == nil {
				tier.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
}

// TestUnknownLayout: a store written in an unknown keyspace layout is not
// ours to read: it is moved aside and the tier starts empty.
func TestUnknownLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tile")
	cfg := Config{Dir: dir, Logger: quiet}
	e, err := openEngine(cfg.withDefaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, e, "k", jpeg(100, 1))
	if err := e.db.Set(keyLayout, []byte{9}, pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	e.Close()
	tier, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open = %v, want the store moved aside and recreated", err)
	}
	defer tier.Close()
	if _, err := tier.Get([]byte("k")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get = %v, want a miss in the recreated store", err)
	}
	mustPut(t, tier, "k2", jpeg(100, 2))
	if st := tier.Stats(); st.Faults.Of(FaultCorrupt) != 1 || st.State != StateOK {
		t.Errorf("Stats = %+v, want one corrupt fault and state ok", st)
	}
	if aside, _ := filepath.Glob(dir + ".corrupt-*"); len(aside) != 1 {
		t.Errorf("moved-aside directories: %v, want one", aside)
	}
}

// TestRuntimeReadErrors injects read errors below Pebble after the data has
// been flushed to sstables: Get reports an error and counts it, never panics,
// and works again once the disk does.
func TestRuntimeReadErrors(t *testing.T) {
	var failing atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if failing.Load() && op.Kind == errorfs.OpFileReadAt && strings.HasSuffix(op.Path, ".sst") {
			return errorfs.ErrInjected
		}
		return nil
	})
	fs := errorfs.Wrap(vfs.NewMem(), inj)
	tier := openMem(t, Config{fs: fs, CacheBytes: 1}, newClock()) // (almost) no block cache
	for i := range 200 {
		mustPut(t, tier, string(rune('a'+i%26))+string(rune('a'+i/26)), jpeg(5000, byte(i)))
	}
	if err := tier.db.Flush(); err != nil {
		t.Fatal(err)
	}

	failing.Store(true)
	var errs int
	for i := range 200 {
		_, err := tier.Get([]byte(string(rune('a'+i%26)) + string(rune('a'+i/26))))
		switch {
		case err == nil:
		case errors.Is(err, ErrNotFound):
			t.Fatalf("read error reported as a miss: %v", err)
		default:
			errs++
		}
	}
	if _, err := tier.Put([]byte("aa"), jpeg(10, 1)); err == nil {
		errs++ // Put reads the old value first: it may fail too
	}
	failing.Store(false)
	if errs == 0 {
		t.Fatal("no Get failed with reads failing")
	}
	if st := tier.Stats(); st.Errors == 0 || st.Corrupt != 0 {
		t.Errorf("Stats = %+v, want Errors > 0, Corrupt 0", st)
	}
	if _, err := tier.Get([]byte("ba")); err != nil {
		t.Errorf("Get after the disk recovered: %v", err)
	}
}

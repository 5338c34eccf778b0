package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/iiif-proxy/iiif-proxy/internal/testfs"
)

// The tests of full.go and bounded.go: a full cache disk, again and
// again, must not leak a database, must not keep Close waiting, and must
// not leave the cache wedged after a restart (the trial of /tmp/trial3).

// fillTo writes a file at path that leaves about leave bytes free on its
// file system.
func fillTo(t *testing.T, path string, leave int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		t.Fatal(err)
	}
	n := int64(st.Bavail)*int64(st.Bsize) - leave
	if n <= 0 {
		t.Fatalf("only %d bytes free, want to leave %d", n+leave, leave)
	}
	if err := os.WriteFile(path, make([]byte, n), 0o644); err != nil {
		t.Fatal(err)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestFullDiskCyclesLeakNothing fills the file system under a writing tier
// and frees it, five times. A plain ENOSPC must retire the database
// cleanly (closed, not abandoned: an unbounded flush used to keep Close
// waiting until it was abandoned, 5 in 2 minutes in the trial, each
// leaking its goroutines, memory and open files), a flush that cannot
// finish must give up within flushWait, and Close must return at once.
func TestFullDiskCyclesLeakNothing(t *testing.T) {
	mnt := testfs.MountTmpfs(t, "8m")
	cfg := Config{Dir: filepath.Join(mnt, "tile"), MinFreeBytes: 1 << 20, SweepEvery: 100 * time.Millisecond, Logger: quiet}
	tier, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fill := filepath.Join(mnt, "fill")
	var g1, f1 int
	for cycle := range 5 {
		for i := range 40 {
			_, _ = tier.Put(fmt.Appendf(nil, "c%d-%d", cycle, i), jpeg(20_000, byte(i)))
		}
		testfs.Fill(t, fill)
		for round := range 30 { // Puts and the sweeper's flushes meet the full disk
			callsAnswer(t, tier, round)
		}
		eventually(t, "the tier leaves StateOK", func() bool { return tier.State() != StateOK })
		if e := tier.eng.Load(); e != nil {
			// A memtable that cannot reach an sstable: the wait is bounded.
			_, _ = tier.Put([]byte("dirty"), jpeg(1000, 1))
			began := time.Now()
			ferr := e.flushWithin(nil)
			if took := time.Since(began); took > flushWait+time.Second {
				t.Errorf("a flush on a full disk took %v (err %v)", took, ferr)
			}
		}
		os.Remove(fill)
		eventually(t, "the tier stores again", func() bool { return works(tier, fmt.Sprintf("after%d", cycle)) })
		runtime.GC()
		g, f := runtime.NumGoroutine(), openFDs(t)
		st := tier.Stats()
		t.Logf("cycle %d: %d goroutines, %d fds, faults %s, abandoned %d", cycle, g, f, mustJSON(st.Faults), tier.abandoned.Load())
		if cycle == 0 {
			g1, f1 = g, f
		}
	}
	if n := tier.abandoned.Load(); n != 0 {
		t.Errorf("%d databases abandoned on a plain ENOSPC", n)
	}
	if g, f := runtime.NumGoroutine(), openFDs(t); g > g1+10 || f > f1+10 {
		t.Errorf("after 5 fill cycles: %d goroutines (%d after the first), %d fds (%d)", g, g1, f, f1)
	}
	// Close with the disk full and writes in the memtable: bounded.
	for i := range 40 {
		_, _ = tier.Put(fmt.Appendf(nil, "last-%d", i), jpeg(20_000, byte(i)))
	}
	testfs.Fill(t, fill)
	began := time.Now()
	if err := tier.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > flushWait+2*time.Second {
		t.Errorf("Close on a full disk took %v", took)
	}
}

// TestRestartOnADiskTheCacheFilled: a restart finds too little space to
// open (between the reserve and twice the reserve, where no emergency
// fires). Garbage of another tier (an abandoned database's moved-aside
// directory) is deleted and the tier opens with its entries; when nothing
// but its own data can give space back, it drops it and opens empty.
func TestRestartOnADiskTheCacheFilled(t *testing.T) {
	mnt := testfs.MountTmpfs(t, "8m")
	cfg := Config{Dir: filepath.Join(mnt, "tile"), MinFreeBytes: 1 << 20, SweepEvery: 100 * time.Millisecond, Logger: quiet}
	tier, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		mustPut(t, tier, fmt.Sprintf("k%d", i), jpeg(20_000, byte(i)))
	}
	if err := tier.Close(); err != nil {
		t.Fatal(err)
	}
	reserve := int64(256 << 10) // MinFree/4
	kept := func(tier *Tier) bool {
		_, err := tier.Get([]byte("k1"))
		return err == nil
	}

	// Another tier's moved-aside directory fills the disk.
	aside := filepath.Join(mnt, "thumbnail.failed-20261128T215646.658")
	if err := os.Mkdir(aside, 0o755); err != nil {
		t.Fatal(err)
	}
	fillTo(t, filepath.Join(aside, "000010.sst"), reserve*3/2)
	began := time.Now()
	tier, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the tier opens once the garbage is gone", func() bool { return works(tier, "a") })
	t.Logf("opened after %v", time.Since(began))
	if _, err := os.Stat(aside); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("another tier's moved-aside directory is still there: %v", err)
	}
	if !kept(tier) {
		t.Error("the tier lost its entries though the garbage was enough")
	}
	if err := tier.Close(); err != nil {
		t.Fatal(err)
	}

	// Only the tier's own data can give space back.
	fill := filepath.Join(mnt, "fill")
	fillTo(t, fill, reserve*3/2)
	began = time.Now()
	cfg.Logger = testLogger(t)
	tier, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	eventually(t, "the tier drops its contents and opens", func() bool { return works(tier, "b") })
	t.Logf("opened empty after %v, state %s", time.Since(began), tier.State())
	if kept(tier) {
		t.Error("the old entries are still there: what gave the space back?")
	}
	if tier.State() != StateOK {
		t.Errorf("state %s, want ok", tier.State())
	}
}

// panicFS panics once, creating the temporary OPTIONS file of an open:
// what Pebble's own clean-up of a failed open did on a full disk (see
// openPebble), raised at the same point of Open.
type panicFS struct {
	vfs.FS
	armed atomic.Bool
}

func (fs *panicFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if strings.HasSuffix(name, ".dbtmp") && fs.armed.Swap(false) {
		panic("element has outstanding references")
	}
	return fs.FS.Create(name, c)
}

// TestOpenPanicIsRecovered: a panic inside pebble.Open is an open that
// failed, not a dead process; the lock it held is released and the
// directory dropped, and the tier opens (empty) at the next attempt.
func TestOpenPanicIsRecovered(t *testing.T) {
	fs := &panicFS{FS: vfs.NewMem()}
	cfg := Config{Dir: "/c/tile", Logger: quiet, fs: fs}
	tier, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, tier, "old", jpeg(1000, 1))
	if err := tier.Close(); err != nil {
		t.Fatal(err)
	}
	fs.armed.Store(true)
	tier, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	if err := <-tier.firstTry; err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("the first open = %v, want the recovered panic", err)
	}
	eventually(t, "the tier opens after the panic", func() bool { return works(tier, "new") })
	if _, err := tier.Get([]byte("old")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(old) after the panicked open = %v, want ErrNotFound (dropped)", err)
	}
	if n := tier.Stats().Faults.Of(FaultIO); n == 0 {
		t.Error("the panicked open was not counted as a fault")
	}
}

// TestAbandonedDatabasesAreBounded: each fatal Pebble error (a MANIFEST
// write failing with EIO) abandons a database, which keeps its goroutines,
// memory and open files; after maxAbandoned the tier stays out of service
// instead of abandoning more.
func TestAbandonedDatabasesAreBounded(t *testing.T) {
	failing, fs := writesFail("MANIFEST", syscall.EIO)
	dir := filepath.Join(t.TempDir(), "tile")
	tier, err := Open(Config{Dir: dir, Logger: quiet, fs: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	for n := int32(1); n <= maxAbandoned; n++ {
		eventually(t, "the tier stores", func() bool { return works(tier, fmt.Sprintf("ok%d", n)) })
		failing.Store(true)
		for round := 0; tier.abandoned.Load() < n; round++ {
			if round > 500 {
				t.Fatalf("database %d never abandoned", n)
			}
			callsAnswer(t, tier, round) // Puts, then a flush whose MANIFEST write is fatal
			time.Sleep(20 * time.Millisecond)
		}
		failing.Store(false)
	}
	time.Sleep(3 * retryMax / 2) // every re-open the backoff allows
	if works(tier, "after") {
		t.Errorf("the tier opened a database after abandoning %d", maxAbandoned)
	}
	if st := tier.State(); st != StateDegraded {
		t.Errorf("state %s, want degraded", st)
	}
	aside, _ := filepath.Glob(dir + ".failed-*")
	t.Logf("abandoned %d, moved aside %v, why %q", tier.abandoned.Load(), aside, *tier.why.Load())
}

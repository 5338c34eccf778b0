package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/iiif-proxy/iiif-proxy/internal/testfs"
)

// Fault tests: each breaks the world under a Tier and checks that every
// call returns (a hit, a miss or ErrUnavailable, never a panic or a hang),
// and that the tier recovers by itself once the fault is cleared.

// eventually polls cond every 20 ms for up to 15 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 750 {
			t.Fatalf("not within 15s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// callsAnswer makes a round of every call and fails on any error that is
// not a miss or ErrUnavailable, or on a hit with the wrong bytes.
func callsAnswer(t *testing.T, tier *Tier, round int) {
	t.Helper()
	for i := range 20 {
		key := fmt.Sprintf("r%d-%d", round, i)
		e := jpeg(20_000, byte(i))
		if _, err := tier.Put([]byte(key), e); err != nil && !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Put: %v", err)
		}
		got, err := tier.Get([]byte(key))
		switch {
		case err == nil && !bytes.Equal(got.Body, e.Body):
			t.Fatalf("Get(%s) returned wrong bytes", key)
		case err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrUnavailable):
			t.Fatalf("Get: %v", err)
		}
		if err := tier.Touch([]byte(key)); err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Touch: %v", err)
		}
	}
}

// works reports whether a Put followed by a Get hits.
func works(tier *Tier, key string) bool {
	e := jpeg(1000, 42)
	if _, err := tier.Put([]byte(key), e); err != nil {
		return false
	}
	got, err := tier.Get([]byte(key))
	return err == nil && bytes.Equal(got.Body, e.Body)
}

// TestFullDisk fills the cache's file system while the tier writes, then
// at open: the tier stops storing (Full or Degraded), answers every call,
// and stores again once the fill file is gone.
func TestFullDisk(t *testing.T) {
	mnt := testfs.MountTmpfs(t, "8m")
	cfg := Config{Dir: filepath.Join(mnt, "tile"), MinFreeBytes: 1 << 20, SweepEvery: 100 * time.Millisecond, Logger: quiet}
	tier, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		mustPut(t, tier, fmt.Sprintf("k%d", i), jpeg(20_000, byte(i)))
	}
	fillFile := filepath.Join(mnt, "fill")
	testfs.Fill(t, fillFile)
	for round := range 100 { // 2 MB of Puts on a full disk, and the sweeper flushing
		callsAnswer(t, tier, round)
	}
	eventually(t, "the tier leaves StateOK", func() bool { return tier.State() != StateOK })
	if _, err := tier.Put([]byte("refused"), jpeg(100, 1)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Put on a full disk = %v, want ErrUnavailable", err)
	}
	st := tier.Stats()
	t.Logf("full: state %s, free %d of min %d, faults %s", st.State, st.FreeBytes, st.MinFreeBytes, mustJSON(st.Faults))
	if st.FreeBytes >= st.MinFreeBytes {
		t.Errorf("free %d >= MinFree %d with the disk full", st.FreeBytes, st.MinFreeBytes)
	}
	os.Remove(fillFile)
	eventually(t, "the tier stores again after the fill file is removed", func() bool { return works(tier, "after") })
	if err := tier.Close(); err != nil {
		t.Fatal(err)
	}

	// Full at open: New returns at once, the tier serves uncached, then
	// opens when space comes back.
	testfs.Fill(t, fillFile)
	started := time.Now()
	tier, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	if took := time.Since(started); took > 100*time.Millisecond {
		t.Errorf("New took %v on a full disk", took)
	}
	for round := range 20 {
		callsAnswer(t, tier, round)
		time.Sleep(10 * time.Millisecond)
	}
	if works(tier, "while-full") {
		t.Error("the tier stored an entry on a full disk")
	}
	os.Remove(fillFile)
	eventually(t, "the tier opens and stores after the fill file is removed", func() bool { return works(tier, "reopened") })
	if _, err := tier.Get([]byte("k1")); err != nil && !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of an old entry: %v", err)
	}
}

// TestCacheFillsItsOwnDisk: with no byte budget, the tier's own entries
// fill the file system (a memtable flush takes it below the reserve); below
// MinFree it stops storing, gives space back, and is back above MinFree
// (storing again) without anyone's help.
func TestCacheFillsItsOwnDisk(t *testing.T) {
	mnt := testfs.MountTmpfs(t, "8m")
	tier, err := Open(Config{Dir: filepath.Join(mnt, "tile"), MinFreeBytes: 3 << 20, SweepEvery: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	// Puts are admitted against the free space less what the memtables
	// hold (roomFor), so many are refused only until the next flush: go
	// on for a few flushes, until the disk itself is the limit.
	refused := 0
	for i := 0; i < 6000 && refused < 1000; i++ {
		_, err := tier.Put(fmt.Appendf(nil, "k%d", i), jpeg(20_000, byte(i)))
		switch {
		case errors.Is(err, ErrUnavailable):
			refused++
			time.Sleep(5 * time.Millisecond)
		case err != nil:
			t.Fatalf("Put %d: %v", i, err)
		}
	}
	if refused == 0 {
		t.Fatal("the tier never refused a Put on a full disk")
	}
	eventually(t, "the tier gives space back until it is above MinFree", func() bool { return tier.State() == StateOK })
	st := tier.Stats()
	t.Logf("refused %d Puts; then state %s, free %d of min %d, %d entries, %d evicted, faults %s",
		refused, st.State, st.FreeBytes, st.MinFreeBytes, st.Entries, st.Evicted, mustJSON(st.Faults))
	// Two ways back: eviction and compaction while there is room to
	// compact, or, below the reserve, dropping the tier's contents.
	if st.Evicted == 0 && st.Faults.Of(FaultNoSpace) == 0 {
		t.Error("neither evictions nor a drop for space counted")
	}
	if st.FreeBytes < st.MinFreeBytes {
		t.Errorf("free %d < MinFree %d in state ok", st.FreeBytes, st.MinFreeBytes)
	}
	if !works(tier, "after") {
		t.Error("the tier does not store after evicting")
	}
}

func mustJSON(c FaultCounts) string {
	b, _ := c.MarshalJSON()
	return string(b)
}

// TestInjectedWriteErrors fails Pebble's writes through errorfs, as a
// failing disk (EIO), a read-only mount (EROFS) or lost permissions (EACCES)
// would: sstable writes (a flush fails), every write (the probe fails too,
// until the fault clears), and MANIFEST writes (Pebble calls Fatalf, which
// must block, not panic: the tier abandons that database and opens a fresh
// one in a new directory). Each time the tier recovers by itself.
func TestInjectedWriteErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target string // a file name part, "" for every write
		errno  syscall.Errno
		want   Fault
	}{
		{"sst EIO", ".sst", syscall.EIO, FaultIO},
		{"all EROFS", "", syscall.EROFS, FaultReadOnly},
		{"all EACCES", "", syscall.EACCES, FaultReadOnly},
		{"MANIFEST EIO", "MANIFEST", syscall.EIO, FaultIO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failing, fs := writesFail(tc.target, tc.errno)
			dir := filepath.Join(t.TempDir(), "tile")
			tier, err := Open(Config{Dir: dir, Logger: quiet, fs: fs})
			if err != nil {
				t.Fatal(err)
			}
			defer tier.Close()
			mustPut(t, tier, "before", jpeg(5000, 1))
			failing.Store(true)
			// Puts dirty the memtable; the sweeper's flush meets the error.
			// Count faults rather than poll the state: a fault the probe
			// cannot see (EIO on sstables only) lets the tier re-open
			// between two polls.
			for round := 0; tier.Stats().Faults.Of(tc.want) == 0; round++ {
				if round > 300 {
					t.Fatal("the tier never noticed the write errors")
				}
				callsAnswer(t, tier, round)
				time.Sleep(20 * time.Millisecond)
			}
			for round := range 10 {
				callsAnswer(t, tier, round)
			}
			if tc.target == "" {
				time.Sleep(retryMin * 3) // re-open attempts meet the fault too
				if st := tier.State(); st != StateDegraded {
					t.Errorf("state %s while every write fails, want degraded", st)
				}
			}
			failing.Store(false)
			eventually(t, "the tier recovers", func() bool { return works(tier, "after") })
			st := tier.Stats()
			if st.Faults.Of(tc.want) == 0 || st.Unavailable == 0 {
				t.Errorf("Stats = %+v, want %s faults and unavailable calls counted", st, tc.want)
			}
			aside, _ := filepath.Glob(dir + ".failed-*")
			t.Logf("faults %s, moved aside: %v", mustJSON(st.Faults), aside)
			if tc.target == "MANIFEST" && len(aside) != 1 {
				t.Errorf("after Pebble's fatal error, moved-aside directories %v, want one", aside)
			}
		})
	}
}

// TestPurgeWhileDegraded: a purge that arrives while the tier is out of
// service (a source changed) is applied when it comes back, so the old
// derivatives are never served again.
func TestPurgeWhileDegraded(t *testing.T) {
	failing, fs := writesFail("", syscall.EIO)
	tier, err := Open(Config{Dir: filepath.Join(t.TempDir(), "tile"), Logger: quiet, fs: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	for _, k := range []string{"a.tif\x00t1", "a.tif\x00t2", "b.tif\x00t1"} {
		mustPut(t, tier, k, jpeg(3000, k[0]))
	}
	if err := tier.eng.Load().db.Flush(); err != nil { // on disk, as after flushEvery
		t.Fatal(err)
	}
	failing.Store(true)
	for round := 0; tier.State() == StateOK; round++ {
		if round > 300 {
			t.Fatal("the tier never noticed the write errors")
		}
		callsAnswer(t, tier, round)
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := tier.PurgePrefix([]byte("a.tif\x00")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("PurgePrefix while degraded = %v, want ErrUnavailable", err)
	}
	failing.Store(false)
	eventually(t, "the tier recovers", func() bool { return works(tier, "after") })
	for k, want := range map[string]bool{"a.tif\x00t1": false, "a.tif\x00t2": false, "b.tif\x00t1": true} {
		if _, err := tier.Get([]byte(k)); (err == nil) != want {
			t.Errorf("Get(%q) after recovery: %v, want found=%v", k, err, want)
		}
	}
}

// TestDirectoryDeleted removes the tier's directory while it runs.
func TestDirectoryDeleted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tile")
	tier, err := Open(Config{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	mustPut(t, tier, "k", jpeg(5000, 1))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 150 && tier.State() == StateOK; round++ {
		callsAnswer(t, tier, round)
		time.Sleep(20 * time.Millisecond)
	}
	eventually(t, "the tier recreates its directory and stores", func() bool {
		_, err := os.Stat(filepath.Join(dir, "LOCK"))
		return err == nil && works(tier, "after")
	})
}

// TestCorruptWAL flips bytes in a WAL left by an older version of the store
// (which ran with one): the tier must open, replaying what it can or moving
// the directory aside, and store again.
func TestCorruptWAL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tile")
	cfg := Config{Dir: dir, Logger: quiet}.withDefaults()
	opts := pebbleOptions(&cfg, nil, nil)
	opts.DisableWAL = false
	db, err := pebble.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if err := db.Set(fmt.Appendf(nil, "e%d", i), bytes.Repeat([]byte{byte(i)}, 3000), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil { // no flush: the entries stay in the WAL
		t.Fatal(err)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(logs) == 0 {
		t.Fatal("no WAL written")
	}
	flipBytes(t, logs[len(logs)-1], 0.3)
	tier, err := Open(Config{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatalf("Open with a corrupt WAL: %v", err)
	}
	defer tier.Close()
	if !works(tier, "after") {
		t.Fatal("the tier does not store after opening over a corrupt WAL")
	}
	aside, _ := filepath.Glob(dir + ".corrupt-*")
	t.Logf("faults %s, moved aside %v", mustJSON(tier.Stats().Faults), aside)
}

// flipBytes inverts 64 bytes at fraction at of the file.
func flipBytes(t *testing.T, path string, at float64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := int(float64(len(b)) * at)
	for i := off; i < off+64 && i < len(b); i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptSSTable flips bytes in an sstable's data blocks: no read
// returns wrong bytes, a key in a corrupt block can be stored again, and the
// tier, if it rebuilds, does so by itself.
func TestCorruptSSTable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tile")
	cfg := Config{Dir: dir, Logger: quiet, CacheBytes: 1}
	tier, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	bodies := map[string][]byte{}
	for i := range 300 {
		key := fmt.Sprintf("k%03d", i)
		bodies[key] = jpeg(3000, byte(i)).Body
		mustPut(t, tier, key, Entry{ContentType: "image/jpeg", Body: bodies[key]})
	}
	if err := tier.Close(); err != nil { // flushes
		t.Fatal(err)
	}
	ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no sstable")
	}
	for _, s := range ssts {
		flipBytes(t, s, 0.2)
	}
	tier, err = Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer tier.Close()
	bad := 0
	for key, want := range bodies {
		got, err := tier.Get([]byte(key))
		switch {
		case err == nil && !bytes.Equal(got.Body, want):
			t.Fatalf("Get(%s) returned wrong bytes", key)
		case errors.Is(err, ErrCorrupt), errors.Is(err, ErrUnavailable):
			bad++
		case err != nil && !errors.Is(err, ErrNotFound):
			t.Fatalf("Get(%s): %v", key, err)
		}
	}
	if bad == 0 {
		t.Fatal("no read met the corruption")
	}
	// Every key can be cached again, at once or after the rebuild.
	eventually(t, "every key stores and reads back", func() bool {
		for key := range bodies {
			if !works(tier, key) {
				return false
			}
		}
		return true
	})
	st := tier.Stats()
	aside, _ := filepath.Glob(dir + ".corrupt-*")
	t.Logf("%d reads met corruption; stats corrupt %d, faults %s, moved aside %v", bad, st.Corrupt, mustJSON(st.Faults), aside)
	if st.Faults.Of(FaultCorrupt) == 0 {
		t.Error("corruption not counted")
	}
}

// lockEnv makes TestLockHolder the child that holds a tier's directory.
const lockEnv = "STORE_LOCK_CHILD_DIR"

func TestLockHolder(t *testing.T) {
	dir := os.Getenv(lockEnv)
	if dir == "" {
		t.Skip("helper process for TestLockedByAnotherProcess")
	}
	tier, err := Open(Config{Dir: dir, Logger: quiet})
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
	tier.Close()
	os.Exit(0)
}

// TestLockedByAnotherProcess: the error names the lock file and the
// holder's PID, and the tier opens once the holder exits.
func TestLockedByAnotherProcess(t *testing.T) {
	if os.Getenv(lockEnv) != "" {
		t.Skip("in the child")
	}
	dir := filepath.Join(t.TempDir(), "tile")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHolder$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("child: %q", line)
	}
	tier, err := New(Config{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	var putErr error
	eventually(t, "the tier reports the lock", func() bool {
		_, putErr = tier.Put([]byte("k"), jpeg(10, 1))
		return tier.Stats().Faults.Of(FaultLocked) > 0
	})
	_, putErr = tier.Put([]byte("k"), jpeg(10, 1))
	pid := strconv.Itoa(cmd.Process.Pid)
	if !errors.Is(putErr, ErrUnavailable) || !strings.Contains(putErr.Error(), filepath.Join(dir, "LOCK")) ||
		!strings.Contains(putErr.Error(), "PID "+pid) {
		t.Errorf("Put = %v, want ErrUnavailable naming %s and PID %s", putErr, filepath.Join(dir, "LOCK"), pid)
	}
	if tier.State() != StateDegraded {
		t.Errorf("state %s, want degraded", tier.State())
	}
	stdin.Close() // the holder exits
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	eventually(t, "the tier opens once the holder exits", func() bool { return works(tier, "after") })
}

// testLogger logs through t.Log, so that a failing test shows the tier's story.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// writesFail wraps the real file system so that, once *failing is set,
// every write to a file whose name contains target ("" for any) fails with
// errno.
func writesFail(target string, errno syscall.Errno) (failing *atomic.Bool, fs vfs.FS) {
	failing = new(atomic.Bool)
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if failing.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsWrite && strings.Contains(filepath.Base(op.Path), target) {
			return &os.PathError{Op: "write", Path: op.Path, Err: errno}
		}
		return nil
	})
	return failing, errorfs.Wrap(vfs.Default, inj)
}

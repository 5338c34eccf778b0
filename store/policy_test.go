package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// present returns which of keys the tier holds.
func present(t *testing.T, tier *engine, keys []string) (in []string) {
	t.Helper()
	for _, k := range keys {
		tier.polMu.Lock()
		ok := tier.pol.get([]byte(k)) != nil
		tier.polMu.Unlock()
		if ok {
			in = append(in, k)
		}
	}
	return in
}

// TestScanResistance: a crawler storing 200 tiles once each, in a tier
// with room for 20, does not flush 5 tiles that viewers read twice (LRU
// would have evicted them after the first 20 of the scan).
func TestScanResistance(t *testing.T) {
	clk := newClock()
	const size = 1000
	entrySize := int64(len("hot0") + valueLen("image/jpeg", make([]byte, size)))
	tier := openMem(t, Config{MaxBytes: 20 * entrySize}, clk)
	hot := []string{"hot0", "hot1", "hot2", "hot3", "hot4"}
	for _, k := range hot {
		mustPut(t, tier, k, jpeg(size, 1))
	}
	for range 2 {
		for _, k := range hot {
			if _, err := tier.Get([]byte(k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 200 {
		mustPut(t, tier, fmt.Sprintf("s%03d", i), jpeg(size, byte(i)))
		if i%5 == 4 {
			if err := tier.sweep(); err != nil {
				t.Fatal(err)
			}
		}
		if i%40 == 39 { // viewers keep reading the hot tiles, now and then
			for _, k := range hot {
				if _, err := tier.Get([]byte(k)); err != nil {
					t.Fatalf("hot tile %s evicted by the scan after %d scan tiles", k, i+1)
				}
			}
		}
	}
	if got := present(t, tier, hot); len(got) != len(hot) {
		t.Errorf("after the scan the tier holds %v of the hot tiles", got)
	}
	if st := tier.Stats(); st.Bytes > tier.maxBytes.Load() || st.Evicted < 150 {
		t.Errorf("Stats = %+v: want the scan evicted and Bytes within %d", st, tier.maxBytes.Load())
	}
	checkAccounting(t, tier)
}

// TestRecency: in the main queue, entries read since the eviction hand
// last passed them stay and the others go, whatever their insertion order.
func TestRecency(t *testing.T) {
	p := newPolicy()
	for i := range 10 {
		p.add([]byte(fmt.Sprint(i)), 10, 0)
		p.hit([]byte(fmt.Sprint(i)), 0, 1<<40) // read while probationary
	}
	var order []string
	victim := func() {
		t.Helper()
		k, _, _, ok := p.victim(100)
		if !ok {
			t.Fatal("empty")
		}
		order = append(order, k)
	}
	// The first eviction promotes all ten (each was read in the small
	// queue) and evicts the oldest, unread since its promotion.
	victim()
	for _, k := range []string{"1", "3", "5", "7", "9"} {
		p.hit([]byte(k), 1, 1<<40)
	}
	for range 4 {
		victim()
	}
	if want := []string{"0", "2", "4", "6", "8"}; fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("evicted %v, want %v", order, want)
	}
	for _, k := range []string{"1", "3", "5", "7", "9"} {
		if p.get([]byte(k)) == nil {
			t.Errorf("read entry %s evicted", k)
		}
	}
}

// TestGhostReadmits: a key evicted from the small queue unread and stored
// again soon after goes straight to the main queue.
func TestGhostReadmits(t *testing.T) {
	p := newPolicy()
	p.add([]byte("a"), 10, 0)
	p.add([]byte("b"), 10, 0)
	if k, _, _, _ := p.victim(20); k != "a" {
		t.Fatalf("victim %q, want a (oldest, unread)", k)
	}
	p.add([]byte("a"), 10, 1)
	if n := p.get([]byte("a")); n == nil || n.where != inMain {
		t.Errorf("re-stored a is not in the main queue")
	}
	if n := p.get([]byte("b")); n == nil || n.where != inSmall {
		t.Errorf("b left the small queue")
	}
}

// TestOrderSurvivesRestart: the order is rebuilt from the access index:
// the checkpointed reads and the later Puts survive an eviction after a
// reopen, the oldest unread entries go.
func TestOrderSurvivesRestart(t *testing.T) {
	clk := newClock()
	fs := vfs.NewMem()
	const size = 1000
	entrySize := int64(1 + valueLen("image/jpeg", make([]byte, size)))
	cfg := Config{fs: fs, MaxBytes: 100 * entrySize, TouchEvery: time.Second}
	tier := openMem(t, cfg, clk)
	for _, k := range "abcdefghij" {
		mustPut(t, tier, string(k), jpeg(size, byte(k)))
		clk.Advance(time.Second)
	}
	for _, k := range "ab" {
		if _, err := tier.Get([]byte{byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Second)
	if err := tier.sweep(); err != nil { // checkpoints a and b's reads
		t.Fatal(err)
	}
	if err := tier.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.MaxBytes = 6 * entrySize // down to 99 %: 5 entries stay
	tier = openMem(t, cfg, clk)
	checkAccounting(t, tier)
	if err := tier.sweep(); err != nil {
		t.Fatal(err)
	}
	got := present(t, tier, []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"})
	if want := []string{"a", "b", "h", "i", "j"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after restart and eviction %v remain, want %v", got, want)
	}
	checkAccounting(t, tier)
}

// dirBytes is the size of the files in dir (not recursive: Pebble's layout
// is flat).
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}

// TestDiskFallsAfterBudgetCut: on a real directory, a budget cut (SIGHUP's
// SetLimits) is reached on disk, not only in the counters: the deleted
// entries' space goes back to the file system, and a purge's too.
func TestDiskFallsAfterBudgetCut(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tile")
	tier, err := New(Config{Dir: dir, Logger: quiet, SweepEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	eventually(t, "the tier opens", func() bool { return tier.State() == StateOK })
	const n, size = 2000, 16 << 10 // 32 MB of incompressible bodies
	for i := range n {
		if _, err := tier.Put([]byte(fmt.Sprintf("img\x00%05d", i)), jpeg(size, byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	e := tier.eng.Load()
	if err := e.db.Flush(); err != nil {
		t.Fatal(err)
	}
	full := dirBytes(t, dir)
	live := tier.Stats().Bytes
	if full < live {
		t.Fatalf("directory %d bytes below the live %d", full, live)
	}
	const budget = 8 << 20
	if err := tier.SetLimits(budget, 0); err != nil {
		t.Fatal(err)
	}
	// The sweeper, woken by SetLimits, evicts and reclaims; allow it a
	// bounded time (a sweep of this size takes well under a second).
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := dirBytes(t, dir)
		if st := tier.Stats(); st.Bytes <= budget && got <= budget+FixedOverhead {
			t.Logf("directory %d → %d bytes for a budget of %d (live %d)", full, got, budget, st.Bytes)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("directory %d bytes, live %d, 30 s after a cut to %d (was %d)", got, tier.Stats().Bytes, budget, full)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := tier.Stats(); st.DiskBytes == 0 || st.Evicted == 0 {
		t.Errorf("Stats = %+v: want DiskBytes and Evicted", st)
	}
	if err := tier.PurgeAll(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for dirBytes(t, dir) > FixedOverhead+64<<10 {
		if time.Now().After(deadline) {
			ents, _ := os.ReadDir(dir)
			var files []string
			for _, x := range ents {
				if fi, err := x.Info(); err == nil {
					files = append(files, fmt.Sprintf("%s %d", x.Name(), fi.Size()))
				}
			}
			t.Fatalf("directory %d bytes 30 s after PurgeAll: %s", dirBytes(t, dir), strings.Join(files, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := tier.Stats(); st.Purged == 0 {
		t.Errorf("Purged = 0 after PurgeAll of %d entries", st.Entries)
	}
}

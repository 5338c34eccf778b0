package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDiskDuringFill measures what a tier's directory holds against its
// budget while it is filled far past it and after: tile-sized entries
// (14.3 KB, incompressible, proxy-shaped keys in random order, as a
// viewer's misses arrive) written at a fixed rate or as fast as one
// goroutine goes, the directory sampled every 20 ms. It reports the peak,
// the share of samples above the bound (1.2 × budget + DiskSlack), the
// bytes written per Put and the Puts declined. It writes a few hundred MB,
// so it runs only when asked:
//
//	IIIF_SPACE_AMP=1 go test -run TestDiskDuringFill -v ./store/
//
// IIIF_FILL_BUDGETS (MB, comma-separated; default 6,23,58: 5, 20 and 50 %
// of the trace's distinct payload), IIIF_FILL_RATE (MB/s; 0 = as fast as
// possible; default 16, a fast renderer's output, then 2, the trace
// replay's misses) and IIIF_FILL_TIMES (how many budgets are written;
// default 3) change the run. IIIF_FILL_LARGE=1 adds a 256 MB tier at
// 16 MB/s (the smallest one left with Pebble's defaults; writes about
// 800 MB, and needs 2 GB free where the test's temporary directory is);
// IIIF_FILL_SEQ=1 writes the keys in order (a crawler's walk) instead.
func TestDiskDuringFill(t *testing.T) {
	if os.Getenv("IIIF_SPACE_AMP") == "" {
		t.Skip("set IIIF_SPACE_AMP=1 to run (writes a few hundred MB)")
	}
	budgets := envInts(t, "IIIF_FILL_BUDGETS", []int{6, 23, 58})
	rates := envInts(t, "IIIF_FILL_RATE", []int{16, 2})
	times := envInts(t, "IIIF_FILL_TIMES", []int{3})[0]
	for _, rate := range rates {
		for _, mb := range budgets {
			t.Run(fmt.Sprintf("budget=%dMB/rate=%dMBps", mb, rate), func(t *testing.T) {
				fillAndWatch(t, int64(mb)*1e6, rate, times)
			})
		}
	}
	if os.Getenv("IIIF_FILL_LARGE") != "" {
		t.Run("budget=256MB/rate=16MBps", func(t *testing.T) {
			var st syscall.Statfs_t
			if err := syscall.Statfs(os.TempDir(), &st); err != nil || int64(st.Bavail)*st.Bsize < 2<<30 {
				t.Skipf("needs 2 GB free in %s (statfs: %v)", os.TempDir(), err)
			}
			fillAndWatch(t, 256e6, 16, times)
		})
	}
}

func envInts(t *testing.T, name string, def []int) []int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, n)
	}
	return out
}

func fillAndWatch(t *testing.T, budget int64, rateMB, times int) {
	dir := filepath.Join(t.TempDir(), "tile")
	tier, err := New(Config{Dir: dir, Logger: quiet, MaxBytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	eventually(t, "the tier opens", func() bool { return tier.State() == StateOK })
	bound := float64(budget)*1.2 + float64(DiskSlack)

	var mu sync.Mutex // protects the samples
	var peak int64
	var samples, above int
	debug := os.Getenv("IIIF_FILL_DEBUG") != ""
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			d := dirBytes(t, dir)
			mu.Lock()
			peak = max(peak, d)
			if debug && (samples%50 == 0 || float64(d) > bound) {
				if e := tier.eng.Load(); e != nil {
					m := e.db.Metrics()
					e.diskAt.Store(0)
					e.overBound()
					t.Logf("ahead %.1f t=%d dir %.1f pebble %.1f live %.1f L0 %.1f L5 %.1f L6 %.1f obsolete %.1f mem %.1f (%d) prog %.1f flushes %d compactions %d reclaims %d",
						float64(e.ahead.Load())/1e6, samples, float64(d)/1e6, float64(m.DiskSpaceUsage())/1e6, float64(e.bytes.Load())/1e6, float64(m.Levels[0].TablesSize)/1e6, float64(m.Levels[5].TablesSize)/1e6, float64(m.Levels[6].TablesSize)/1e6, float64(m.Table.Local.ObsoleteSize+m.Table.Local.ZombieSize)/1e6,
						float64(m.MemTable.Size)/1e6, m.MemTable.Count, float64(m.Compact.InProgressBytes)/1e6, m.Flush.Count, m.Compact.Count, e.reclaims.Load())
				}
			}
			samples++
			if float64(d) > bound {
				above++
			}
			mu.Unlock()
		}
	}()

	const body = 14_300
	n := int(int64(times) * budget / body)
	bodies := make([]Entry, 64)
	for i := range bodies {
		bodies[i] = jpeg(body, byte(i))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	seq := os.Getenv("IIIF_FILL_SEQ") != "" // keys in order, as a crawler's
	w0 := procWriteBytes(t)
	start := time.Now()
	for i := range n {
		if rateMB > 0 {
			due := start.Add(time.Duration(float64(i) * body / float64(rateMB<<20) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		// Keys in random order over a space ten times the entries written.
		k := rng.IntN(10 * n)
		if seq {
			k = i
		}
		key := fmt.Sprintf("c%03d-15426x11570.tif\x00%d,%d,256,256/256,256/0/default.jpg", k%5, (k/60)*256, (k%60)*256)
		if _, err := tier.Put([]byte(key), bodies[i%len(bodies)]); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(start)
	mu.Lock()
	during, duringAbove, duringPeak := samples, above, peak
	samples, above, peak = 0, 0, 0
	mu.Unlock()
	// After: the sweeper's flush and reclaim, and Pebble's deletions.
	time.Sleep(3 * flushEvery)
	close(stop)
	<-done
	st := tier.Stats()
	end := dirBytes(t, dir)
	w1 := procWriteBytes(t)
	t.Logf("budget %.1f MB, %d Puts of %d B in %.1f s (%.1f MB/s): %d declined; written %.2f × the body per Put stored",
		float64(budget)/1e6, n, body, took.Seconds(), float64(n)*body/took.Seconds()/1e6,
		st.Declined, float64(w1-w0)/float64(max(st.Puts, 1))/body)
	t.Logf("  during: peak %.2f MB (%.2f × budget), %d of %d samples above 1.2 × budget + %.1f MB; after: peak %.2f × budget, at the end %.2f MB (%.2f ×), live %.2f MB; reclaims %d",
		float64(duringPeak)/1e6, float64(duringPeak)/float64(budget), duringAbove, during, float64(DiskSlack)/1e6,
		float64(peak)/float64(budget), float64(end)/1e6, float64(end)/float64(budget), float64(st.Bytes)/1e6, tier.eng.Load().reclaims.Load())
	if float64(duringPeak) > bound || float64(end) > bound {
		t.Errorf("directory peaked at %d bytes (%d at the end), bound %.0f", duringPeak, end, bound)
	}
}

// TestPutDeclinesOverTheBound: while the directory, plus what Pebble may
// still write before it frees anything (ahead), holds more than
// 1.2 × MaxBytes + DiskSlack (here: the sweeper is off, so nothing evicts
// or compacts), Put stores nothing, says so in Stats.Declined, and still
// returns the entry as it would have stored it; once eviction and reclaim
// have brought the directory down, Put stores again.
func TestPutDeclinesOverTheBound(t *testing.T) {
	const budget = 256 << 10
	tier := openMem(t, Config{MaxBytes: budget}, newClock())
	bound := tier.diskBound(budget)
	var i int
	put := func() (string, Entry) {
		t.Helper()
		i++
		key := fmt.Sprintf("img\x00%05d", i)
		tier.diskAt.Store(0) // measure the directory now
		e, err := tier.Put([]byte(key), jpeg(16<<10, byte(i)))
		if err != nil {
			t.Fatal(err)
		}
		return key, e
	}
	// Fill past the bound: every 32 Puts a flush takes them to disk.
	for tier.Stats().Declined == 0 {
		if i > 2000 {
			t.Fatalf("no Put declined with %d bytes on disk, bound %d", tier.Stats().DiskBytes, bound)
		}
		put()
		if i%32 == 0 {
			if err := tier.db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if st := tier.Stats(); st.DiskBytes+tier.ahead.Load() <= bound {
		t.Fatalf("declined with %d bytes on disk and %d ahead, bound %d", st.DiskBytes, tier.ahead.Load(), bound)
	}
	// Pebble's own compactions go on in the background and can bring the
	// directory under the bound between two Puts: the next Put then
	// stores, rightly. Look at the next Put that is declined.
	var st Stats
	var key string
	var e Entry
	for {
		st = tier.Stats()
		key, e = put()
		if tier.Stats().Declined != st.Declined {
			break
		}
		if i > 4000 {
			t.Fatalf("no second Put declined with %d bytes on disk, bound %d", tier.Stats().DiskBytes, bound)
		}
		if i%32 == 0 {
			if err := tier.db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if e.ETag == "" || len(e.Body) != 16<<10 {
		t.Errorf("declined Put returned %+v, want the entry as it would be stored", e)
	}
	if _, err := tier.Get([]byte(key)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a declined entry = %v, want a miss", err)
	}
	if got := tier.Stats(); got.Declined != st.Declined+1 || got.Puts != st.Puts {
		t.Errorf("after a declined Put Declined %d → %d, Puts %d → %d", st.Declined, got.Declined, st.Puts, got.Puts)
	}

	// Evict to the budget and reclaim: the directory comes down, Puts store.
	if err := tier.sweep(); err != nil {
		t.Fatal(err)
	}
	tier.reclaim(true)
	// Pebble deletes the files a compaction made obsolete in the
	// background: wait (bounded) for the directory to be under the bound.
	for deadline := time.Now().Add(20 * time.Second); ; {
		tier.diskAt.Store(0)
		if !tier.overBound() || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	key, _ = put()
	if _, err := tier.Get([]byte(key)); err != nil {
		t.Errorf("Put after the directory came down (%d bytes, bound %d): Get = %v", tier.Stats().DiskBytes, bound, err)
	}
}

// TestReclaimBlocksNeitherPutNorEviction: a reclaim holds reclaimMu for
// the seconds its compactions take; neither Put (overBound reads the floor
// reclaim leaves) nor the sweeper's eviction (sweepPass) may wait for it,
// or a tier written fast overshoots its budget while it runs.
func TestReclaimBlocksNeitherPutNorEviction(t *testing.T) {
	const budget = 64 << 10
	tier := openMem(t, Config{MaxBytes: budget}, newClock())
	tier.reclaimMu.Lock() // a reclaim under way for as long as this test runs
	defer tier.reclaimMu.Unlock()
	done := make(chan error, 1)
	go func() {
		for i := range 20 {
			tier.diskAt.Store(0) // overBound measures the directory on every Put
			if _, err := tier.Put([]byte(fmt.Sprintf("k%02d", i)), jpeg(16<<10, byte(i))); err != nil {
				done <- err
				return
			}
		}
		done <- tier.sweepPass()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // a watchdog, not a measure: this takes milliseconds
		t.Fatal("Put or eviction waited for a reclaim")
	}
	if st := tier.Stats(); st.Bytes > budget || st.Evicted == 0 {
		t.Errorf("Stats = %+v: want entries evicted to the budget %d", st, budget)
	}
}

// TestReclaimWhenLockedOut: a tier whose every Put is declined (the
// directory plus what Pebble has yet to write is over the bound) with less
// garbage than reclaim's usual slack would stay locked out: Pebble's own
// compactions do not rewrite the last level for its garbage. Reclaim then
// runs past reclaimMinSlack; otherwise (busy storing, or idle) it keeps
// its usual slack.
func TestReclaimWhenLockedOut(t *testing.T) {
	// Shaped for a 32 MB budget (small memtables), so that reclaim has
	// room for its pieces under the bound (roomFor).
	tier := openMem(t, Config{MaxBytes: 32 << 20}, newClock())
	for i := range 1000 {
		if _, err := tier.Put([]byte(fmt.Sprintf("img\x00%05d", i)), jpeg(16<<10, byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := tier.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := tier.compact(context.Background(), rangeStart, rangeEnd); err != nil {
		t.Fatal(err)
	}
	// Evict about 9 %: garbage between reclaimMinSlack and live/8.
	tier.maxBytes.Store(tier.bytes.Load() * 92 / 100)
	if err := tier.sweepPass(); err != nil {
		t.Fatal(err)
	}
	if err := tier.db.Flush(); err != nil {
		t.Fatal(err)
	}
	live := tier.bytes.Load()
	// The bound well above: reclaim's pieces need room under it (roomFor),
	// and what is tested here is whether it starts.
	tier.maxBytes.Store(live * 3 / 2)
	garbage := int64(tier.db.Metrics().Table.Local.LiveSize) - live
	if garbage <= reclaimMinSlack || garbage >= reclaimSlack(live) {
		t.Fatalf("set-up: garbage %d, want between %d and %d", garbage, reclaimMinSlack, reclaimSlack(live))
	}
	long := time.Now().Add(-2 * reclaimEvery).UnixNano()
	for _, c := range []struct {
		name             string
		lastPut, decline int64
		want             uint64
	}{
		{"busy storing", time.Now().UnixNano(), 0, 0},
		{"idle", long, long, 0},
		{"every Put declined", long, time.Now().UnixNano(), 1},
	} {
		tier.lastPut.Store(c.lastPut)
		tier.lastDecline.Store(c.decline)
		tier.reclaim(false)
		if got := tier.reclaims.Load(); got != c.want {
			t.Fatalf("%s: %d reclaims, want %d (garbage %d, live %d)", c.name, got, c.want, garbage, live)
		}
	}
	if g := int64(tier.db.Metrics().Table.Local.LiveSize) - tier.bytes.Load(); g >= garbage {
		t.Errorf("garbage %d after reclaim, was %d", g, garbage)
	}
}

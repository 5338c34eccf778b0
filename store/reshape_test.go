package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestNeedsReshape(t *testing.T) {
	for _, c := range []struct {
		old, now int64
		want     bool
	}{
		{32 << 20, 32 << 20, false},
		{32 << 20, 30 << 20, false}, // within reshapeRatio
		{32 << 20, 38 << 20, false},
		{32 << 20, 6 << 20, true},
		{32 << 20, 128 << 20, true},
		{0, 8 << 20, true},          // no budget (Pebble's defaults) to a small one
		{8 << 20, 0, true},          // and back
		{1 << 30, 2 << 30, false},   // both large: Pebble's defaults either way
		{1 << 30, 64 << 20, true},   // large to small
		{64 << 10, 80 << 10, false}, // both at the minimum sizes
	} {
		if got := needsReshape(c.old, c.now); got != c.want {
			t.Errorf("needsReshape(%d, %d) = %v, want %v", c.old, c.now, got, c.want)
		}
	}
}

// TestReshapeOnBudgetCut: a budget cut by SetLimits (SIGHUP) far below the
// one the database was shaped for has the supervisor reopen it in place
// with the new shape, while Gets and Puts go on (answered, or ErrOpening:
// no fault, no other error); the directory then comes within the new
// bound, and stays there while the tier is filled again.
func TestReshapeOnBudgetCut(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tile")
	const first, cut, size = 32 << 20, 6 << 20, 16 << 10
	tier, err := New(Config{Dir: dir, Logger: quiet, MaxBytes: first})
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	eventually(t, "the tier opens", func() bool { return tier.State() == StateOK })
	put := func(i int) error {
		_, err := tier.Put([]byte(fmt.Sprintf("img\x00%06d", i)), jpeg(size, byte(i)))
		return err
	}
	for i := range 2400 { // 39 MB: past the first budget
		if err := put(i); err != nil {
			t.Fatal(err)
		}
	}

	// Requests during the reopen.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var opening, served int
	var bad error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 10_000; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := put(i)
			if err == nil {
				_, err = tier.Get([]byte(fmt.Sprintf("img\x00%06d", i-1)))
			}
			switch {
			case err == nil || errors.Is(err, ErrNotFound):
				served++
			case errors.Is(err, ErrOpening):
				opening++
			default:
				bad = err
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()

	if err := tier.SetLimits(cut, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the database is reopened for the new budget", func() bool {
		e := tier.eng.Load()
		return e != nil && e.cfg.MaxBytes == cut && tier.State() == StateOK
	})
	bound := tier.eng.Load().diskBound(cut)
	// Eviction, reclaim and Pebble's deletions bring the directory down;
	// allow them a bounded time.
	deadline := time.Now().Add(30 * time.Second)
	for dirBytes(t, dir) > bound {
		if time.Now().After(deadline) {
			t.Fatalf("directory %d bytes 30 s after a cut to %d (bound %d)", dirBytes(t, dir), cut, bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if bad != nil {
		t.Fatalf("a call during the reopen: %v", bad)
	}
	st := tier.Stats()
	var faults uint64
	for _, n := range st.Faults {
		faults += n
	}
	if faults != 0 || tier.reshapes.Load() != 1 {
		t.Errorf("faults %v, reshapes %d: want no fault and one reopen", st.Faults, tier.reshapes.Load())
	}
	t.Logf("reopened: %d calls served, %d answered ErrOpening; directory %d bytes, bound %d", served, opening, dirBytes(t, dir), bound)

	// Filled again at the new budget: the new shape's transients fit.
	var peak int64
	for i := range 1200 {
		if err := put(20_000 + i); err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			peak = max(peak, dirBytes(t, dir))
		}
	}
	if peak > bound {
		t.Errorf("directory peaked at %d bytes refilling at the new budget, bound %d", peak, bound)
	}
	if got := tier.reshapes.Load(); got != 1 {
		t.Errorf("%d reopens, want 1", got)
	}
}

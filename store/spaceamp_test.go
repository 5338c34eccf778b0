package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestSpaceAmplification measures what a tier's directory holds against
// the payload it stores (bodies only) with no budget, at 5,000, 20,000 and
// 200,000 tile-sized entries (4.9 KB, incompressible, keys shaped like the
// proxy's), after the writes and the sweeper's pass have settled. It
// writes about 1 GB, so it runs only when asked:
//
//	IIIF_SPACE_AMP=1 go test -run TestSpaceAmplification -v ./store/
//
// The goal (issue 11) is at most 1.2 × the payload.
func TestSpaceAmplification(t *testing.T) {
	if os.Getenv("IIIF_SPACE_AMP") == "" {
		t.Skip("set IIIF_SPACE_AMP=1 to run (writes about 1 GB)")
	}
	counts := []int{5_000, 20_000, 200_000}
	if s := os.Getenv("IIIF_SPACE_AMP_COUNTS"); s != "" {
		counts = nil
		for _, f := range filepath.SplitList(s) {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			counts = append(counts, n)
		}
	}
	const body = 4900
	for _, n := range counts {
		dir := filepath.Join(t.TempDir(), "tile")
		tier, err := New(Config{Dir: dir, Logger: quiet, SweepEvery: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "the tier opens", func() bool { return tier.State() == StateOK })
		var payload int64
		for i := range n {
			key := fmt.Sprintf("c%03d-15426x11570.tif\x00%d,%d,256,256/256,256/0/default.jpg", i%5, (i/60)*256, (i%60)*256)
			e := jpeg(body, byte(i))
			e.SourceIdentity = "dev=2049 ino=1234567 size=123456789 mtime=1700000000000000000 ctime=1700000000000000000"
			if _, err := tier.Put([]byte(key), e); err != nil {
				t.Fatal(err)
			}
			payload += body
		}
		e := tier.eng.Load()
		// Settle as a server would: flush, let compactions finish, then the
		// sweeper's pass (whose reclaim compacts if garbage is past its
		// slack).
		if err := e.db.Flush(); err != nil {
			t.Fatal(err)
		}
		for i := 0; e.db.Metrics().Compact.NumInProgress > 0 && i < 600; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		if err := e.sweep(); err != nil {
			t.Fatal(err)
		}
		// Pebble deletes obsolete sstables in the background: measure once
		// the directory stops shrinking (half a second unchanged, at most
		// 30 s).
		disk := dirBytes(t, dir)
		for i := 0; i < 60; i++ {
			time.Sleep(500 * time.Millisecond)
			d := dirBytes(t, dir)
			if d == disk {
				break
			}
			disk = d
		}
		st := tier.Stats()
		if os.Getenv("IIIF_SPACE_AMP_DEBUG") != "" {
			t.Logf("%s", e.db.Metrics())
			ents, _ := os.ReadDir(dir)
			for _, x := range ents {
				fi, _ := x.Info()
				t.Logf("%s %d", x.Name(), fi.Size())
			}
		}
		t.Logf("%7d entries: payload %d, live (MaxBytes' count) %d, directory %d: %.3f × payload, %.3f × live; %.1f bytes/entry beyond the payload",
			n, payload, st.Bytes, disk, float64(disk)/float64(payload), float64(disk)/float64(st.Bytes), float64(disk-payload)/float64(n))
		if float64(disk) > 1.2*float64(payload) {
			t.Errorf("%d entries: directory %.3f × payload, goal ≤ 1.2", n, float64(disk)/float64(payload))
		}
		if err := tier.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

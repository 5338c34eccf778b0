package vips

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestPyramidBuildReportsItsProgress: the builder child reports its
// progress as it goes, and the stats show it while the build runs.
func TestPyramidBuildReportsItsProgress(t *testing.T) {
	v, _ := pyramidFixture(t, Config{})
	var (
		mu   sync.Mutex // protects seen and bad
		seen []int
		bad  []string
	)
	testHookProgress = func(id string, pc int) {
		s := v.Stats().Pyramids
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, pc)
		if id != "flat.jpg" || s.Building != 1 || len(s.InProgress) != 1 || s.InProgress[0].ID != id || s.InProgress[0].Percent != pc {
			bad = append(bad, fmt.Sprintf("%d%%: stats %+v", pc, *s))
		}
	}
	t.Cleanup(func() { testHookProgress = nil })
	if _, err := renderRes(t, v, "flat.jpg", "x/full/100,/0/default.jpg"); err != nil {
		t.Fatal(err)
	}
	v.pyr.wg.Wait()
	s := v.Stats().Pyramids
	if s.Succeeded != 1 || len(s.InProgress) != 0 {
		t.Fatalf("after the build: %+v", s)
	}
	mu.Lock()
	defer mu.Unlock()
	// libvips signals every strip it writes: many steps, the last 100.
	t.Logf("progress reported: %v", seen)
	if len(seen) < 3 || seen[len(seen)-1] != 100 || !slices.IsSorted(seen) || seen[0] == 100 {
		t.Errorf("progress reported %v, want a few rising steps ending at 100", seen)
	}
	for _, b := range bad {
		t.Errorf("while building, %s: want this build in progress at the percentage just reported", b)
	}
}

func TestReadProgressKeepsOnlyPercentages(t *testing.T) {
	var got []int
	readProgress(strings.NewReader("0\n12\nVIPS-WARNING something\n-3\n101\n\n57\n100"), func(pc int) { got = append(got, pc) })
	if want := []int{0, 12, 57, 100}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

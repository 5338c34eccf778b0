package corpus

import (
	"slices"
	"strings"
	"testing"
)

func TestPlanIsDeterministicAndBounded(t *testing.T) {
	items, err := Plan(Options{Count: 60, MaxSide: 30000})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Plan(Options{Count: 60, MaxSide: 30000})
	if !slices.Equal(items, again) {
		t.Fatal("two plans with the same options differ")
	}
	// A smaller corpus is a prefix of a larger one.
	fewer, _ := Plan(Options{Count: 10, MaxSide: 30000})
	if !slices.Equal(fewer, items[:10]) {
		t.Error("Count changes the first images")
	}
	other, _ := Plan(Options{Count: 60, MaxSide: 30000, Seed: 9})
	if slices.Equal(items, other) {
		t.Error("the seed changes nothing")
	}
	formats := map[string]int{}
	big, names := 0, map[string]bool{}
	for _, it := range items {
		formats[it.Format]++
		hi := 30000
		if it.Format == "jp2" {
			hi = 8000
		}
		for _, side := range []int{it.Width, it.Height} {
			if side < 4000 || side > hi {
				t.Errorf("%s: side %d outside 4000–%d", it.File(), side, hi)
			}
		}
		if max(it.Width, it.Height) > 15000 {
			big++
		}
		if names[it.File()] || !strings.HasPrefix(it.Name, "c0") {
			t.Errorf("name %s", it.File())
		}
		names[it.File()] = true
	}
	if formats["tif"] != 20 || formats["jpg"] != 20 || formats["jp2"] != 20 {
		t.Errorf("formats %v, want 20 each", formats)
	}
	if big == 0 {
		t.Error("no image above 15000 pixels with MaxSide 30000")
	}
}

func TestOptionsValidate(t *testing.T) {
	_, err := Plan(Options{Count: -1, MinSide: 5000, MaxSide: 40000, Formats: []string{"png"}})
	if err == nil {
		t.Fatal("bad options accepted")
	}
	for _, want := range []string{"count", "sides", "png"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %s", err, want)
		}
	}
}

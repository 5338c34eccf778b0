package cachesim

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// trace builds a Trace from names and their sizes.
func trace(t *testing.T, reqs []string, sizes map[string]int64) Trace {
	t.Helper()
	ids := map[string]int32{}
	var tr Trace
	for _, r := range reqs {
		id, ok := ids[r]
		if !ok {
			s, ok := sizes[r]
			if !ok {
				s = 1
			}
			id = int32(len(tr.Sizes))
			ids[r] = id
			tr.Sizes = append(tr.Sizes, s)
		}
		tr.Keys = append(tr.Keys, id)
	}
	return tr
}

func hits(t *testing.T, tr Trace, budget int64) map[string]Result {
	t.Helper()
	out := map[string]Result{}
	for _, p := range Policies {
		r, err := Simulate(tr, p, budget)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = r
	}
	return out
}

func check(t *testing.T, got map[string]Result, want map[string]int64) {
	t.Helper()
	for p, w := range want {
		if got[p].Hits != w {
			t.Errorf("%s: %d hits, want %d", p, got[p].Hits, w)
		}
	}
}

// Unit sizes, room for three: a b c a d a b.
//
//	FIFO: a hits once; d evicts a, so the second a misses (and evicts b).
//	LRU:  a hits; d evicts b (least recent), a hits again; b misses.
//	OPT:  c and d are never asked for again, so they bypass the cache;
//	      a, a and b hit: the compulsory bound, 7 requests - 4 objects.
//	SIEVE: a is marked; d's eviction clears a's bit and evicts b; a hits
//	      again; b evicts c: 2 hits.
func TestPoliciesDiffer(t *testing.T) {
	tr := trace(t, []string{"a", "b", "c", "a", "d", "a", "b"}, nil)
	got := hits(t, tr, 3)
	check(t, got, map[string]int64{FIFO: 1, LRU: 2, SIEVE: 2, OPT: 3, Bound: 3})
	if got[FIFO].Evictions != 3 || got[LRU].Evictions != 2 || got[OPT].Evictions != 0 {
		t.Errorf("evictions FIFO %d LRU %d OPT %d, want 3, 2, 0",
			got[FIFO].Evictions, got[LRU].Evictions, got[OPT].Evictions)
	}
}

// Sizes in bytes, budget 10: A=6 B=5 C=4 D=1; A B A C A D A.
//
//	FIFO: B evicts A, A evicts B, C fits beside A, A hits, D evicts A (the
//	      oldest), A misses: 1 hit, 6 bytes of 34.
//	LRU:  the same until D, which evicts C (A was just read): A hits
//	      twice, 12 bytes.
//	OPT:  B, C and D are never read again and bypass; A hits 3 times, 18
//	      bytes, the compulsory bound.
func TestByteBudget(t *testing.T) {
	tr := trace(t, []string{"A", "B", "A", "C", "A", "D", "A"}, map[string]int64{"A": 6, "B": 5, "C": 4, "D": 1})
	got := hits(t, tr, 10)
	check(t, got, map[string]int64{FIFO: 1, LRU: 2, OPT: 3, Bound: 3})
	for p, want := range map[string]int64{FIFO: 6, LRU: 12, OPT: 18, Bound: 18} {
		if r := got[p]; r.HitBytes != want || r.Bytes != 34 {
			t.Errorf("%s: %d of %d bytes hit, want %d of 34", p, r.HitBytes, r.Bytes, want)
		}
	}
	if n, b := tr.Distinct(); n != 4 || b != 16 {
		t.Errorf("Distinct = %d, %d; want 4 objects, 16 bytes", n, b)
	}
}

// Budget 10: X=9, Y=Z=1; Y Z X Y Z Y Z X.
//
//	OPT: Y and Z are cached; X (next used last) would need Y's or Z's
//	     room, both used sooner, so X bypasses both times: Y, Z, Y, Z hit.
//	LRU: X evicts Y, Y evicts Z, Z evicts X, then Y and Z hit: 2.
//	The bound counts X's second request too (5): with variable sizes it
//	is not reachable.
func TestOPTBypassesBigObject(t *testing.T) {
	tr := trace(t, []string{"Y", "Z", "X", "Y", "Z", "Y", "Z", "X"}, map[string]int64{"X": 9})
	got := hits(t, tr, 10)
	check(t, got, map[string]int64{LRU: 2, OPT: 4, Bound: 5})
	if got[OPT].HitBytes != 4 || got[OPT].Bytes != 24 {
		t.Errorf("OPT %d of %d bytes, want 4 of 24", got[OPT].HitBytes, got[OPT].Bytes)
	}
}

func TestObjectOverBudgetNeverCached(t *testing.T) {
	tr := trace(t, []string{"big", "big", "big", "s", "s"}, map[string]int64{"big": 11})
	got := hits(t, tr, 10)
	check(t, got, map[string]int64{FIFO: 1, LRU: 1, SIEVE: 1, S3FIFO: 1, OPT: 1, Bound: 3})
}

// crawlTrace: five hot objects read twice each to warm up, then rounds in
// which each hot object is read once, followed by two scan objects that
// are never read again (a crawler).
func crawlTrace(t *testing.T, rounds int) Trace {
	var reqs []string
	hot := []string{"h1", "h2", "h3", "h4", "h5"}
	for _, h := range hot {
		reqs = append(reqs, h, h)
	}
	s := 0
	for range rounds {
		for _, h := range hot {
			reqs = append(reqs, h, "s"+string(rune('A'+s)), "s"+string(rune('A'+s+1)))
			s += 2
		}
	}
	return trace(t, reqs, nil)
}

// Unit sizes, room for 10; four rounds: 70 requests, 45 objects.
//
//	LRU: the 5 warm-up hits; in round one h1, h2, h3 hit, but h4 has seen
//	     10 others since and is gone, h5 too; from round two each hot
//	     object has seen 14 others since its last read: 8 hits.
//	FIFO: every hot object hits once in round one (evicted only from s6
//	      on, after its read), then each is inserted and pushed out by 14
//	      insertions before its next read: 10 hits.
//	S3-FIFO: the warm-up's hits mark the hot objects; when the cache fills,
//	      they move to the main queue and the scan objects, never read
//	      again, leave from the small one: every hot read hits, 25, the
//	      bound (70 - 45). SIEVE: the hand stops at the first unvisited
//	      entry, always a scan object: 25 too. OPT bypasses the scan: 25.
func TestScanResistance(t *testing.T) {
	tr := crawlTrace(t, 4)
	if len(tr.Keys) != 70 || len(tr.Sizes) != 45 {
		t.Fatalf("%d requests, %d objects", len(tr.Keys), len(tr.Sizes))
	}
	check(t, hits(t, tr, 10), map[string]int64{LRU: 8, FIFO: 10, S3FIFO: 25, SIEVE: 25, OPT: 25, Bound: 25})
}

// On random traces with unit sizes Belady is optimal: no policy beats OPT
// and OPT does not beat the bound; with room for everything every policy
// meets the bound.
func TestOrderingOnRandomTraces(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 30 {
		objects := 5 + rng.IntN(200)
		tr := Trace{Sizes: make([]int64, objects)}
		for k := range tr.Sizes {
			tr.Sizes[k] = 1
		}
		for range 2000 {
			// Skewed: low object numbers are popular.
			tr.Keys = append(tr.Keys, int32(float64(objects)*rng.Float64()*rng.Float64()))
		}
		budget := int64(1 + rng.IntN(objects))
		got := hits(t, tr, budget)
		for _, p := range Policies {
			if got[p].Hits > got[OPT].Hits && p != Bound {
				t.Errorf("trial %d, budget %d: %s %d hits beats OPT %d", trial, budget, p, got[p].Hits, got[OPT].Hits)
			}
			if got[p].Hits > got[Bound].Hits {
				t.Errorf("trial %d: %s %d hits beats the bound %d", trial, p, got[p].Hits, got[Bound].Hits)
			}
		}
		all := hits(t, tr, int64(objects))
		for _, p := range Policies {
			if all[p].Hits != all[Bound].Hits {
				t.Errorf("trial %d, room for all: %s %d hits, bound %d", trial, p, all[p].Hits, all[Bound].Hits)
			}
		}
	}
}

func TestNextUses(t *testing.T) {
	got := NextUses([]int32{0, 1, 0, 2, 1, 0}, 3)
	if want := []int{2, 4, 5, Never, Never, Never}; !slices.Equal(got, want) {
		t.Errorf("NextUses = %v, want %v", got, want)
	}
}

func TestBadInput(t *testing.T) {
	if _, err := Simulate(Trace{Keys: []int32{1}, Sizes: []int64{1}}, LRU, 1); err == nil {
		t.Error("key without a size accepted")
	}
	if _, err := Simulate(Trace{}, "MRU", 1); err == nil {
		t.Error("unknown policy accepted")
	}
	if _, err := Simulate(Trace{}, LRU, -1); err == nil {
		t.Error("negative budget accepted")
	}
}

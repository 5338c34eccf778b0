package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/internal/s3test"
)

// The fleet tests run three iiif-proxy processes over one TilePath, sharing
// one MinIO bucket as their shared render tier (SharedCache).

// fleetStats is what the fleet tests read of a node's /stats.
type fleetStats struct {
	Renderer struct{ Renders, Passthrough, Failures uint64 }
	Shared   struct {
		Hits, Misses, Writes, Drops, Errors, Rejected, LeasesWon, LeaseWaits, WaitHits uint64
		Breaker                                                                        string
		Lifecycle                                                                      bool
	}
}

func (c *child) stats(t *testing.T) fleetStats {
	t.Helper()
	resp, err := http.Get("http://" + c.admin + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s fleetStats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// renders is the node's render work so far: decoded renders, tiles passed
// through, and failures.
func (s fleetStats) renders() uint64 {
	return s.Renderer.Renders + s.Renderer.Passthrough + s.Renderer.Failures
}

type fleetNode struct {
	*child
	client *http.Client
}

func (n fleetNode) get(t *testing.T, path string) (int, []byte, string) {
	t.Helper()
	code, body, how, err := fetch(n.client, "http://"+n.addr+path)
	if err != nil {
		t.Fatal(err)
	}
	return code, body, how
}

// settle waits (bounded) until the node has written (or dropped) n entries
// to the shared tier.
func (n fleetNode) settle(t *testing.T, writes uint64) {
	t.Helper()
	for i := 0; i < 200; i++ {
		s := n.stats(t).Shared
		if s.Writes+s.Drops >= writes {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("the node did not write %d entries to the shared tier: %+v", writes, n.stats(t).Shared)
}

func startFleet(t *testing.T, n int) (*s3test.Server, []fleetNode) {
	s := s3test.Start(t)
	bucket := s.Bucket("")
	dir := samplesDir(t)
	env := append(s.Env(), "RAIS_TILEPATH="+dir, "RAIS_SHAREDCACHE=s3://"+bucket+"/fleet",
		"RAIS_TIERS_TILE_REVALIDATE=2s", "RAIS_TIERS_THUMBNAIL_REVALIDATE=2s", "RAIS_SHAREDTIMEOUT=1s")
	var nodes []fleetNode
	for range n {
		nodes = append(nodes, fleetNode{start(t, env...), &http.Client{Timeout: 30 * time.Second}})
	}
	return s, nodes
}

// TestFleetSharesRenders: a tile rendered on A is served by B and C from the
// shared tier without rendering; a purge on A reaches B within its
// revalidation age; a stampede of 200 requests over the three nodes renders
// once.
func TestFleetSharesRenders(t *testing.T) {
	_, nodes := startFleet(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	tile := "/iiif/3/page.tif/512,512,512,512/256,/0/default.jpg"

	code, body, how := a.get(t, tile)
	if code != http.StatusOK || how != "MISS" {
		t.Fatalf("A: %d %s", code, how)
	}
	a.settle(t, 1)
	for _, n := range []fleetNode{b, c} {
		code, got, how := n.get(t, tile)
		if code != http.StatusOK || how != "SHARED" || !bytes.Equal(got, body) {
			t.Fatalf("other node: %d %s, same bytes %v; want SHARED", code, how, bytes.Equal(got, body))
		}
		if r := n.stats(t).renders(); r != 0 {
			t.Fatalf("a node that got a shared hit rendered %d times", r)
		}
		if _, _, how := n.get(t, tile); how != "HIT" {
			t.Fatalf("again: %s, want HIT (kept locally)", how)
		}
	}

	// info.json is shared without its base: each node's document names
	// that node.
	info := "/iiif/3/pattern.tif/info.json"
	if code, _, how := a.get(t, info); code != http.StatusOK || how != "MISS" {
		t.Fatalf("A info.json: %d %s", code, how)
	}
	a.settle(t, 2)
	code, doc, how := b.get(t, info)
	if code != http.StatusOK || how != "SHARED" || !bytes.Contains(doc, []byte(`"id": "http://`+b.addr+`/iiif/3/pattern.tif"`)) &&
		!bytes.Contains(doc, []byte(`"id":"http://`+b.addr+`/iiif/3/pattern.tif"`)) {
		t.Fatalf("B info.json: %d %s\n%s", code, how, doc)
	}

	t.Run("purge", func(t *testing.T) {
		resp, err := http.DefaultClient.Do(mustRequest(t, http.MethodDelete, "http://"+a.admin+"/cache/ids/page.tif"))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("purge on A: %v %v", resp, err)
		}
		resp.Body.Close()
		purged := time.Now()
		before := b.stats(t).renders()
		// B serves its own copy until it revalidates (its age past 2 s,
		// with a generation read at most 0.5 s old: within 2.5 s), then
		// renders.
		for {
			_, _, how := b.get(t, tile)
			if how == "MISS" {
				break
			}
			if how != "HIT" && how != "REVALIDATED" {
				t.Fatalf("B after the purge: %s", how)
			}
			if time.Since(purged) > 2500*time.Millisecond+2500*time.Millisecond { // the promise, and slack for a loaded machine
				t.Fatalf("B still serves its copy %v after the purge (Revalidate 2s)", time.Since(purged))
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got := b.stats(t).renders() - before; got != 1 {
			t.Fatalf("B rendered %d times after the purge, want 1", got)
		}
		t.Logf("B honoured the purge after %v", time.Since(purged).Round(10*time.Millisecond))
	})

	t.Run("stampede", func(t *testing.T) {
		const n = 200
		url := "/iiif/3/page-plain.jpg/full/900,/0/default.jpg"
		var before uint64
		for _, nd := range nodes {
			before += nd.stats(t).renders()
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		hows := map[string]int{}
		bodies := map[string]int{}
		start := make(chan struct{})
		for i := range n {
			nd := nodes[i%len(nodes)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				code, body, how, err := fetch(nd.client, "http://"+nd.addr+url)
				mu.Lock()
				defer mu.Unlock()
				if err != nil || code != http.StatusOK {
					hows[fmt.Sprintf("error %d %v", code, err)]++
					return
				}
				hows[how]++
				bodies[string(ETagOf(body))]++
			}()
		}
		close(start)
		wg.Wait()
		var after uint64
		for _, nd := range nodes {
			after += nd.stats(t).renders()
		}
		t.Logf("200 requests over 3 nodes: %d render(s); X-Cache %v", after-before, hows)
		if after-before != 1 || len(bodies) != 1 {
			t.Fatalf("%d renders (want 1), %d distinct bodies; X-Cache %v", after-before, len(bodies), hows)
		}
	})
}

// ETagOf is a short digest of a body, to count distinct bodies.
func ETagOf(b []byte) []byte {
	var h uint64 = 14695981039346656037
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return fmt.Appendf(nil, "%016x", h)
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestFleetSurvivesStoreOutage: with MinIO stopped mid-run, every node
// keeps serving (its local tiers and its own renders), its breaker opens
// and /metrics says so; when MinIO is back, the nodes use it again.
func TestFleetSurvivesStoreOutage(t *testing.T) {
	s, nodes := startFleet(t, 2)
	a, b := nodes[0], nodes[1]
	tile := func(i int) string { return fmt.Sprintf("/iiif/3/page.tif/%d,0,256,256/256,/0/default.jpg", i*256) }
	a.get(t, tile(0))
	a.settle(t, 1)
	s.Stop()

	start := time.Now()
	if _, _, how := a.get(t, tile(0)); how != "HIT" {
		t.Fatalf("A's own copy with the store down: %s", how)
	}
	for i := 1; i <= 6; i++ {
		for _, n := range nodes {
			code, _, how := n.get(t, tile(i))
			if code != http.StatusOK || how != "MISS" {
				t.Fatalf("tile %d with the store down: %d %s, want a render", i, code, how)
			}
		}
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("13 requests with the store down took %v", d)
	}
	for _, n := range nodes {
		st := n.stats(t).Shared
		if st.Breaker == "closed" || st.Errors == 0 || st.Rejected == 0 {
			t.Fatalf("shared stats with the store down: %+v, want the breaker open", st)
		}
	}
	// The worst case of a stampede: with the store down each node renders
	// once (its own requests still collapse), N renders for N nodes.
	before := a.stats(t).renders() + b.stats(t).renders()
	var wg sync.WaitGroup
	for i := range 60 {
		n := nodes[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, _, err := fetch(n.client, "http://"+n.addr+"/iiif/3/page-plain.jpg/full/700,/0/default.jpg")
			if err != nil || code != http.StatusOK {
				t.Errorf("stampede with the store down: %d %v", code, err)
			}
		}()
	}
	wg.Wait()
	if got := a.stats(t).renders() + b.stats(t).renders() - before; got != 2 {
		t.Fatalf("a stampede over 2 nodes with the store down rendered %d times, want 2 (one per node)", got)
	}

	resp, err := http.Get("http://" + b.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), "iiif_shared_breaker_state 1") && !strings.Contains(string(m), "iiif_shared_breaker_state 2") {
		t.Fatalf("metrics do not show the breaker open:\n%s", grepLines(string(m), "iiif_shared"))
	}

	s.Restart()
	// Requests past the breaker's backoff probe the store; the first that
	// finds it closes the breaker (backoff 1s doubling, at most 30s).
	deadline := time.Now().Add(45 * time.Second)
	for i := 100; ; i++ {
		a.get(t, tile(i%40))
		b.get(t, tile(i%40))
		if a.stats(t).Shared.Breaker == "closed" && b.stats(t).Shared.Breaker == "closed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("breakers not closed 45s after the store came back: %+v %+v", a.stats(t).Shared, b.stats(t).Shared)
		}
		time.Sleep(200 * time.Millisecond)
	}
	fresh := "/iiif/3/page.tif/0,1024,512,512/256,/0/default.jpg"
	a.get(t, fresh)
	w := a.stats(t).Shared.Writes
	a.settle(t, w)
	for i := 0; i < 100; i++ {
		if _, _, how := b.get(t, fresh); how == "SHARED" {
			return
		}
		time.Sleep(50 * time.Millisecond)
		b.clearTile(t)
	}
	t.Fatalf("B does not get A's render after the store came back: %+v", b.stats(t).Shared)
}

// clearTile purges the node's local tile tier (not the shared one).
func (n fleetNode) clearTile(t *testing.T) {
	t.Helper()
	resp, err := http.DefaultClient.Do(mustRequest(t, http.MethodDelete, "http://"+n.admin+"/cache/tiers/tile"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

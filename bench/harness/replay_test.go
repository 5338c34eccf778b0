package harness

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/bench/harness/trace"
)

func TestReplayRecordsInTraceOrder(t *testing.T) {
	// A cache in a test server: MISS the first time a path is asked for,
	// HIT after; the body is as long as the path.
	var mu sync.Mutex // protects seen
	seen := map[string]bool{}
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hit := seen[r.URL.Path]
		seen[r.URL.Path] = true
		mu.Unlock()
		if hit {
			w.Header().Set("X-Cache", "HIT")
		} else {
			w.Header().Set("X-Cache", "MISS")
		}
		w.Header().Set("X-Cache-Tier", "tile")
		if strings.Contains(r.URL.Path, "missing") {
			w.WriteHeader(http.StatusNotFound)
		}
		w.Write([]byte(r.URL.Path))
	})
	s.armed.Store(true)
	var reqs []trace.Request
	for i := range 100 {
		reqs = append(reqs, trace.Request{Path: fmt.Sprintf("a/%d,0,256,256/256,256/0/default.jpg", (i*7)%20),
			Session: fmt.Sprintf("u%d", i%3)})
	}
	reqs = append(reqs, trace.Request{Path: "missing/info.json"})
	start := time.Now()
	recs, err := Replay(context.Background(), ReplayConfig{Base: s.URL + "/iiif/3/", Rate: 500}, reqs)
	if err != nil {
		t.Fatal(err)
	}
	// 101 requests due every 2 ms: the last one is due at 200 ms.
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("replay took %v at 500/s, want ≥ 200 ms", el)
	}
	if len(recs) != len(reqs) {
		t.Fatalf("%d records for %d requests", len(recs), len(reqs))
	}
	first := map[string]bool{}
	for i, r := range recs {
		q := reqs[i]
		want := "HIT"
		if !first[q.Path] {
			want = "MISS"
		}
		first[q.Path] = true
		if r.Path != q.Path || r.Session != q.Session || r.Cache != want || r.Tier != "tile" ||
			r.Bytes != int64(len("/iiif/3/"+q.Path)) || r.Err != "" {
			t.Fatalf("record %d = %+v, want %s of %s", i, r, want, q.Path)
		}
	}
	if recs[100].Status != http.StatusNotFound || recs[0].Status != http.StatusOK {
		t.Errorf("statuses %d, %d", recs[0].Status, recs[100].Status)
	}
	sum := trace.Summarize(recs)
	// 100 tile requests over 20 paths: 80 hits; the 404 counts as a miss.
	if tile := sum[1]; tile.Tier != "tile" || tile.Requests != 101 || tile.Hits != 80 || tile.Non2xx != 1 {
		t.Errorf("tile summary %+v", tile)
	}

	// As fast as four connections go: every request, every record.
	recs, err = Replay(context.Background(), ReplayConfig{Base: s.URL + "/iiif/3", Concurrency: 4}, reqs)
	if err != nil || len(recs) != len(reqs) {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	for i, r := range recs {
		if r.Path != reqs[i].Path || r.Cache != "HIT" {
			t.Fatalf("second replay, record %d = %+v", i, r)
		}
	}
}

func TestReplayStopsOnCancel(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	s.armed.Store(true)
	reqs := make([]trace.Request, 1000)
	for i := range reqs {
		reqs[i] = trace.Request{Path: "a/info.json"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	// 1000 requests at 100/s would take 10 s.
	recs, err := Replay(ctx, ReplayConfig{Base: s.URL, Rate: 100}, reqs)
	if err == nil || len(recs) > 20 || len(recs) == 0 {
		t.Errorf("cancelled after 100 ms: %d records, %v", len(recs), err)
	}
	if _, err := Replay(context.Background(), ReplayConfig{Rate: -1}, reqs); err == nil ||
		!strings.Contains(err.Error(), "base") || !strings.Contains(err.Error(), "rate") {
		t.Errorf("bad config: %v", err)
	}
}

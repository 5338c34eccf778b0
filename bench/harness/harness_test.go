package harness

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/bench/harness/workload"
	"github.com/iiif-proxy/iiif-proxy/internal/iiif"
)

const info3 = `{"@context":"http://iiif.io/api/image/3/context.json","id":"http://x/iiif/3/a","type":"ImageService3",
"protocol":"http://iiif.io/api/image","profile":"level2","width":1000,"height":700,
"tiles":[{"width":256,"height":256,"scaleFactors":[1,2,4]}]}`

// server is an in-test IIIF server on 127.0.0.1: info.json always answers
// info3 with 200; once armed, every request goes to handle instead.
type server struct {
	*httptest.Server
	armed  atomic.Bool
	handle http.HandlerFunc
}

func newServer(t *testing.T, handle http.HandlerFunc) *server {
	t.Helper()
	s := &server{handle: handle}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.armed.Load() {
			s.handle(w, r)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/info.json") {
			w.Write([]byte(info3))
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// target discovers identifier "a" at s and arms it.
func (s *server) target(t *testing.T, name string) *Target {
	t.Helper()
	tg := &Target{Name: name, Bases: []string{s.URL + "/iiif/3"}}
	if dropped, err := Discover(context.Background(), []*Target{tg}, []string{"a"}, 5*time.Second); err != nil || len(dropped) > 0 {
		t.Fatalf("Discover: %v %v", dropped, err)
	}
	s.armed.Store(true)
	return tg
}

func run(t *testing.T, cfg Config, targets ...*Target) *Result {
	t.Helper()
	res, err := Run(context.Background(), cfg, targets)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func ns(n int64) time.Duration { return time.Duration(n) }

func TestPercentilesMatchInjectedLatency(t *testing.T) {
	// Nine responses in ten take 2 ms, the tenth 20 ms.
	var n atomic.Int64
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		d := 2 * time.Millisecond
		if n.Add(1)%10 == 0 {
			d = 20 * time.Millisecond
		}
		time.Sleep(d)
		w.Write([]byte(info3))
	})
	tg := s.target(t, "A")
	res := run(t, Config{Workload: workload.Spec{Name: workload.Info}, Concurrency: 8, Requests: 1000}, tg)
	all := res.Targets[0].All
	if all.Requests != 1000 || all.Status[200] != 1000 {
		t.Fatalf("requests %d, status %v; want 1000 × 200", all.Requests, all.Status)
	}
	h := all.Latency
	p50, p99, max := ns(h.ValueAtQuantile(50)), ns(h.ValueAtQuantile(99)), ns(h.Max())
	t.Logf("p50 %v p99 %v max %v", p50, p99, max)
	// Sleeps never return early; the upper bounds leave room for scheduling.
	if p50 < 2*time.Millisecond || p50 > 6*time.Millisecond {
		t.Errorf("p50 = %v, want about 2 ms", p50)
	}
	if p99 < 20*time.Millisecond || p99 > 40*time.Millisecond {
		t.Errorf("p99 = %v, want about 20 ms", p99)
	}
	if max < 20*time.Millisecond || max > 200*time.Millisecond {
		t.Errorf("max = %v, want about 20 ms", max)
	}
	if p80 := ns(h.ValueAtQuantile(80)); p80 > 6*time.Millisecond {
		t.Errorf("p80 = %v, want about 2 ms", p80)
	}
}

// stallServer answers at once, except that the 100th request freezes it:
// that request and every one arriving in the next 500 ms wait until then.
func stallServer(t *testing.T) *server {
	var n atomic.Int64
	var until atomic.Int64 // unix nanos the freeze ends
	return newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 100 {
			until.Store(time.Now().Add(500 * time.Millisecond).UnixNano())
		}
		if d := time.Until(time.Unix(0, until.Load())); d > 0 {
			time.Sleep(d)
		}
		w.Write([]byte("ok"))
	})
}

func TestOpenLoopSeesStall(t *testing.T) {
	s := stallServer(t)
	tg := s.target(t, "A")
	// 400 requests/s for 1.5 s: the ~200 due during the freeze wait up to
	// 500 ms for one of the 4 connections, and that wait counts.
	res := run(t, Config{Workload: workload.Spec{Name: workload.Info}, Rate: 400, Concurrency: 4,
		Duration: 1500 * time.Millisecond}, tg)
	all := res.Targets[0].All
	h := all.Latency
	p90, p99, max := ns(h.ValueAtQuantile(90)), ns(h.ValueAtQuantile(99)), ns(h.Max())
	svc90 := ns(all.Service.ValueAtQuantile(90))
	t.Logf("open: %d requests, p90 %v p99 %v max %v; service p90 %v", all.Requests, p90, p99, max, svc90)
	if secs := res.Targets[0].Seconds; all.Requests != 600 || secs < 1.5 || secs > 1.6 {
		t.Errorf("%d requests in %vs at 400/s for 1.5 s, want 600", all.Requests, res.Targets[0].Seconds)
	}
	if p90 < 100*time.Millisecond || p99 < 400*time.Millisecond || max < 450*time.Millisecond || max > 900*time.Millisecond {
		t.Errorf("open loop p90 %v p99 %v max %v: the 500 ms stall is not in the percentiles", p90, p99, max)
	}
	// Measured from the actual send only the 4 requests in flight saw it:
	// the coordinated omission the open loop corrects.
	if svc90 > 50*time.Millisecond {
		t.Errorf("service-time p90 %v, want small", svc90)
	}

	// The same stall in closed loop is one slow request among thousands.
	s = stallServer(t)
	tg = s.target(t, "A")
	res = run(t, Config{Workload: workload.Spec{Name: workload.Info}, Concurrency: 1, Duration: time.Second}, tg)
	h = res.Targets[0].All.Latency
	t.Logf("closed: %d requests, p99 %v max %v", h.TotalCount(), ns(h.ValueAtQuantile(99)), ns(h.Max()))
	if p99 := ns(h.ValueAtQuantile(99)); p99 > 50*time.Millisecond || ns(h.Max()) < 450*time.Millisecond {
		t.Errorf("closed loop p99 %v max %v: want p99 small, max the stall", p99, ns(h.Max()))
	}
}

func TestStatusAndCacheCounting(t *testing.T) {
	var n atomic.Int64
	body := strings.Repeat("x", 100)
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		i := (n.Add(1) - 1) % 10
		h := w.Header()
		switch {
		case i < 6:
			h.Set("X-Cache", "HIT")
			h.Set("X-Cache-Tier", "tile")
		case i == 6:
			h.Set("X-Cache", "MISS from varnish")
			h.Set("X-Cache-Tier", "tile")
		case i == 7:
			w.WriteHeader(http.StatusNotFound) // no headers: filed by shape, info
		case i == 8:
			h.Set("X-Cache", "bypass")
			h.Set("X-Cache-Tier", "other")
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			h.Set("X-Cache", "COLLAPSED")
			h.Set("X-Cache-Tier", "tile")
		}
		w.Write([]byte(body))
	})
	tg := s.target(t, "A")
	res := run(t, Config{Workload: workload.Spec{Name: workload.Info}, Concurrency: 3, Requests: 1000}, tg)
	got := map[string]*Stats{}
	for _, ts := range res.Targets[0].Tiers {
		got[ts.Tier] = ts.Stats
	}
	if names := slices.Collect(func(yield func(string) bool) {
		for _, ts := range res.Targets[0].Tiers {
			yield(ts.Tier)
		}
	}); !slices.Equal(names, []string{"tile", "info", "other"}) {
		t.Fatalf("tiers %v, want tile, info, other in that order", names)
	}
	tile, info, other := got["tile"], got["info"], got["other"]
	if tile.Requests != 800 || tile.Status[200] != 800 || tile.Bytes != 80000 {
		t.Errorf("tile: %d requests, status %v, %d bytes", tile.Requests, tile.Status, tile.Bytes)
	}
	if want := map[string]int64{"HIT": 600, "MISS": 100, "COLLAPSED": 100}; !mapsEqual(tile.Cache, want) {
		t.Errorf("tile X-Cache %v, want %v", tile.Cache, want)
	}
	if r, ok := tile.HitRatio(); !ok || r != 0.75 {
		t.Errorf("tile hit ratio %v %v, want 0.75", r, ok)
	}
	if tile.Renders() != 100 {
		t.Errorf("tile renders %d, want 100", tile.Renders())
	}
	if info.Requests != 100 || info.Status[404] != 100 || len(info.Cache) != 0 {
		t.Errorf("info: %d requests, status %v, cache %v", info.Requests, info.Status, info.Cache)
	}
	if _, ok := info.HitRatio(); ok {
		t.Error("info has a hit ratio without X-Cache")
	}
	if other.Status[503] != 100 || other.Cache["BYPASS"] != 100 {
		t.Errorf("other: status %v, cache %v", other.Status, other.Cache)
	}
	if all := res.Targets[0].All; all.Requests != 1000 || all.Errors != 0 {
		t.Errorf("all: %d requests %d errors", all.Requests, all.Errors)
	}
}

func mapsEqual[K comparable](a, b map[K]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestTransportErrorsCounted(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	tg := &Target{Name: "A", Bases: []string{"http://" + addr}, corpora: []workload.Corpus{{
		Base: "http://" + addr, Images: []iiif.Image{{ID: "a", Version: iiif.V3, Width: 10, Height: 10}}}}}
	res := run(t, Config{Workload: workload.Spec{Name: workload.Info}, Concurrency: 2, Requests: 20}, tg)
	all := res.Targets[0].All
	if all.Errors != 20 || all.Requests != 0 || len(all.ErrorKinds) == 0 {
		t.Errorf("errors %d (%v), requests %d; want 20 errors", all.Errors, all.ErrorKinds, all.Requests)
	}
}

func TestStampedeBarrier(t *testing.T) {
	const clients, rounds = 50, 4
	type round struct {
		arrivals []time.Time
		release  chan struct{} // closed when every client has arrived
		done     chan struct{} // closed when the leader's "render" is done
	}
	var mu sync.Mutex // protects byURL, order
	byURL := map[string]*round{}
	var order []string
	var renders atomic.Int64
	var timeouts atomic.Int64
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			fmt.Fprintf(w, "# TYPE iiif_renders_total counter\niiif_renders_total{tier=\"tile\"} %d\niiif_tile_passthrough_total 0\n", renders.Load())
			return
		}
		if strings.HasSuffix(r.URL.Path, "/info.json") {
			w.Write([]byte(info3))
			return
		}
		key := r.URL.RequestURI()
		mu.Lock()
		rd := byURL[key]
		if rd == nil {
			rd = &round{release: make(chan struct{}), done: make(chan struct{})}
			byURL[key] = rd
			order = append(order, key)
		}
		rd.arrivals = append(rd.arrivals, time.Now())
		leader := len(rd.arrivals) == 1
		if len(rd.arrivals) == clients {
			close(rd.release)
		}
		mu.Unlock()
		// Count, don't sleep: hold every request until all have arrived, which
		// only happens if the harness really has them all in flight at once.
		select {
		case <-rd.release:
		case <-time.After(5 * time.Second):
			timeouts.Add(1)
		}
		if leader {
			time.Sleep(30 * time.Millisecond) // the render
			renders.Add(1)
			w.Header().Set("X-Cache", "MISS")
			close(rd.done)
		} else {
			<-rd.done
			w.Header().Set("X-Cache", "COLLAPSED")
		}
		w.Header().Set("X-Cache-Tier", "tile")
		w.Write([]byte("tile"))
	})
	tg := s.target(t, "A")
	tg.Metrics = s.URL + "/metrics"
	res := run(t, Config{Workload: workload.Spec{Name: workload.Stampede}, Concurrency: clients, Rounds: rounds}, tg)
	if timeouts.Load() > 0 {
		t.Fatalf("%d requests waited 5 s for the others: the barrier did not hold", timeouts.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != rounds {
		t.Fatalf("%d distinct URLs, want one per round (%d)", len(order), rounds)
	}
	for _, k := range order {
		rd := byURL[k]
		if len(rd.arrivals) != clients {
			t.Errorf("%s: %d arrivals, want %d", k, len(rd.arrivals), clients)
		}
		first, last := rd.arrivals[0], rd.arrivals[0]
		for _, a := range rd.arrivals {
			first, last = minTime(first, a), maxTime(last, a)
		}
		spread := last.Sub(first)
		if spread > 250*time.Millisecond {
			t.Errorf("%s: arrivals spread over %v", k, spread)
		}
	}
	sr := res.Stampede[0]
	if len(sr.Rounds) != rounds {
		t.Fatalf("%d rounds reported", len(sr.Rounds))
	}
	for i, rd := range sr.Rounds {
		if rd.Renders != 1 || !rd.CacheHeader || rd.MetricRenders != 1 || rd.Cache["COLLAPSED"] != clients-1 {
			t.Errorf("round %d: renders %d (X-Cache %v), %v by metrics; want 1", i, rd.Renders, rd.Cache, rd.MetricRenders)
		}
		if rd.Leader < 30*time.Millisecond || rd.FollowerP50 < 30*time.Millisecond {
			t.Errorf("round %d: leader %v, followers p50 %v; want ≥ the 30 ms render", i, rd.Leader, rd.FollowerP50)
		}
	}
	if n := sr.Followers.TotalCount(); n != rounds*(clients-1) {
		t.Errorf("%d follower samples, want %d", n, rounds*(clients-1))
	}
	if all := res.Targets[0].All; all.Requests != rounds*clients {
		t.Errorf("%d requests in the table, want %d", all.Requests, rounds*clients)
	}
}

func TestCompareInterleaves(t *testing.T) {
	var mu sync.Mutex // protects log
	var log []string
	mk := func(name string, delay time.Duration) *server {
		return newServer(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			if len(log) == 0 || log[len(log)-1] != name {
				log = append(log, name)
			}
			mu.Unlock()
			time.Sleep(delay)
			w.Write([]byte(info3))
		})
	}
	a, b := mk("A", 0), mk("B", 3*time.Millisecond)
	ta, tb := a.target(t, "A"), b.target(t, "B")
	mu.Lock()
	log = nil
	mu.Unlock()
	res := run(t, Config{Workload: workload.Spec{Name: workload.Info}, Concurrency: 2, Duration: 600 * time.Millisecond,
		Slice: 100 * time.Millisecond, Warmup: 50 * time.Millisecond}, ta, tb)
	mu.Lock()
	runs := len(log)
	mu.Unlock()
	// Warm-up A, B; then six slices each, alternating: 14 runs.
	if runs < 12 || runs > 16 {
		t.Errorf("%d alternations between the servers, want about 14", runs)
	}
	for _, tr := range res.Targets {
		if tr.Seconds < 0.55 || tr.Seconds > 0.9 {
			t.Errorf("%s measured for %.2fs, want 0.6", tr.Name, tr.Seconds)
		}
	}
	pa, pb := ns(res.Targets[0].All.Latency.ValueAtQuantile(50)), ns(res.Targets[1].All.Latency.ValueAtQuantile(50))
	if pa >= 3*time.Millisecond || pb < 3*time.Millisecond {
		t.Errorf("p50 A %v, B %v; want A fast, B ≥ 3 ms", pa, pb)
	}
}

func TestSumMetrics(t *testing.T) {
	text := `# HELP iiif_renders_total renders
# TYPE iiif_renders_total counter
iiif_renders_total{tier="tile"} 12
iiif_renders_total{tier="thumbnail",x="a}b"} 3
iiif_tile_passthrough_total 4 1700000000
iiif_renders_totally 100
`
	got, err := sumMetrics(strings.NewReader(text), RenderMetrics)
	if err != nil || got != 19 {
		t.Errorf("sumMetrics = %v, %v; want 19", got, err)
	}
	if _, err := sumMetrics(strings.NewReader("other 1\n"), RenderMetrics); err == nil {
		t.Error("no render metrics: no error")
	}
}

func TestCacheWord(t *testing.T) {
	for in, want := range map[string]string{"HIT": "HIT", "hit from example.org": "HIT", " MISS": "MISS",
		"": "", "TCP_HIT": "TCP_HIT", "Hit, Miss": "HIT"} {
		if got := cacheWord([]byte(in)); got != want {
			t.Errorf("cacheWord(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClosedLoopRate(t *testing.T) {
	// Four users and 50 ms a response make 80 requests a second; the slice
	// lasts until the last response, so in-flight requests do not skew it.
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		w.Write([]byte("ok"))
	})
	tg := s.target(t, "A")
	res := run(t, Config{Workload: workload.Spec{Name: workload.Info}, Concurrency: 4, Duration: 500 * time.Millisecond}, tg)
	tr := res.Targets[0]
	rate := float64(tr.All.Requests) / tr.Seconds
	t.Logf("%d requests in %.3fs: %.1f/s", tr.All.Requests, tr.Seconds, rate)
	if rate < 70 || rate > 80.5 || tr.Seconds < 0.5 || tr.Seconds > 0.6 {
		t.Errorf("%.1f requests/s over %.3fs, want 80 over 0.5–0.6", rate, tr.Seconds)
	}
}

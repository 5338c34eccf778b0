package proxy

// Tests of the proxy over the fake renderer: they build and run without cgo
// (CGO_ENABLED=0 go test ./proxy/...), and count renders instead of timing.

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/cache/cacheconf"
	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/renderer/fake"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/store"
)

type fakeProxy struct {
	base string // http://127.0.0.1:port/iiif/3/
	p    *Proxy
	r    *fake.Renderer
}

// serveFake starts a proxy over a fake renderer with sources "a" (1000×800)
// and "b/c" (300×200); tiers on disk when cached. mod may change cfg.
func serveFake(t *testing.T, cached bool, mod func(*Config)) *fakeProxy {
	t.Helper()
	return serveFakeOver(t, fake.New(), nil, cached, mod)
}

// serveFakeOver is serveFake over r, served as rr when not nil (a wrapper
// of r such as fake.Forwarding).
func serveFakeOver(t *testing.T, r *fake.Renderer, rr renderer.Renderer, cached bool, mod func(*Config)) *fakeProxy {
	t.Helper()
	r.Set("a", 1000, 800)
	r.Set("b/c", 300, 200)
	if rr == nil {
		rr = r
	}
	cfg := Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), SourceCacheLen: 100}
	for tr := range rules.NumTiers {
		if !cached {
			break
		}
		s, err := store.Open(store.Config{Dir: filepath.Join(t.TempDir(), tr.String())})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		cfg.Tiers[tr] = TierConfig{Store: s, MemLen: 10, Policy: cacheconf.Policy{CacheControl: "public"}}
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg, rr)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveLoopback(t, p, func() {
		fakeClient.CloseIdleConnections() // or Shutdown waits for them to time out
	}, nil)
	return &fakeProxy{base: "http://" + addr + "/iiif/3/", p: p, r: r}
}

// serveLoopback serves p on a loopback port until the test ends and returns
// the address. At cleanup, before (if not nil) runs before the server shuts
// down, after (if not nil) once it has, and the cache's background work is
// waited for.
func serveLoopback(t *testing.T, p *Proxy, before, after func()) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := p.Server()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if before != nil {
			before()
		}
		srv.Shutdown()
		<-done
		p.cache.Wait()
		if after != nil {
			after()
		}
	})
	return ln.Addr().String()
}

type fakeResp struct {
	status int
	header http.Header
	body   string
}

var fakeClient = &http.Client{Timeout: 20 * time.Second}

func fget(t *testing.T, url string, hdr ...string) fakeResp {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := fakeClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fakeResp{resp.StatusCode, resp.Header, string(b)}
}

func TestFakeBadURLsNeverReachTheRenderer(t *testing.T) {
	fp := serveFake(t, true, nil)
	for _, path := range []string{"a/0,0,0,0/max/0/default.jpg", "a/full/max/0/default.bmp", "a/full/max/45x/default.jpg", "a/nope"} {
		if r := fget(t, fp.base+path); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", path, r.status)
		}
	}
	if n := fp.r.Infos.Load() + fp.r.Renders.Load(); n != 0 {
		t.Errorf("bad URLs cost %d renderer calls", n)
	}
	if r := fget(t, fp.base+"missing/full/max/0/default.jpg"); r.status != http.StatusNotFound {
		t.Errorf("unknown image: %d", r.status)
	}
}

func TestFakeHitsAndOneETagFormat(t *testing.T) {
	cached := serveFake(t, true, nil)
	bypass := serveFake(t, false, nil)
	path := "b%2Fc/0,0,256,200/256,/0/default.jpg"
	miss := fget(t, cached.base+path)
	hit := fget(t, cached.base+path)
	un := fget(t, bypass.base+path)
	if miss.header.Get("X-Cache") != xMiss || hit.header.Get("X-Cache") != xHit || un.header.Get("X-Cache") != xBypass {
		t.Fatalf("X-Cache %s, %s, %s", miss.header.Get("X-Cache"), hit.header.Get("X-Cache"), un.header.Get("X-Cache"))
	}
	if miss.body != un.body || !strings.HasPrefix(miss.body, "fake b/c v1 ") {
		t.Fatalf("bodies %q and %q", miss.body, un.body)
	}
	if tag := miss.header.Get("ETag"); tag != hit.header.Get("ETag") || tag != un.header.Get("ETag") || len(tag) != 18 {
		t.Errorf("ETags %s (miss) %s (hit) %s (uncached): one format, one value", tag, hit.header.Get("ETag"), un.header.Get("ETag"))
	}
	if r := fget(t, cached.base+path, "If-None-Match", miss.header.Get("ETag")); r.status != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", r.status)
	}
}

func TestFakeStampedeRendersOnce(t *testing.T) {
	fp := serveFake(t, true, nil)
	release := fp.r.Hold()
	const n = 100
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for range n {
		wg.Go(func() { statuses <- fget(t, fp.base+"a/0,0,256,256/256,/0/default.jpg").status })
	}
	for fp.r.Started.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	release()
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Fatalf("status %d", s)
		}
	}
	if got := fp.r.Renders.Load(); got != 1 {
		t.Errorf("%d renders for %d concurrent requests, want 1", got, n)
	}
	if got := fp.r.Infos.Load(); got != 1 {
		t.Errorf("%d Info calls for %d concurrent requests, want 1", got, n)
	}
}

func TestFakeUpstreamErrorsMapToGatewayStatuses(t *testing.T) {
	fp := serveFake(t, true, nil)
	for _, tc := range []struct {
		err    error
		status int
		body   string
	}{
		{&renderer.UnavailableError{Err: errors.New("connection refused")}, http.StatusBadGateway, ""},
		{&renderer.UnavailableError{Timeout: true, Err: errors.New("deadline")}, http.StatusGatewayTimeout, ""},
		{&renderer.UnavailableError{Status: 500, Err: errors.New("500")}, http.StatusBadGateway, ""},
		{&renderer.StatusError{Status: 403, ContentType: "text/plain", Body: []byte("go away")}, http.StatusForbidden, "go away"},
	} {
		fp.r.FailRender("a", tc.err)
		r := fget(t, fp.base+"a/full/10,/0/default.jpg")
		if r.status != tc.status || (tc.body != "" && r.body != tc.body) || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%v: %d %q, want %d", tc.err, r.status, r.body, tc.status)
		}
	}
	fp.r.FailRender("a", nil)
	if r := fget(t, fp.base+"a/full/10,/0/default.jpg"); r.status != http.StatusOK || r.header.Get("X-Cache") != xMiss {
		t.Errorf("after recovery: %d %s (an error must not have been cached)", r.status, r.header.Get("X-Cache"))
	}
}

func TestFakeStaleIfError(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	fp := serveFake(t, true, func(c *Config) {
		c.Clock = clock
		for i := range c.Tiers {
			c.Tiers[i].Revalidate = time.Minute
		}
	})
	path := fp.base + "a/0,0,256,256/256,/0/default.jpg"
	first := fget(t, path)
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	fp.r.FailInfo("a", &renderer.UnavailableError{Err: errors.New("connection refused")})
	r := fget(t, path)
	if r.status != http.StatusOK || r.header.Get("X-Cache") != xStale || r.body != first.body {
		t.Fatalf("source unreachable: %d %s, want the old entry as STALE", r.status, r.header.Get("X-Cache"))
	}
	// Nothing stale to serve: 502.
	fp.r.FailRender("a", &renderer.UnavailableError{Err: errors.New("connection refused")})
	if r := fget(t, fp.base+"a/0,0,512,512/128,/0/default.jpg"); r.status != http.StatusBadGateway {
		t.Errorf("nothing stale and the source down: %d, want 502", r.status)
	}
}

func TestReplaceIDKeepsEveryOtherByte(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"@context":"x","@id":"http://up/iiif/a","width":1,"service":{"@id":"keep"}}`,
			`{"@context":"x","@id":"NEW","width":1,"service":{"@id":"keep"}}`},
		{"{\n  \"id\" :  \"http://up/3/a\",\n  \"tiles\": [{\"id\": \"keep\"}],\n  \"x\": \"id\"\n}",
			"{\n  \"id\" :  \"NEW\",\n  \"tiles\": [{\"id\": \"keep\"}],\n  \"x\": \"id\"\n}"},
	} {
		got, err := replaceID([]byte(tc.in), "NEW")
		if err != nil || string(got) != tc.want {
			t.Errorf("replaceID(%s) = %s, %v\nwant %s", tc.in, got, err, tc.want)
		}
	}
	if _, err := replaceID([]byte(`{"width":1}`), "NEW"); err == nil {
		t.Error("a document without an id was accepted")
	}
}

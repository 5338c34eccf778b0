//go:build cgo

package proxy

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/cache/cacheconf"
	"github.com/iiif-proxy/iiif-proxy/renderer/vips"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/store"
)

// cached is a proxy with real disk tiers in a temporary directory.
type cachedProxy struct {
	base, admin string
	p           *Proxy
	r           *vips.Vips
	stores      [rules.NumTiers]*store.Tier
}

func serveCached(t *testing.T, tilePath string, revalidate time.Duration, token string) *cachedProxy {
	return serveTiers(t, tilePath, revalidate, token, true)
}

// serveTiers starts a proxy whose tiers are all cached on disk, or none.
func serveTiers(t *testing.T, tilePath string, revalidate time.Duration, token string, cached bool) *cachedProxy {
	t.Helper()
	return serveWith(t, vips.Config{TilePath: tilePath, TilePassthrough: true}, Config{}, revalidate, token, cached)
}

// serveWith starts a proxy on a renderer made with rcfg and the proxy
// settings in cfg (SourceCacheLen, and a logger if cfg has none, are filled in), whose
// tiers are all cached on disk with the given revalidation age, or none.
func serveWith(t *testing.T, rcfg vips.Config, cfg Config, revalidate time.Duration, token string, cached bool) *cachedProxy {
	t.Helper()
	r, err := vips.New(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	cp := &cachedProxy{r: r}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg.SourceCacheLen = 100
	dir := t.TempDir()
	for tr := range rules.NumTiers {
		if !cached {
			break
		}
		s, err := store.Open(store.Config{Dir: filepath.Join(dir, tr.String())})
		if err != nil {
			t.Fatal(err)
		}
		cp.stores[tr] = s
		cfg.Tiers[tr] = TierConfig{Store: s, Policy: cacheconf.Policy{Revalidate: revalidate, CacheControl: "public, max-age=" + tr.String()}}
	}
	if cached {
		cfg.Tiers[rules.TierTile].MemLen = 50
	}
	p, err := New(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	cp.p = p
	var lns []net.Listener
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
	}
	srv, adm := p.Server(), p.AdminServer(token)
	done := make(chan error, 2)
	go func() { done <- srv.Serve(lns[0]) }()
	go func() { done <- adm.Serve(lns[1]) }()
	t.Cleanup(func() {
		srv.Shutdown()
		adm.Shutdown()
		<-done
		<-done
		for _, s := range cp.stores {
			if s != nil {
				s.Close()
			}
		}
		r.Close()
	})
	cp.base = "http://" + lns[0].Addr().String() + "/iiif/3/"
	cp.admin = "http://" + lns[1].Addr().String()
	return cp
}

func (cp *cachedProxy) renders() uint64 {
	s := cp.r.Stats()
	return s.Renders + s.Passthrough
}

func TestCacheHitsETagsAndConditionalRequests(t *testing.T) {
	cp := serveCached(t, tilePath, 0, "")
	url := cp.base + "pattern.tif/256,256,256,256/256,/0/default.jpg"
	miss := get(t, url)
	if miss.status != 200 || miss.header.Get("X-Cache") != "MISS" || miss.header.Get("X-Cache-Tier") != "tile" {
		t.Fatalf("first request: %d %v", miss.status, miss.header)
	}
	checkHeader(t, miss, "Cache-Control", "public, max-age=tile")
	tag := miss.header.Get("ETag")
	if !strings.HasPrefix(tag, `"`) || len(tag) < 4 {
		t.Fatalf("ETag %q", tag)
	}
	// The same tile spelled differently shares the entry.
	hit := get(t, cp.base+"pattern.tif/256,256,256,256/256,256/0/color.jpg")
	if hit.status != 200 || hit.header.Get("X-Cache") != "HIT" || hit.header.Get("ETag") != tag || !bytes.Equal(hit.body, miss.body) {
		t.Errorf("second spelling: %d X-Cache=%s ETag=%s", hit.status, hit.header.Get("X-Cache"), hit.header.Get("ETag"))
	}
	if cp.renders() != 1 {
		t.Errorf("%d renders, want 1", cp.renders())
	}
	for name, hdr := range map[string]map[string]string{
		"If-None-Match":      {"If-None-Match": `"nope", ` + tag},
		"weak If-None-Match": {"If-None-Match": "W/" + tag},
		"If-Modified-Since":  {"If-Modified-Since": miss.header.Get("Last-Modified")},
	} {
		r := do(t, http.MethodGet, url, hdr)
		if r.status != http.StatusNotModified || len(r.body) != 0 {
			t.Errorf("%s: status %d, want 304", name, r.status)
		}
		for _, h := range []string{"ETag", "Cache-Control", "Access-Control-Allow-Origin", "Last-Modified"} {
			if r.header.Get(h) == "" {
				t.Errorf("%s: 304 lacks %s", name, h)
			}
		}
	}
	if r := do(t, http.MethodGet, url, map[string]string{"If-None-Match": `"other"`}); r.status != 200 {
		t.Errorf("a non-matching If-None-Match got %d", r.status)
	}
	// A conditional request for something not cached yet needs no render.
	before := cp.renders()
	r := do(t, http.MethodGet, cp.base+"pattern.tif/0,0,512,512/128,/0/default.jpg",
		map[string]string{"If-Modified-Since": time.Now().UTC().Format(http.TimeFormat)})
	if r.status != http.StatusNotModified || cp.renders() != before {
		t.Errorf("conditional miss: %d after %d renders", r.status, cp.renders()-before)
	}
	info := get(t, cp.base+"pattern.tif/info.json")
	info2 := get(t, cp.base+"pattern.tif/info.json")
	if info.header.Get("X-Cache") != "MISS" || info2.header.Get("X-Cache") != "HIT" || !bytes.Equal(info.body, info2.body) ||
		info2.header.Get("X-Cache-Tier") != "info" {
		t.Errorf("info.json: %s then %s", info.header.Get("X-Cache"), info2.header.Get("X-Cache"))
	}
	thumb := get(t, cp.base+"pattern.tif/full/200,/0/default.png")
	if thumb.header.Get("X-Cache-Tier") != "thumbnail" {
		t.Errorf("thumbnail tier: %s", thumb.header.Get("X-Cache-Tier"))
	}
	bad := get(t, cp.base+"pattern.tif/full/0,/0/default.jpg")
	if bad.header.Get("Cache-Control") != "no-store" || bad.header.Get("ETag") != "" {
		t.Errorf("an error carries caching headers: %v", bad.header)
	}
}

func TestConcurrentMissesCollapseIntoOneRender(t *testing.T) {
	t.Run("cached", func(t *testing.T) { testCollapse(t, true, "MISS") })
	t.Run("uncached", func(t *testing.T) { testCollapse(t, false, "BYPASS") })
}

func testCollapse(t *testing.T, cached bool, leader string) {
	cp := serveTiers(t, tilePath, 0, "", cached)
	// A big, slow render, so that all requests overlap it.
	url := cp.base + "pattern.tif/0,0,1200,900/1000,/0/default.jpg"
	const clients = 200
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: time.Minute}
	defer client.CloseIdleConnections() // or the server's shutdown waits for 200 idle connections
	start := make(chan struct{})
	var wg sync.WaitGroup
	bodies := make([][]byte, clients)
	xcache := make([]string, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := client.Get(url)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			bodies[i], _ = io.ReadAll(resp.Body)
			xcache[i] = resp.Header.Get("X-Cache")
			if resp.StatusCode != 200 {
				t.Errorf("client %d: %d", i, resp.StatusCode)
			}
		}()
	}
	close(start)
	wg.Wait()
	count := map[string]int{}
	for i := range clients {
		count[xcache[i]]++
		if !bytes.Equal(bodies[i], bodies[0]) {
			t.Fatalf("client %d got different bytes", i)
		}
	}
	t.Logf("X-Cache: %v", count)
	n := cp.renders()
	if cached {
		if n != 1 || count[leader] != 1 || count[leader]+count["COLLAPSED"]+count["HIT"] != clients {
			t.Errorf("%d renders, X-Cache counts %v; want 1 render, one %s and the rest COLLAPSED or HIT", n, count, leader)
		}
		return
	}
	// Uncached, a request that arrives after a flight has finished finds
	// nothing stored and starts another: on a loaded machine the 200
	// requests may not all overlap one render. Every render must still
	// have collapsed everything that overlapped it: each render is one
	// BYPASS, the rest COLLAPSED, and a handful of renders at most.
	if n != uint64(count[leader]) || count[leader]+count["COLLAPSED"] != clients || n < 1 || n > 5 {
		t.Errorf("%d renders, X-Cache counts %v; want each render one %s, the rest COLLAPSED, at most 5 renders", n, count, leader)
	}
}

func TestRevalidationReplacesEveryTierWhenTheSourceChanges(t *testing.T) {
	dir := t.TempDir()
	name, err := vips.Generate(filepath.Join(dir, "img"), vips.Pattern, vips.PyramidTIFF, 1024, 768, 1)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(name, old, old); err != nil {
		t.Fatal(err)
	}
	cp := serveCached(t, dir, time.Millisecond, "")
	urls := map[string]string{
		"tile":      cp.base + "img.tif/256,0,256,256/256,/0/default.jpg",
		"thumbnail": cp.base + "img.tif/full/300,/0/default.jpg",
		"info":      cp.base + "img.tif/info.json",
		"other":     cp.base + "img.tif/full/max/90/default.png",
	}
	first := map[string]response{}
	for tier, u := range urls {
		r := get(t, u)
		if r.status != 200 || r.header.Get("X-Cache") != "MISS" || r.header.Get("X-Cache-Tier") != tier {
			t.Fatalf("%s: %d %s %s", tier, r.status, r.header.Get("X-Cache"), r.header.Get("X-Cache-Tier"))
		}
		first[tier] = r
	}
	time.Sleep(2 * time.Millisecond) // let the entries pass their Revalidate age (1ms)
	for tier, u := range urls {
		r := do(t, http.MethodGet, u, map[string]string{"If-None-Match": first[tier].header.Get("ETag")})
		if r.status != http.StatusNotModified || r.header.Get("X-Cache") != "REVALIDATED" {
			t.Errorf("%s unchanged: %d %s, want 304 REVALIDATED", tier, r.status, r.header.Get("X-Cache"))
		}
	}
	renders := cp.renders()
	// Replace the image: new pixels, new modification time.
	if _, err := vips.Generate(filepath.Join(dir, "new"), vips.Scan, vips.PyramidTIFF, 1024, 768, 5); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "new.tif"), name); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	for tier, u := range urls {
		r := get(t, u)
		if r.status != 200 || r.header.Get("X-Cache") != "MISS" {
			t.Errorf("%s after the change: %d %s, want 200 MISS", tier, r.status, r.header.Get("X-Cache"))
		}
		// info.json of a same-sized image is the same document: same ETag.
		if tier != "info" && (bytes.Equal(r.body, first[tier].body) || r.header.Get("ETag") == first[tier].header.Get("ETag")) {
			t.Errorf("%s after the change: the old bytes or ETag", tier)
		}
		if r.header.Get("Last-Modified") == first[tier].header.Get("Last-Modified") {
			t.Errorf("%s: Last-Modified did not move", tier)
		}
	}
	if got := cp.renders() - renders; got < 3 {
		t.Errorf("%d fresh renders after the change, want one per image tier", got)
	}
	old304 := do(t, http.MethodGet, urls["tile"], map[string]string{"If-None-Match": first["tile"].header.Get("ETag")})
	if x := old304.header.Get("X-Cache"); old304.status != 200 || (x != "HIT" && x != "REVALIDATED") {
		t.Errorf("the old ETag after the change: %d %s, want 200 from the cache", old304.status, x)
	}
}

func TestPurgeStatsAndMetricsOnTheAdminListener(t *testing.T) {
	cp := serveCached(t, tilePath, 0, "s3cret")
	url := cp.base + "sub%20dir%2Fimg.png/full/100,/0/default.jpg"
	get(t, url)
	if r := get(t, url); r.header.Get("X-Cache") != "HIT" {
		t.Fatalf("not cached: %s", r.header.Get("X-Cache"))
	}
	auth := map[string]string{"Authorization": "Bearer s3cret"}
	if r := do(t, http.MethodDelete, cp.admin+"/cache/ids/sub%20dir%2Fimg.png", nil); r.status != http.StatusUnauthorized {
		t.Errorf("purge without the token: %d", r.status)
	}
	if r := do(t, http.MethodDelete, cp.admin+"/cache/ids/sub%20dir%2Fimg.png", map[string]string{"Authorization": "Bearer wrong"}); r.status != http.StatusUnauthorized {
		t.Errorf("purge with a wrong token: %d", r.status)
	}
	r := do(t, http.MethodDelete, cp.admin+"/cache/ids/sub%20dir%2Fimg.png", auth)
	if r.status != 200 || !strings.Contains(string(r.body), `"purged": 1`) {
		t.Errorf("purge: %d %s", r.status, r.body)
	}
	if r := get(t, url); r.header.Get("X-Cache") != "MISS" {
		t.Errorf("after purge: %s", r.header.Get("X-Cache"))
	}
	get(t, cp.base+"pattern.tif/0,0,256,256/256,/0/default.jpg")
	if r := do(t, http.MethodPost, cp.admin+"/cache/tiers/tile", auth); r.status != 200 {
		t.Errorf("purge tier: %d %s", r.status, r.body)
	}
	if r := get(t, cp.base+"pattern.tif/0,0,256,256/256,/0/default.jpg"); r.header.Get("X-Cache") != "MISS" {
		t.Errorf("after tier purge: %s", r.header.Get("X-Cache"))
	}
	stats := do(t, http.MethodGet, cp.admin+"/stats", auth)
	if stats.status != 200 || !strings.Contains(string(stats.body), `"tile"`) || !strings.Contains(string(stats.body), `"renderer"`) {
		t.Errorf("stats: %d %s", stats.status, clip(stats.body))
	}
	m := do(t, http.MethodGet, cp.admin+"/metrics", auth)
	for _, want := range []string{`iiif_cache_hits_total{layer="disk",tier="thumbnail"}`, `iiif_cache_misses_total{tier="tile"} 2`,
		"iiif_cache_bytes{tier=", `iiif_cache_state{tier="tile"} 0`, "iiif_cache_free_bytes{tier=",
		`iiif_cache_store_faults_total{kind="nospace",tier="tile"} 0`, "iiif_render_seconds_bucket", "iiif_renders_total", `iiif_responses_total{code="200"}`} {
		if !strings.Contains(string(m.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestABrokenStoreServesUncached(t *testing.T) {
	r, err := vips.New(vips.Config{TilePath: tilePath})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := store.Open(store.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s.Close() // every call now fails
	cfg := Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.Tiers[rules.TierTile] = TierConfig{Store: s}
	p, err := New(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveLoopback(t, p, nil, nil)
	for range 2 {
		resp := get(t, "http://"+addr+"/iiif/3/pattern.tif/0,0,256,256/256,/0/default.jpg")
		if resp.status != 200 || len(resp.body) < 1000 {
			t.Fatalf("with a broken store: %d", resp.status)
		}
	}
	if f := p.Stats().Tiers["tile"].Faults; f < 2 {
		t.Errorf("%d faults counted, want the failed gets and puts", f)
	}
}

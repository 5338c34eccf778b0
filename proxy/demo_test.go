package proxy

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/iiif-proxy/iiif-proxy/rules"
)

// serveDemo is serveFake with the demo page on, over root, at webPath, with
// unversioned URLs served (the case where most paths could be IIIF ones).
func serveDemo(t *testing.T, webPath, root string, mod func(*Config)) (origin string, fp *fakeProxy) {
	t.Helper()
	fp = serveFake(t, false, func(c *Config) {
		c.WebPath, c.Demo, c.DemoRoot, c.Unversioned = webPath, true, root, rules.V2
		if mod != nil {
			mod(c)
		}
	})
	return fp.base[:strings.Index(fp.base[len("http://"):], "/")+len("http://")], fp
}

// TestDemoNeverShadowsIIIF: whatever IIIFWebPath is, "/" included, an image
// named like a demo path segment is served as IIIF, and the demo page still
// answers its own paths.
func TestDemoNeverShadowsIIIF(t *testing.T) {
	for _, tc := range []struct {
		webPath string
		iiif    []string // IIIF URLs that must answer info.json
	}{
		{"/", []string{"/demo/info.json", "/3/demo/info.json", "/api/info.json", "/2/static/info.json"}},
		{"/iiif", []string{"/iiif/demo/info.json", "/iiif/3/api/info.json"}},
		{"/demo", []string{"/demo/api/info.json", "/demo/3/api/info.json", "/demo/static/info.json", "/demo/viewers/info.json"}},
	} {
		t.Run(tc.webPath, func(t *testing.T) {
			origin, fp := serveDemo(t, tc.webPath, t.TempDir(), nil)
			for _, id := range []string{"demo", "api", "static", "viewers"} {
				fp.r.Set(id, 100, 100)
			}
			for _, u := range tc.iiif {
				r := fget(t, origin+u)
				if r.status != http.StatusOK || !strings.Contains(r.body, `"width":100`) && !strings.Contains(r.body, `"width": 100`) {
					t.Errorf("%s: %d %.80q, want the image's info.json", u, r.status, r.body)
				}
			}
			if r := fget(t, origin+"/"); r.status != http.StatusOK || !strings.Contains(r.body, "/demo/static/demo.js") {
				t.Errorf("/: %d %.80q, want the demo page", r.status, r.body)
			}
			for _, u := range []string{"/demo/api/config", "/demo/api/ids", "/demo/static/demo.js", "/demo/api/manifest/demo"} {
				if r := fget(t, origin+u); r.status != http.StatusOK {
					t.Errorf("%s: %d %.80q", u, r.status, r.body)
				}
			}
		})
	}
}

func TestDemoOffIsNotFound(t *testing.T) {
	fp := serveFake(t, false, nil)
	origin := strings.TrimSuffix(fp.base, "/iiif/3/")
	for _, u := range []string{"/", "/demo/api/ids", "/demo/static/demo.js"} {
		if r := fget(t, origin+u); r.status != http.StatusNotFound {
			t.Errorf("%s with the demo off: %d, want 404", u, r.status)
		}
	}
}

// TestDemoListing lists one level at a time, pages, hides what is not an
// image, hidden or protected, never leaves TilePath, and bounds what one
// request reads.
func TestDemoListing(t *testing.T) {
	root := t.TempDir()
	touch := func(name string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"a.jpg", "B.TIF", "notes.txt", ".hidden.jpg", "sub/c.png", "private/x.jpg", "sub/private.jp2"} {
		touch(f)
	}
	for i := range 250 {
		touch(fmt.Sprintf("big/%03d.tif", i))
	}
	if err := os.Symlink("/etc", filepath.Join(root, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/c.png", filepath.Join(root, "alias.png")); err != nil {
		t.Fatal(err)
	}
	signer, err := NewSigner([]string{"private/"}, []string{strings.Repeat("k", 32)})
	if err != nil {
		t.Fatal(err)
	}
	origin, _ := serveDemo(t, "/iiif", root, func(c *Config) { c.Signer = signer })
	list := func(query string, want int) demoListing {
		t.Helper()
		r := fget(t, origin+"/demo/api/ids"+query)
		var l demoListing
		if r.status != want {
			t.Fatalf("%s: %d %s, want %d", query, r.status, r.body, want)
		}
		if want == http.StatusOK {
			if err := json.Unmarshal([]byte(r.body), &l); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
		}
		return l
	}
	names := func(l demoListing) (out []string) {
		for _, e := range l.Entries {
			n := e.ID
			if e.Dir {
				n += "/"
			}
			out = append(out, n)
		}
		return out
	}
	if got, want := names(list("", 200)), []string{"B.TIF", "a.jpg", "alias.png", "big/", "sub/"}; !slices.Equal(got, want) {
		t.Errorf("root: %q, want %q (no text, hidden, protected or escaping entries)", got, want)
	}
	if got, want := names(list("?dir=sub", 200)), []string{"sub/c.png", "sub/private.jp2"}; !slices.Equal(got, want) {
		t.Errorf("sub: %q, want %q", got, want)
	}
	l := list("?dir=big&offset=200&limit=100", 200)
	if l.Total != 250 || len(l.Entries) != 50 || l.Entries[0].ID != "big/200.tif" || l.Truncated {
		t.Errorf("big, third page: total %d, %d entries from %+v, truncated %v", l.Total, len(l.Entries), l.Entries[0], l.Truncated)
	}
	for _, q := range []string{"?dir=../", "?dir=/etc", "?dir=sub/../..", "?dir=private/../out", "?limit=-1", "?limit=1001", "?offset=x"} {
		list(q, http.StatusBadRequest)
	}
	if l := list("?dir=private", 200); len(l.Entries) != 0 {
		t.Errorf("a protected folder lists %+v", l.Entries)
	}
	for _, q := range []string{"?dir=nope", "?dir=out", "?dir=a.jpg"} {
		list(q, http.StatusNotFound)
	}

	// Past demoScanMax entries, one request reads no more and says so.
	for i := range demoScanMax + 1 {
		touch(fmt.Sprintf("huge/%05d.jpg", i))
	}
	l = list("?dir=huge&limit=1", 200)
	if !l.Truncated || l.Total != demoScanMax || len(l.Entries) != 1 {
		t.Errorf("huge: total %d, truncated %v, %d entries; want %d, true, 1", l.Total, l.Truncated, len(l.Entries), demoScanMax)
	}
}

// TestDemoManifest: Mirador's manifest of one image names its size and its
// 3.0 service on this server; protected and unknown images get none.
func TestDemoManifest(t *testing.T) {
	signer, err := NewSigner([]string{"b/"}, []string{strings.Repeat("k", 32)})
	if err != nil {
		t.Fatal(err)
	}
	origin, _ := serveDemo(t, "/iiif", "", nil)
	r := fget(t, origin+"/demo/api/manifest/a")
	var m struct {
		Type  string
		Items []struct {
			Width, Height int
			Items         []struct {
				Items []struct {
					Body struct {
						Service []struct{ ID, Type string }
					}
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(r.body), &m); err != nil || r.status != http.StatusOK {
		t.Fatalf("manifest: %d %v %s", r.status, err, r.body)
	}
	if m.Type != "Manifest" || len(m.Items) != 1 || m.Items[0].Width != 1000 || m.Items[0].Height != 800 {
		t.Fatalf("manifest: %+v", m)
	}
	svc := m.Items[0].Items[0].Items[0].Body.Service[0]
	if svc.ID != origin+"/iiif/3/a" || svc.Type != "ImageService3" {
		t.Errorf("service %+v, want %s/iiif/3/a", svc, origin)
	}
	if r := fget(t, origin+"/demo/api/manifest/nope"); r.status != http.StatusNotFound {
		t.Errorf("unknown image: %d, want 404", r.status)
	}
	origin, _ = serveDemo(t, "/iiif", "", func(c *Config) { c.Signer = signer })
	if r := fget(t, origin+"/demo/api/manifest/b%2Fc"); r.status != http.StatusForbidden {
		t.Errorf("protected image: %d, want 403", r.status)
	}
}

func TestAssetsGzipAndETag(t *testing.T) {
	origin, _ := serveDemo(t, "/iiif", "", nil)
	r := fget(t, origin+"/demo/static/demo.js", "Accept-Encoding", "gzip")
	if r.status != http.StatusOK || r.header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("demo.js: %d %v", r.status, r.header)
	}
	etag := r.header.Get("ETag")
	if r := fget(t, origin+"/demo/static/demo.js", "If-None-Match", etag); r.status != http.StatusNotModified {
		t.Errorf("If-None-Match %s: %d, want 304", etag, r.status)
	}
	if r := fget(t, origin+"/demo/static/nope.js"); r.status != http.StatusNotFound {
		t.Errorf("missing asset: %d", r.status)
	}
}

// TestDashboardNeedsNoTokenButItsStatsDo: the page loads without the token
// (it holds no data); /stats does not, and carries what the page draws.
func TestDashboardNeedsNoTokenButItsStatsDo(t *testing.T) {
	for _, public := range []bool{false, true} {
		fp := serveFake(t, true, func(c *Config) { c.AdminPublic = public })
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := fp.p.AdminServer("t0ken")
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Shutdown() })
		admin := "http://" + ln.Addr().String()
		for _, u := range []string{"/", "/dashboard/", "/dashboard/static/dashboard.js", "/dashboard/static/dashboard.css"} {
			if r := fget(t, admin+u); r.status != http.StatusOK {
				t.Errorf("public %v: %s: %d", public, u, r.status)
			}
		}
		if r := fget(t, admin+"/stats"); r.status != http.StatusUnauthorized {
			t.Errorf("public %v: /stats without the token: %d, want 401", public, r.status)
		}
		fget(t, fp.base+"a/0,0,256,256/256,/0/default.jpg")
		r := fget(t, admin+"/stats", "Authorization", "Bearer t0ken")
		var s Stats
		if err := json.Unmarshal([]byte(r.body), &s); err != nil || r.status != http.StatusOK {
			t.Fatalf("/stats: %d %v", r.status, err)
		}
		tile := s.Tiers["tile"]
		if tile.Render.Count != 1 || len(tile.Render.Buckets) == 0 || tile.Render.P50 <= 0 || tile.Misses != 1 {
			t.Errorf("tile stats after one render: %+v", tile)
		}
		// A dropped token: the page and its stats are open (read-only when public).
		fp.p.SetAdminToken("")
		if r := fget(t, admin+"/stats"); r.status != http.StatusOK {
			t.Errorf("public %v, no token: /stats %d", public, r.status)
		}
	}
	if !IsAdminPath([]byte("/dashboard/")) || !IsAdminPath([]byte("/dashboard/static/dashboard.js")) || IsAdminPath([]byte("/dashboard")) {
		t.Error("IsAdminPath: the dashboard's paths on a shared port")
	}
}

func TestQuantile(t *testing.T) {
	b := []Bucket{{0.01, 0}, {0.1, 50}, {1, 90}, {10, 100}}
	for _, tc := range []struct {
		q     float64
		count uint64
		want  float64
	}{
		{0.5, 100, 0.1},       // the 50th of 100 is the top of (0.01, 0.1]
		{0.25, 100, 0.055},    // halfway through that bucket
		{0.9, 100, 1},         //
		{0.99, 100, 9.1},      // 9 of the 10 in (1, 10]
		{0.5, 0, 0},           // nothing timed
		{0.99, 200, 10},       // beyond the last finite bound: that bound
		{0.001, 100, 0.01018}, // 0.1 of the 50 in (0.01, 0.1]
	} {
		if got := quantile(tc.q, b, tc.count); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("q %v of %d: %v, want %v", tc.q, tc.count, got, tc.want)
		}
	}
}

package main

import (
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The demo page and the dashboard in Debian's Chromium against the binary
// (test/viewer/demo.mjs; tools as for viewer_test.go). Screenshots go to
// artifactDir: `IIIF_PROXY_ARTIFACTS=DIR go test -run 'InChromium' ./cmd/iiif-proxy`
// keeps them in DIR.

// demoRun is what demo.mjs prints.
type demoRun struct {
	Listed []string `json:"listed"`
	OSD    struct {
		Viewer      string  `json:"viewer"`
		Opened      bool    `json:"opened"`
		OpenFailed  *string `json:"openFailed"`
		TilesLoaded int     `json:"tilesLoaded"`
		TilesFailed int     `json:"tilesFailed"`
		FullyLoaded bool    `json:"fullyLoaded"`
		Screenshot  string  `json:"screenshot"`
	} `json:"osd"`
	Mirador struct {
		Opened     bool          `json:"opened"`
		OpenFailed *string       `json:"openFailed"`
		Canvas     bool          `json:"canvas"`
		Tiles      []pageRequest `json:"tiles"`
		Screenshot string        `json:"screenshot"`
	} `json:"mirador"`
	Requests []pageRequest `json:"requests"`
	Blocked  []string      `json:"blocked"`
	Errors   []string      `json:"errors"`
	MS       int           `json:"ms"`
}

type pageRequest struct {
	URL    string `json:"url"`
	Status int    `json:"status"`
}

// miradorWarnings are console errors Mirador 4.0.0 itself logs in every
// session (React 19 deprecations inside its bundle), not failures of ours.
var miradorWarnings = []string{"Accessing element.ref was removed in React 19"}

// TestDemoInChromium opens the demo page, follows its links to page.tif in
// OpenSeadragon and in Mirador, and checks that the listing is the sample
// directory's, that every tile loaded, that both screenshots show the page,
// and that no request went anywhere but loopback.
func TestDemoInChromium(t *testing.T) {
	node := viewerTools(t)
	// The samples, hard-linked (cheap, and real files to the listing), and
	// one file that is no image.
	shared, dir := sharedSamples(t), t.TempDir()
	des, err := os.ReadDir(shared)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, de := range des {
		if err := os.Link(filepath.Join(shared, de.Name()), filepath.Join(dir, de.Name())); err != nil {
			t.Fatal(err)
		}
		want = append(want, de.Name())
	}
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := start(t, "RAIS_DEMOPAGE=true", "RAIS_TILEPATH="+dir)
	var run demoRun
	runScript(t, node, "demo.mjs", &run, "--mode", "demo", "--base", "http://"+c.addr, "--id", "page.tif")

	if !slices.Equal(run.Listed, want) {
		t.Errorf("listed %q, want the sample images %q", run.Listed, want)
	}

	o := run.OSD
	if !o.Opened || o.OpenFailed != nil || !o.FullyLoaded || o.TilesLoaded < 4 || o.TilesFailed != 0 {
		t.Errorf("OpenSeadragon: %+v", o)
	}
	m := run.Mirador
	if !m.Opened || m.OpenFailed != nil || !m.Canvas || len(m.Tiles) < 4 {
		t.Errorf("Mirador: opened %v, failed %v, canvas %v, %d tiles", m.Opened, m.OpenFailed, m.Canvas, len(m.Tiles))
	}

	// Every request: loopback, answered 200 (nothing blocked, nothing failed).
	if len(run.Blocked) > 0 {
		t.Errorf("requests that would have left loopback: %q", run.Blocked)
	}
	iiif, viewers := 0, 0
	for _, r := range run.Requests {
		u, err := url.Parse(r.URL)
		switch {
		case err != nil:
			t.Errorf("request %q: %v", r.URL, err)
		case u.Scheme == "data" || u.Scheme == "blob":
		case u.Host != c.addr:
			t.Errorf("request to %s: not the proxy on loopback (%s)", r.URL, c.addr)
		case r.Status != http.StatusOK:
			t.Errorf("%s: status %d", r.URL, r.Status)
		}
		if strings.Contains(r.URL, "/iiif/3/page.tif/") {
			iiif++
		}
		if strings.Contains(r.URL, "/demo/viewers/") {
			viewers++
		}
	}
	if iiif < 8 || viewers < 2 {
		t.Errorf("%d image service and %d viewer requests seen, want both viewers' (%d in all)", iiif, viewers, len(run.Requests))
	}
	for _, e := range run.Errors {
		if !slices.ContainsFunc(miradorWarnings, func(w string) bool { return strings.Contains(e, w) }) {
			t.Errorf("browser: %s", e)
		}
	}
	for _, shot := range []string{o.Screenshot, m.Screenshot} {
		if share := sepiaShare(t, shot); share < 0.15 {
			t.Errorf("screenshot %s: %.0f%% sepia paper, want the page in view", shot, 100*share)
		}
	}
	t.Logf("demo: %d listed, OpenSeadragon %d tiles, Mirador %d tiles, %d requests, all on loopback, in %d ms; screenshots %s, %s",
		len(run.Listed), o.TilesLoaded, len(m.Tiles), len(run.Requests), run.MS, o.Screenshot, m.Screenshot)
}

// sepiaShare is the share of a screenshot's pixels that are the sample
// page's sepia paper (see checkScreenshot).
func sepiaShare(t *testing.T, path string) float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := img.Bounds()
	paper := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r32, g32, b32, _ := img.At(x, y).RGBA()
			r, g, bl := int(r32>>8), int(g32>>8), int(b32>>8)
			lum := 0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)
			if r > g && g > bl && r-bl >= 25 && lum > 120 && lum < 245 {
				paper++
			}
		}
	}
	return float64(paper) / float64(b.Dx()*b.Dy())
}

// dashboardRun is what demo.mjs prints in dashboard mode.
type dashboardRun struct {
	TokenPrompt string                    `json:"tokenPrompt"`
	Before      map[string]dashboardValue `json:"before"`
	After       map[string]dashboardValue `json:"after"`
	Traffic     []struct {
		URL    string `json:"url"`
		Status int    `json:"status"`
		XCache string `json:"xCache"`
	} `json:"traffic"`
	Status     string   `json:"status"`
	Screenshot string   `json:"screenshot"`
	Blocked    []string `json:"blocked"`
	Errors     []string `json:"errors"`
}

type dashboardValue struct {
	V    *string `json:"v"`
	Text string  `json:"text"`
}

// num is a shown counter's exact value; its text must say the same.
func (r dashboardRun) num(t *testing.T, vals map[string]dashboardValue, k string) float64 {
	t.Helper()
	d, ok := vals[k]
	if !ok || d.V == nil {
		t.Errorf("the dashboard shows no %s", k)
		return -1
	}
	v, err := strconv.ParseFloat(*d.V, 64)
	if err != nil {
		t.Errorf("%s: %q: %v", k, *d.V, err)
	}
	return v
}

// TestDashboardInChromium loads the admin dashboard, checks that what it
// shows is what /metrics says, sends traffic, and checks that it changed
// without a reload, by as much as /metrics did. Then the same dashboard
// behind a token: it asks for it, and shows the numbers once given it.
func TestDashboardInChromium(t *testing.T) {
	node := viewerTools(t)
	dir := sharedSamples(t)
	t.Run("no token", func(t *testing.T) {
		c := start(t, "RAIS_DEMOPAGE=true", "RAIS_TILEPATH="+dir)
		admin := adminAddress(t, c)
		base := "http://" + c.addr + "/iiif/3/page.tif/"
		for _, u := range []string{"info.json", "0,0,256,256/256,256/0/default.jpg", "full/200,/0/default.jpg", "0,0,256,256/256,256/0/default.jpg"} {
			if status, _, _, err := fetch(http.DefaultClient, base+u); err != nil || status != http.StatusOK {
				t.Fatalf("%s: %d %v", u, status, err)
			}
		}
		var traffic []string
		for _, tile := range []string{"256,0,256,256/256,256", "512,0,256,256/256,256", "768,0,256,256/256,256"} {
			traffic = append(traffic, "--traffic", base+tile+"/0/default.jpg", "--traffic", base+tile+"/0/default.jpg")
		}
		before := scrapeMetrics(t, admin)
		var run dashboardRun
		runScript(t, node, "demo.mjs", &run, append([]string{"--mode", "dashboard", "--base", "http://" + admin}, traffic...)...)
		after := scrapeMetrics(t, admin)

		if len(run.Blocked) > 0 || len(run.Errors) > 0 {
			t.Errorf("blocked %q, errors %q", run.Blocked, run.Errors)
		}
		for _, tr := range run.Traffic {
			if tr.Status != http.StatusOK {
				t.Errorf("traffic %s: %d", tr.URL, tr.Status)
			}
		}
		// What the page showed, before and after the traffic, is /metrics.
		for _, snap := range []struct {
			name string
			vals map[string]dashboardValue
			m    metrics
		}{{"before", run.Before, before}, {"after", run.After, after}} {
			for _, tier := range []string{"tile", "thumbnail", "info", "other"} {
				tl := `tier="` + tier + `"`
				for k, want := range map[string]float64{
					"misses":               snap.m.sum("iiif_cache_misses_total", tl),
					"hits":                 snap.m.sum("iiif_cache_hits_total", tl),
					"memoryHits":           snap.m.sum("iiif_cache_hits_total", tl, `layer="mem"`),
					"diskHits":             snap.m.sum("iiif_cache_hits_total", tl, `layer="disk"`),
					"collapsed":            snap.m.sum("iiif_cache_collapsed_total", tl),
					"entries":              snap.m.sum("iiif_cache_entries", tl),
					"bytes":                snap.m.sum("iiif_cache_bytes", tl),
					"renders":              snap.m.sum("iiif_render_seconds_count", tl),
					"evicted":              snap.m.sum("iiif_cache_removed_total", tl, `cause="budget"`),
					"purged":               snap.m.sum("iiif_cache_removed_total", tl, `cause="purge"`),
					"revalidatedUnchanged": snap.m.sum("iiif_cache_revalidations_total", tl, `result="unchanged"`),
					"tooLarge":             snap.m.sum("iiif_cache_too_large_total", tl),
					"declined":             snap.m.sum("iiif_cache_declined_total", tl),
				} {
					if got := run.num(t, snap.vals, tier+"."+k); got != want {
						t.Errorf("%s: the dashboard shows %s.%s = %v, /metrics %v", snap.name, tier, k, got, want)
					}
				}
			}
			if got, want := run.num(t, snap.vals, "renderer.Renders"), snap.m.sum("iiif_renders_total"); got != want {
				t.Errorf("%s: renders %v, /metrics %v", snap.name, got, want)
			}
			// Counters are shown in full: the text is the number.
			for _, k := range []string{"tile.misses", "tile.hits", "renderer.Renders"} {
				if v := snap.vals[k]; v.V == nil || strings.ReplaceAll(v.Text, ",", "") != *v.V {
					t.Errorf("%s: %s shows %q for %v", snap.name, k, v.Text, v.V)
				}
			}
		}
		// And it changed without a reload: three new tiles, each asked twice.
		if d := run.num(t, run.After, "tile.misses") - run.num(t, run.Before, "tile.misses"); d != 3 {
			t.Errorf("tile misses rose by %v on the page, want 3", d)
		}
		if d := run.num(t, run.After, "tile.hits") - run.num(t, run.Before, "tile.hits"); d != 3 {
			t.Errorf("tile hits rose by %v on the page, want 3", d)
		}
		// The chart's latest interval with requests is the traffic's.
		if v := run.After["tile.hitRatioNow"]; v.V == nil || *v.V == "" || !strings.HasSuffix(v.Text, "%") {
			t.Errorf("tile hit ratio of the latest interval: %+v", v)
		}
		if v := run.After["tile.p50"]; v.V == nil || *v.V == "0" || !strings.HasSuffix(v.Text, "ms") {
			t.Errorf("tile render p50: %+v", v)
		}
		t.Logf("dashboard: %d values, %s; screenshot %s", len(run.After), run.Status, run.Screenshot)
	})

	t.Run("token", func(t *testing.T) {
		const token = "dashb0ard-t0ken"
		c := start(t, "RAIS_DEMOPAGE=true", "RAIS_TILEPATH="+dir, "RAIS_ADMINTOKEN="+token)
		admin := adminAddress(t, c)
		tile := "http://" + c.addr + "/iiif/3/page.tif/0,0,256,256/256,256/0/default.jpg"
		var run dashboardRun
		// Stats the page has no layout for (as an object store's will be)
		// are shown as they come, at the top and in each tier.
		inject := `{"top": {"objectStore": {"up": true, "errors": 3}}, "tier": {"shared": {"hits": 7}}}`
		runScript(t, node, "demo.mjs", &run, "--mode", "dashboard", "--base", "http://"+admin, "--token", token, "--traffic", tile, "--inject", inject)
		for k, want := range map[string]string{"stats.objectStore.errors": "3", "stats.objectStore.up": "true", "tile.shared.hits": "7", "info.shared.hits": "7"} {
			if v := run.After[k]; v.V == nil || *v.V != want || v.Text != want {
				t.Errorf("unknown stats key %s shown as %+v, want %s", k, v, want)
			}
		}
		if !strings.Contains(run.TokenPrompt, "needs its token") {
			t.Errorf("before the token: status %q, want it to ask for the token", run.TokenPrompt)
		}
		if d := run.num(t, run.After, "tile.misses") - run.num(t, run.Before, "tile.misses"); d != 1 {
			t.Errorf("with the token: tile misses rose by %v, want 1", d)
		}
		for _, e := range run.Errors {
			// The page's polls before the token was typed in were refused.
			if !strings.Contains(e, "401 (Unauthorized)") {
				t.Errorf("browser: %s", e)
			}
		}
		if len(run.Blocked) > 0 {
			t.Errorf("blocked %q", run.Blocked)
		}
		t.Logf("dashboard with a token: %s; screenshot %s", run.Status, run.Screenshot)
	})
}

var (
	sharedOnce sync.Once
	sharedDir  string
	sharedErr  error
)

// sharedSamples is one set of the small samples for the browser tests,
// which only read them: made once (it takes seconds on a loaded machine),
// beside the test binary, and removed with it by TestMain.
func sharedSamples(t *testing.T) string {
	t.Helper()
	sharedOnce.Do(func() {
		sharedDir = filepath.Join(filepath.Dir(binary), "samples")
		if out, err := exec.Command(binary, "samples", "-small", "-dir", sharedDir).CombinedOutput(); err != nil {
			sharedErr = fmt.Errorf("samples: %v\n%s", err, out)
		}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedDir
}

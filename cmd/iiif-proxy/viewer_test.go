package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/web"
)

// The viewer test runs OpenSeadragon in Debian's Chromium against the real
// binary. `make viewer-deps` (a prerequisite of `make test`) installs
// Chromium and test/viewer's node_modules; plain `go test` skips it when they
// are missing.

const (
	chromiumPath = "/usr/bin/chromium"
	viewerDir    = "../../test/viewer"
	webDist      = "../../web/dist" // the viewers' bundles, as embedded
	// What viewer.mjs shows: a 1024 × 768 page, zoomed to one image pixel
	// per screen pixel centred on this point of page.tif.
	viewWidth, viewHeight = 1024, 768
	zoomX, zoomY          = 1500, 2000
)

// viewerRun is what viewer.mjs prints.
type viewerRun struct {
	Version        int      `json:"version"` // the IIIF version OpenSeadragon detected
	Drawer         string   `json:"drawer"`
	CanvasReadable *bool    `json:"canvasReadable"` // false: a tile tainted the canvas (no CORS)
	TilesLoaded    int      `json:"tilesLoaded"`
	TilesFailed    int      `json:"tilesFailed"`
	URLs           []string `json:"urls"`
	Screenshot     string   `json:"screenshot"`
	Steps          []struct {
		Name        string   `json:"name"`
		MS          int      `json:"ms"`
		TilesLoaded int      `json:"tilesLoaded"`
		TilesFailed int      `json:"tilesFailed"`
		URLs        []string `json:"urls"`
	} `json:"steps"`
	Requests []struct {
		URL        string `json:"url"`
		Status     int    `json:"status"`
		XCache     string `json:"xCache"`
		XCacheTier string `json:"xCacheTier"`
	} `json:"requests"`
	Errors []string `json:"errors"`
	Error  string   `json:"error"`
	MS     int      `json:"ms"`
}

// TestViewerInChromium opens page.tif's IIIF 3.0 and 2.1 services in
// OpenSeadragon, served from another origin than the IIIF server so that
// CORS is exercised, and checks the tiles it asked for, what the proxy
// counted and what the screen showed.
func TestViewerInChromium(t *testing.T) {
	node := viewerTools(t)
	dir := sharedSamples(t)
	c := start(t, "RAIS_TILEPATH="+dir)
	admin := adminAddress(t, c)
	pageURL := serveViewer(t)
	p := fetchPyramid(t, "http://"+c.addr+"/iiif/3/page.tif/info.json")

	seen := map[string]bool{} // region/size of every tile an earlier run loaded
	for _, v := range []struct{ name, path string }{{"3.0", "3"}, {"2.1", "2"}} {
		t.Run(v.name, func(t *testing.T) {
			base := "http://" + c.addr + "/iiif/" + v.path + "/page.tif/"
			before := scrapeMetrics(t, admin)
			run := runViewer(t, node, pageURL, base+"info.json")
			after := scrapeMetrics(t, admin)

			if want, _ := strconv.Atoi(v.path); run.Version != want {
				t.Errorf("OpenSeadragon detected IIIF version %d, want %d", run.Version, want)
			}
			if run.TilesFailed != 0 {
				t.Errorf("%d tiles failed to load", run.TilesFailed)
			}
			if len(run.Errors) > 0 {
				t.Errorf("browser errors:\n%s", strings.Join(run.Errors, "\n"))
			}
			if run.CanvasReadable == nil || !*run.CanvasReadable {
				t.Errorf("the %s drawer's canvas is not readable: a tile was drawn without CORS", run.Drawer)
			}
			if len(run.Steps) != 2 {
				t.Fatalf("steps: %d, want home and zoomed", len(run.Steps))
			}

			// Every tile URL is one OpenSeadragon may ask of this pyramid.
			finest := map[string]int{}                      // step → finest scale factor it loaded
			atScale := map[string]map[int]map[[2]int]bool{} // step → scale → tiles (x, y) it loaded
			for _, st := range run.Steps {
				if st.TilesLoaded < 4 || st.TilesFailed != 0 {
					t.Errorf("%s: %d tiles loaded, %d failed", st.Name, st.TilesLoaded, st.TilesFailed)
				}
				finest[st.Name] = math.MaxInt
				atScale[st.Name] = map[int]map[[2]int]bool{}
				for _, u := range st.URLs {
					rest, ok := strings.CutPrefix(u, base)
					if !ok {
						t.Errorf("%s: tile %s is not under %s", st.Name, u, base)
						continue
					}
					tl, err := p.tileOf(v.path, rest)
					if err != nil {
						t.Errorf("%s: %s: %v", st.Name, u, err)
						continue
					}
					finest[st.Name] = min(finest[st.Name], tl.scale)
					if atScale[st.Name][tl.scale] == nil {
						atScale[st.Name][tl.scale] = map[[2]int]bool{}
					}
					atScale[st.Name][tl.scale][[2]int{tl.x, tl.y}] = true
				}
			}
			if finest["home"] == math.MaxInt || finest["zoomed"] == math.MaxInt {
				t.Fatalf("no valid tile at home or zoomed: %v", finest)
			}
			// Home shows the whole page: its finest level is loaded whole.
			home := finest["home"]
			for y := 0; y < p.height; y += p.tile * home {
				for x := 0; x < p.width; x += p.tile * home {
					if !atScale["home"][home][[2]int{x, y}] {
						t.Errorf("home: finest level (scale 1/%d) lacks the tile at %d,%d", home, x, y)
					}
				}
			}
			// Zoomed to 1:1, every full-resolution tile under the view is loaded.
			if finest["zoomed"] != 1 || home <= 1 {
				t.Errorf("finest scale factor loaded: %d at home, %d zoomed; want > 1, then 1", home, finest["zoomed"])
			}
			x0, y0 := zoomX-viewWidth/2, zoomY-viewHeight/2
			for y := y0 / p.tile * p.tile; y < y0+viewHeight; y += p.tile {
				for x := x0 / p.tile * p.tile; x < x0+viewWidth; x += p.tile {
					if !atScale["zoomed"][1][[2]int{x, y}] {
						t.Errorf("zoomed: the full-resolution tile at %d,%d, in view, was not loaded", x, y)
					}
				}
			}

			// The proxy served them, and its counters agree with its X-Cache headers.
			xcache := map[string]int{}
			var keys []string
			for _, r := range run.Requests {
				if r.Status != http.StatusOK {
					t.Errorf("%s: status %d", r.URL, r.Status)
				}
				xcache[r.XCache]++
				rest, _ := strings.CutPrefix(r.URL, base)
				if key := canonicalPair(rest); key != "" {
					if seen[key] && r.XCache != "HIT" {
						t.Errorf("%s: X-Cache %s, want HIT: an earlier run loaded the same pixels", r.URL, r.XCache)
					}
					keys = append(keys, key)
				}
			}
			for _, k := range keys {
				seen[k] = true
			}
			if n := xcache["HIT"] + xcache["MISS"] + xcache["COLLAPSED"] + xcache["REVALIDATED"]; n != len(run.Requests) || n == 0 {
				t.Errorf("X-Cache of %d responses: %v", len(run.Requests), xcache)
			}
			delta := func(name string, labels ...string) int {
				return int(after.sum(name, labels...) - before.sum(name, labels...))
			}
			if d := delta("iiif_cache_misses_total"); d < xcache["MISS"] {
				t.Errorf("iiif_cache_misses_total rose by %d, but the browser saw %d misses", d, xcache["MISS"])
			}
			if d := delta("iiif_cache_hits_total"); d < xcache["HIT"] {
				t.Errorf("iiif_cache_hits_total rose by %d, but the browser saw %d hits", d, xcache["HIT"])
			}
			if d := delta("iiif_responses_total", `code="200"`); d < len(run.Requests) {
				t.Errorf("iiif_responses_total{code=\"200\"} rose by %d, but the browser saw %d responses", d, len(run.Requests))
			}

			checkScreenshot(t, run.Screenshot)
			t.Logf("%s drawer: %d tiles at home (finest 1/%d) in %d ms, %d zoomed in %d ms, %d ms in all; X-Cache %v; passthrough +%d; screenshot %s",
				run.Drawer, run.Steps[0].TilesLoaded, home, run.Steps[0].MS, run.Steps[1].TilesLoaded, run.Steps[1].MS-run.Steps[0].MS,
				run.MS, xcache, delta("iiif_tile_passthrough_total"), run.Screenshot)
		})
	}
}

// viewerTools returns node's path, or skips the test when node, Chromium or
// test/viewer's packages are missing.
func viewerTools(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		skipOutsideCI(t, "node is not on PATH: this test needs Node.js 20 or later, then `make viewer-deps` (run by `make test`) installs the rest")
	}
	// playwright-core wants Node.js 20 or later; Debian 12's own nodejs (what
	// `make web` installs where npm is missing) is 18, enough for npm ci.
	if out, err := exec.Command(node, "--version").Output(); err == nil {
		v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
		if major, _, _ := strings.Cut(v, "."); len(major) > 0 {
			if n, err := strconv.Atoi(major); err == nil && n < 20 {
				skipOutsideCI(t, "node %s is too old for playwright-core: the browser tests need Node.js 20 or later", v)
			}
		}
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		skipOutsideCI(t, "%s not found; `make viewer-deps` (run by `make test`) installs it", chromiumPath)
	}
	if _, err := os.Stat(filepath.Join(viewerDir, "node_modules/playwright-core/package.json")); err != nil {
		skipOutsideCI(t, "test/viewer/node_modules/playwright-core not found; `make viewer-deps` (run by `make test`) installs it")
	}
	// The viewers are the ones the binary embeds (make web).
	for _, f := range []string{web.OpenSeadragonJS, web.MiradorJS} {
		if _, err := os.Stat(filepath.Join(webDist, f)); err != nil {
			skipOutsideCI(t, "web/dist/%s not found; `make web` (run by `make test`) puts it there", f)
		}
	}
	return node
}

// adminAddress is where c's admin listener is: start passes it as a flag.
func adminAddress(t *testing.T, c *child) string {
	t.Helper()
	i := slices.Index(c.cmd.Args, "-admin-address")
	if i < 0 || i+1 >= len(c.cmd.Args) {
		t.Fatalf("no -admin-address in %q", c.cmd.Args)
	}
	return c.cmd.Args[i+1]
}

// serveViewer serves test/viewer's page and OpenSeadragon's build (web's) on a
// loopback port of its own, another origin than the IIIF server's, and
// returns the page's URL.
func serveViewer(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(viewerDir, "index.html"))
	})
	osd := filepath.Join(webDist, "openseadragon")
	mux.Handle("GET /openseadragon/", http.StripPrefix("/openseadragon/", http.FileServer(http.Dir(osd))))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// runViewer runs viewer.mjs (runScript).
func runViewer(t *testing.T, node, page, info string) viewerRun {
	t.Helper()
	var run viewerRun
	runScript(t, node, "viewer.mjs", &run, "--page", page, "--info", info)
	return run
}

// runScript runs one of test/viewer's Playwright scripts with args, plus
// --out (artifactDir) and --chromium, and decodes the JSON it prints into
// out, which must have an Error field ("error"). It is bounded: on timeout
// node gets SIGTERM (its Playwright then closes Chromium), and SIGKILL 5 s
// later. Chromium's process group, named on node's stderr, must be gone
// afterwards; whatever is left of it is killed.
func runScript(t *testing.T, node, name string, out any, args ...string) {
	t.Helper()
	script, err := filepath.Abs(filepath.Join(viewerDir, name))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append([]string{script}, append(args, "--out", artifactDir(t), "--chromium", chromiumPath)...)
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir()) // Chromium's profile, removed even if node is killed
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if m := chromiumPID.FindStringSubmatch(stderr.String()); m != nil {
		pgid, _ := strconv.Atoi(m[1])
		stopGroup(t, pgid)
	}
	var e struct{ Error string }
	jerr := json.Unmarshal(stdout, &e)
	if jerr == nil {
		jerr = json.Unmarshal(stdout, out)
	}
	if jerr != nil || err != nil || e.Error != "" {
		t.Fatalf("%s: %v (%v), %s\nstdout: %s\nstderr: %s", name, err, ctx.Err(), e.Error, stdout, stderr.String())
	}
}

// artifactsEnv names a directory where the browser tests keep their
// screenshots, one subdirectory per test; without it they go to
// t.ArtifactDir() (kept with `go test -artifacts -outputdir DIR`).
const artifactsEnv = "IIIF_PROXY_ARTIFACTS"

func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(artifactsEnv)
	if dir == "" {
		return t.ArtifactDir()
	}
	dir = filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

var chromiumPID = regexp.MustCompile(`(?m)^chromium pid (\d+)$`)

// stopGroup checks that process group pgid has exited, waiting up to 5 s,
// and kills what is left of it if not.
func stopGroup(t *testing.T, pgid int) {
	t.Helper()
	for range 100 {
		if syscall.Kill(-pgid, 0) == syscall.ESRCH {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	t.Errorf("Chromium's process group %d outlived viewer.mjs; killed it", pgid)
}

// pyramid is the tile grid an info.json advertises.
type pyramid struct {
	width, height, tile int
	scales              []int
}

func fetchPyramid(t *testing.T, url string) pyramid {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info struct {
		Width, Height int
		Tiles         []struct {
			Width        int
			ScaleFactors []int
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || len(info.Tiles) != 1 {
		t.Fatalf("%s: %v, %+v", url, err, info)
	}
	p := pyramid{info.Width, info.Height, info.Tiles[0].Width, info.Tiles[0].ScaleFactors}
	if p.width != 3000 || p.height != 4000 || p.tile != 256 || !slices.Equal(p.scales, []int{1, 2, 4, 8, 16}) {
		t.Fatalf("page.tif's pyramid is %+v, want 3000×4000 in 256-pixel tiles at scales 1 to 16", p)
	}
	return p
}

// gridTile is one tile of a pyramid level: its scale factor and the
// full-resolution position of its top-left corner.
type gridTile struct{ scale, x, y int }

// tileOf checks that rest ("region/size/0/default.jpg") asks for one tile of
// p's grid as a IIIF version ("3" or "2") URL, and says which. Regions are a
// tile's full-resolution rectangle, clipped at the image's edge, or "full"
// for a level smaller than one tile; sizes are the level's pixels, "w,h"
// (3.0; OpenSeadragon sends it to 2.1 servers too) or "w," (2.1).
func (p pyramid) tileOf(version, rest string) (gridTile, error) {
	parts := strings.Split(rest, "/")
	if len(parts) != 4 || parts[2] != "0" || parts[3] != "default.jpg" {
		return gridTile{}, fmt.Errorf("not region/size/0/default.jpg")
	}
	region, size := parts[0], parts[1]
	sw, sh, ok := parseSize(version, size)
	if !ok {
		return gridTile{}, fmt.Errorf("size %q is not a IIIF %s w,h", size, version)
	}
	for _, s := range p.scales {
		lw, lh := ceilDiv(p.width, s), ceilDiv(p.height, s) // the level's size
		if region == "full" {
			if lw < p.tile && lh < p.tile && sw == lw && (sh == lh || sh < 0) {
				return gridTile{s, 0, 0}, nil
			}
			continue
		}
		r, ok := parseInts(region, 4)
		if !ok {
			return gridTile{}, fmt.Errorf("region %q is not x,y,w,h", region)
		}
		span := p.tile * s // a tile's side at full resolution
		x, y, w, h := r[0], r[1], r[2], r[3]
		if x%span != 0 || y%span != 0 || x >= p.width || y >= p.height ||
			w != min(span, p.width-x) || h != min(span, p.height-y) {
			continue
		}
		if sw == min(p.tile, lw-x/s) && (sh == min(p.tile, lh-y/s) || sh < 0) {
			return gridTile{s, x, y}, nil
		}
	}
	return gridTile{}, fmt.Errorf("not a tile of the %d×%d grid of %d-pixel tiles at scales %v", p.width, p.height, p.tile, p.scales)
}

// parseSize parses "w,h", or also "w," for version "2" (h is then -1).
func parseSize(version, size string) (w, h int, ok bool) {
	if ws, ok := strings.CutSuffix(size, ","); ok && version == "2" {
		v, ok := parseInts(ws, 1)
		return v[0], -1, ok
	}
	v, ok := parseInts(size, 2)
	if !ok {
		return 0, 0, false
	}
	return v[0], v[1], true
}

func parseInts(s string, n int) ([]int, bool) {
	fields := strings.Split(s, ",")
	v := make([]int, n)
	if len(fields) != n {
		return v, false
	}
	for i, f := range fields {
		x, err := strconv.Atoi(f)
		if err != nil || x < 0 {
			return v, false
		}
		v[i] = x
	}
	return v, true
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// canonicalPair is "region/size" of a tile URL's rest with a "w,h" size, the
// part 3.0 and 2.1 requests for the same pixels share, or "".
func canonicalPair(rest string) string {
	parts := strings.Split(rest, "/")
	if len(parts) != 4 || strings.HasSuffix(parts[1], ",") {
		return ""
	}
	return parts[0] + "/" + parts[1]
}

// metrics is one scrape of the admin /metrics: series ("name{labels}") → value.
type metrics map[string]float64

func scrapeMetrics(t *testing.T, admin string) metrics {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m := metrics{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); i > 0 && err == nil {
			m[line[:i]] = v
		}
	}
	if err := sc.Err(); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	return m
}

// sum adds the series of metric name that carry every one of labels
// (`code="200"`).
func (m metrics) sum(name string, labels ...string) float64 {
	var total float64
	for series, v := range m {
		n, l, _ := strings.Cut(series, "{")
		if n == name && !slices.ContainsFunc(labels, func(want string) bool { return !strings.Contains(l, want) }) {
			total += v
		}
	}
	return total
}

// checkScreenshot decodes the zoomed-in screenshot: at 1:1 the whole
// viewer is page, so most pixels are the sample's sepia paper (red > green >
// blue, light) and some are its dark ink, not one flat colour.
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	b := img.Bounds()
	if b.Dx() != viewWidth || b.Dy() != viewHeight {
		t.Errorf("screenshot is %v, want %d×%d", b, viewWidth, viewHeight)
	}
	var paper, ink, n int
	var sum, sumSq float64
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r32, g32, b32, _ := img.At(x, y).RGBA()
			r, g, bl := int(r32>>8), int(g32>>8), int(b32>>8)
			lum := 0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)
			n++
			sum += lum
			sumSq += lum * lum
			switch {
			case r > g && g > bl && r-bl >= 25 && lum > 120 && lum < 245:
				paper++
			case lum < 100:
				ink++
			}
		}
	}
	mean := sum / float64(n)
	sd := math.Sqrt(sumSq/float64(n) - mean*mean)
	t.Logf("screenshot: %.0f%% sepia paper, %.1f%% ink, luminance %.0f ± %.0f", 100*float64(paper)/float64(n), 100*float64(ink)/float64(n), mean, sd)
	if paper < n/2 || ink < n/200 || sd < 10 {
		t.Errorf("screenshot %s does not look like the page: %d of %d pixels sepia paper, %d ink, luminance %.0f ± %.0f", path, paper, n, ink, mean, sd)
	}
}

func TestPyramidTileOf(t *testing.T) {
	p := pyramid{width: 3000, height: 4000, tile: 256, scales: []int{1, 2, 4, 8, 16}}
	ok := func(version, rest string, want gridTile) {
		t.Helper()
		got, err := p.tileOf(version, rest)
		if err != nil || got != want {
			t.Errorf("%s %s: %+v, %v; want %+v", version, rest, got, err, want)
		}
	}
	ok("3", "full/188,250/0/default.jpg", gridTile{16, 0, 0})
	ok("2", "full/188,/0/default.jpg", gridTile{16, 0, 0})
	ok("3", "0,0,2048,2048/256,256/0/default.jpg", gridTile{8, 0, 0})
	ok("3", "2048,0,952,2048/119,256/0/default.jpg", gridTile{8, 2048, 0})
	ok("2", "2048,3072,952,928/238,232/0/default.jpg", gridTile{4, 2048, 3072})
	ok("3", "1792,2304,256,256/256,256/0/default.jpg", gridTile{1, 1792, 2304})
	ok("3", "2816,3840,184,160/184,160/0/default.jpg", gridTile{1, 2816, 3840})

	bad := func(version, rest string) {
		t.Helper()
		if got, err := p.tileOf(version, rest); err == nil {
			t.Errorf("%s %s: %+v, want an error", version, rest, got)
		}
	}
	bad("3", "full/188,/0/default.jpg")                 // "w," is 2.1 only
	bad("3", "full/375,500/0/default.jpg")              // scale 8 is bigger than a tile
	bad("3", "100,0,256,256/256,256/0/default.jpg")     // off the grid
	bad("3", "0,0,256,256/128,128/0/default.jpg")       // wrong size for the level
	bad("3", "2816,3840,256,256/256,256/0/default.jpg") // not clipped at the edge
	bad("3", "3072,0,256,256/256,256/0/default.jpg")    // outside the image
	bad("3", "0,0,256,256/256,256/90/default.jpg")
	bad("3", "0,0,256,256/256,256/0/gray.jpg")
	bad("2", "0,0,256,256/full/0/default.jpg")
}

// skipOutsideCI skips when the browser test's tools are missing, except in CI
// (CI set), where `make test` has installed them and a skip would hide a
// broken install.
func skipOutsideCI(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// TestSignedViewerInChromium protects page.tif, signs its info.json URL with
// `iiif-proxy sign`, and opens it in OpenSeadragon: every tile URL the
// viewer builds from info.json's id carries the signature, and none is
// refused.
func TestSignedViewerInChromium(t *testing.T) {
	node := viewerTools(t)
	dir := sharedSamples(t)
	env := []string{"RAIS_TILEPATH=" + dir, "RAIS_SIGNEDPREFIXES=page.tif", "RAIS_SIGNINGKEYS=" + strings.Repeat("k3y", 12)}
	c := start(t, env...)
	info := "http://" + c.addr + "/iiif/3/page.tif/info.json"
	if status, _, _, err := fetch(http.DefaultClient, info); err != nil || status != http.StatusForbidden {
		t.Fatalf("unsigned info.json: %d %v, want 403", status, err)
	}
	cmd := exec.Command(binary, "sign", "-config", "/dev/null", info, "-expires", "1h")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("iiif-proxy sign: %v", err)
	}
	signed := strings.TrimSpace(string(out))
	base, ok := strings.CutSuffix(signed, "/info.json")
	if !ok || !strings.Contains(base, "/iiif/signed/") {
		t.Fatalf("signed URL %q", signed)
	}
	run := runViewer(t, node, serveViewer(t), signed)
	if run.TilesFailed != 0 || run.TilesLoaded < 8 || len(run.Errors) > 0 {
		t.Fatalf("signed session: %d tiles loaded, %d failed, errors %q", run.TilesLoaded, run.TilesFailed, run.Errors)
	}
	tiles := 0
	for _, r := range run.Requests {
		if r.Status != http.StatusOK {
			t.Errorf("%s: status %d", r.URL, r.Status)
		}
		if !strings.HasPrefix(r.URL, base+"/") && r.URL != signed {
			t.Errorf("%s does not carry the signature of %s", r.URL, base)
		}
		if !strings.HasSuffix(r.URL, "info.json") {
			tiles++
		}
	}
	if tiles < 8 {
		t.Errorf("%d tile responses seen", tiles)
	}
	t.Logf("signed session: %d tiles, all under %s", tiles, base)
}

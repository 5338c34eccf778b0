package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/bench/harness/workload"
	"github.com/iiif-proxy/iiif-proxy/internal/iiif"
)

// Tests of the operator tools (check, warm, classify, config, Fallbacks),
// run from the binary.

var (
	toolSamplesOnce sync.Once
	toolSamplesDir  string
	toolSamplesErr  error
)

// toolSamples copies the small samples, generated once for these tests
// (beside the binary, removed with it), into a fresh directory.
func toolSamples(t *testing.T) string {
	t.Helper()
	toolSamplesOnce.Do(func() {
		toolSamplesDir = filepath.Join(filepath.Dir(binary), "tool-samples")
		out, err := exec.Command(binary, "samples", "-small", "-dir", toolSamplesDir).CombinedOutput()
		if err != nil {
			toolSamplesErr = err
			toolSamplesDir = string(out)
		}
	})
	if toolSamplesErr != nil {
		t.Fatalf("samples: %v\n%s", toolSamplesErr, toolSamplesDir)
	}
	dir := t.TempDir()
	entries, err := os.ReadDir(toolSamplesDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(toolSamplesDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// breakCorpus adds broken files to the samples in dir, each made as it is
// found in real corpora, and returns their names, sorted.
func breakCorpus(t *testing.T, dir string) []string {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	jpg, jp2, tif := read("page-plain.jpg"), read("page-jp2.jp2"), read("page.tif")
	corrupt := slices.Clone(tif)
	for i := len(corrupt) / 4; i < len(corrupt)*3/4; i++ {
		corrupt[i] = byte(i*131 + 7)
	}
	broken := map[string][]byte{
		"truncated.jpg":        jpg[:len(jpg)/3], // an upload cut short
		"truncated.jp2":        jp2[:1500],       // head -c 1500, as found
		"not-an-image.jpg":     []byte("<html>a login page saved as a JPEG</html>\n"),
		"zero-byte.tif":        nil,
		"box/corrupt-tiff.tif": corrupt, // its directory scrambled
	}
	var names []string
	for name, b := range broken {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	// Not images of the corpus: skipped by the walk.
	if err := os.WriteFile(filepath.Join(dir, ".DS_Store"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// checkJSON runs check -json with args and returns its report and status.
func checkJSON(t *testing.T, stdin string, env []string, args ...string) (checkReport, int) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"check", "-config", "/dev/null", "-json"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var errOut strings.Builder
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var rep checkReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("check -json: %v\n%s\nstderr: %s", err, out, errOut.String())
	}
	return rep, code
}

func failedIDs(rep checkReport) []string {
	var ids []string
	for _, p := range rep.Problems {
		if !p.OK {
			ids = append(ids, p.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// TestCheckReportsExactlyTheBrokenFiles: over the samples and a set of
// broken files, check (in process, and against a running server) names
// exactly the broken ones, each a 422, and exits 1; over the clean samples
// it exits 0.
func TestCheckReportsExactlyTheBrokenFiles(t *testing.T) {
	dir := toolSamples(t)
	rep, code := checkJSON(t, "", nil, "-tile-path", dir)
	if code != 0 || rep.Failed != 0 || rep.Checked != 6 {
		t.Fatalf("clean samples: exit %d, %+v; want 6 checked, none failed, exit 0", code, rep)
	}
	broken := breakCorpus(t, dir)

	rep, code = checkJSON(t, "", nil, "-tile-path", dir, "-j", "3")
	if code != 1 || rep.Checked != 11 {
		t.Errorf("broken corpus: exit %d, %d checked; want 1, 11", code, rep.Checked)
	}
	if got := failedIDs(rep); !slices.Equal(got, broken) {
		t.Errorf("in process, failed %q, want exactly %q", got, broken)
	}
	for _, p := range rep.Problems {
		if p.Status != http.StatusUnprocessableEntity || p.Error == "" || (p.Stage != "info" && p.Stage != "render") {
			t.Errorf("%s: status %d, stage %q, error %q; want 422 with a reason", p.ID, p.Status, p.Stage, p.Error)
		}
	}

	// Only some extensions.
	rep, code = checkJSON(t, "", nil, "-tile-path", dir, "-ext", ".jp2,TIF")
	if got := failedIDs(rep); code != 1 || rep.Checked != 6 ||
		!slices.Equal(got, []string{"box/corrupt-tiff.tif", "truncated.jp2", "zero-byte.tif"}) {
		t.Errorf("-ext .jp2,TIF: exit %d, %d checked, failed %q", code, rep.Checked, got)
	}

	// A list on stdin, with a missing image: 404.
	rep, code = checkJSON(t, "# featured\npage.tif\nmissing.tif\n\ntruncated.jpg\n", []string{"RAIS_TILEPATH=" + dir}, "-list", "-")
	if got := failedIDs(rep); code != 1 || rep.Checked != 3 || !slices.Equal(got, []string{"missing.tif", "truncated.jpg"}) {
		t.Errorf("-list -: exit %d, %d checked, failed %q", code, rep.Checked, got)
	}
	for _, p := range rep.Problems {
		if p.ID == "missing.tif" && p.Status != http.StatusNotFound {
			t.Errorf("missing.tif: status %d, want 404", p.Status)
		}
	}

	// The same against a running server.
	c := start(t, "RAIS_TILEPATH="+dir)
	rep, code = checkJSON(t, "", []string{"RAIS_TILEPATH=" + dir}, "-url", "http://"+c.addr+"/iiif/3")
	if got := failedIDs(rep); code != 1 || !slices.Equal(got, broken) {
		t.Errorf("-url: exit %d, failed %q, want exactly %q", code, got, broken)
	}
	for _, p := range rep.Problems {
		if p.Status != http.StatusUnprocessableEntity {
			t.Errorf("-url %s: status %d, want 422", p.ID, p.Status)
		}
	}

	// The table: one line per broken file, the summary, status 1.
	out, _, code := runBinary(t, binary, "check", "-config", "/dev/null", "-tile-path", dir)
	if code != 1 || !strings.Contains(out, "checked 11 images") || !strings.Contains(out, "5 failed") {
		t.Errorf("table: exit %d\n%s", code, out)
	}
	for _, name := range broken {
		if !strings.Contains(out, name) {
			t.Errorf("the table does not name %s:\n%s", name, out)
		}
	}
}

// TestFallbackServesTheJPEGSiblingOfACorruptTIFF: with Fallbacks = [".jpg"]
// a TIFF that cannot be decoded is served from its JPEG sibling under its
// own identifier, logged once; a corrupt TIFF without a sibling is still
// 422 and a missing one 404, even when its sibling exists.
func TestFallbackServesTheJPEGSiblingOfACorruptTIFF(t *testing.T) {
	dir := toolSamples(t)
	breakCorpus(t, dir)
	jpg, err := os.ReadFile(filepath.Join(dir, "page-plain.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "box/corrupt-tiff.jpg"), jpg, 0o644))
	must(os.WriteFile(filepath.Join(dir, "gone.jpg"), jpg, 0o644)) // gone.tif does not exist
	cfg := filepath.Join(t.TempDir(), "rais.toml")
	must(os.WriteFile(cfg, []byte("Fallbacks = [\".jpg\", \".png\"]\n"), 0o644))
	png, err := os.ReadFile(filepath.Join(dir, "page-png.png"))
	must(err)
	must(os.WriteFile(filepath.Join(dir, "truncated.png"), png, 0o644))
	c := startConfig(t, cfg, "RAIS_TILEPATH="+dir)
	base := "http://" + c.addr + "/iiif/3/"

	for range 2 {
		resp, err := http.Get(base + "box%2Fcorrupt-tiff.tif/info.json")
		must(err)
		var info struct {
			ID            string
			Width, Height int
		}
		err = json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !strings.HasSuffix(info.ID, "/iiif/3/box%2Fcorrupt-tiff.tif") ||
			info.Width != 3000 || info.Height != 4000 {
			t.Fatalf("info.json: %d %v %+v; want the sibling's size under the TIFF's id", resp.StatusCode, err, info)
		}
		resp, err = http.Get(base + "box%2Fcorrupt-tiff.tif/0,0,512,512/256,/0/default.jpg")
		must(err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || len(body) < 1000 {
			t.Fatalf("tile: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
	for _, tc := range []struct {
		path string
		want int
	}{
		{"zero-byte.tif/info.json", http.StatusUnprocessableEntity}, // no zero-byte.jpg
		{"gone.tif/info.json", http.StatusNotFound},                 // missing stays missing
	} {
		resp, err := http.Get(base + tc.path)
		must(err)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
	}
	// A JPEG whose header reads but whose pixels do not: its first render
	// fails, and the request is served from the PNG sibling (1200×1600).
	resp, err := http.Get(base + "truncated.jpg/full/max/0/default.jpg")
	must(err)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Link") == "" || !strings.Contains(resp.Header.Get("Link"), "truncated.jpg/full/max/") {
		t.Errorf("truncated.jpg: %d, Link %q; want 200 from its PNG sibling", resp.StatusCode, resp.Header.Get("Link"))
	}
	resp, err = http.Get(base + "truncated.jpg/info.json")
	must(err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"width":1200`) {
		t.Errorf("truncated.jpg/info.json after its failed render: %s; want the PNG's size", b)
	}
	line := c.waitLine(t, "serving its fallback")
	if !strings.Contains(line, "id=box/corrupt-tiff.tif") || !strings.Contains(line, "fallback=box/corrupt-tiff.jpg") {
		t.Errorf("log line %q", line)
	}
	// Logged once per source: the next is truncated.jpg's, not the TIFF's again.
	if line := c.waitLine(t, "serving its fallback"); !strings.Contains(line, "id=truncated.jpg fallback=truncated.png") {
		t.Errorf("log line %q, want truncated.jpg's", line)
	}
	// Counted in /stats.
	resp, err = http.Get("http://" + c.admin + "/stats")
	must(err)
	var st struct {
		Renderer struct {
			Fallbacks struct{ Described, Failed uint64 }
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.Renderer.Fallbacks.Described < 1 || st.Renderer.Fallbacks.Failed < 1 {
		t.Errorf("/stats fallbacks: %+v, %v", st.Renderer.Fallbacks, err)
	}
	if m := metric(t, c, "iiif_fallback_descriptions_total"); m == "" || m == "0" {
		t.Errorf("iiif_fallback_descriptions_total = %q, want the fallbacks counted", m)
	}
	// check says which images a fallback stands in for, and passes them.
	rep, code := checkJSON(t, "", []string{"RAIS_TILEPATH=" + dir}, "-config", cfg, "box/corrupt-tiff.tif")
	if code != 0 || rep.Fallbacks != 1 || rep.Problems[0].Fallback != "box/corrupt-tiff.jpg" {
		t.Errorf("check with Fallbacks: exit %d, %+v", code, rep)
	}
}

// viewerMisses replays the start of the harness's viewer workload
// (OpenSeadragon sessions in a 1920×1080 viewport, each opening an image at
// its home view and zooming in once) against the server at addr and
// returns the requests that were not cache hits.
func viewerMisses(t *testing.T, addr string, ids []string, n int) []string {
	t.Helper()
	c := workload.Corpus{Base: "http://" + addr + "/iiif/3"}
	for _, id := range ids {
		resp, err := http.Get(c.Base + "/" + id + "/info.json")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		im, err := iiif.ParseInfo(id, body)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		c.Images = append(c.Images, im)
	}
	gen, err := workload.Spec{Name: workload.Viewer, Viewport: iiif.Viewport{Width: 1920, Height: 1080}, Walk: 1, Seed: 7}.New(c, 0)
	if err != nil {
		t.Fatal(err)
	}
	var misses []string
	for range n {
		r := gen.Next()
		resp, err := http.Get(r.URL)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", r.URL, resp.StatusCode)
		}
		if xc := resp.Header.Get("X-Cache"); xc != "HIT" {
			misses = append(misses, xc+" "+strings.TrimPrefix(r.URL, c.Base))
		}
	}
	return misses
}

// TestWarmFillsWhatAViewerAsksForFirst: after warm (against the running
// server, and in process into a stopped server's cache directory), the
// first requests of OpenSeadragon-like sessions are all cache hits; with
// -depth 0 the first zoom's tiles are not (the check can fail).
func TestWarmFillsWhatAViewerAsksForFirst(t *testing.T) {
	dir := toolSamples(t)
	ids := []string{"page.tif", "pattern.tif", "page-plain.jpg", "page-jp2.jp2", "page-png.png", "page-webp.webp"}
	const n = 300

	// Against the running server, over HTTP.
	c := start(t, "RAIS_TILEPATH="+dir)
	args := append([]string{"warm", "-config", "/dev/null", "-url", "http://" + c.addr + "/iiif/3", "-rate", "0"}, ids...)
	out, errOut, code := runBinary(t, binary, args...)
	if code != 0 || !strings.Contains(out, "warmed 6 images (0 failed)") || !strings.Contains(out, " 0 failed") {
		t.Fatalf("warm -url: exit %d\n%s%s", code, out, errOut)
	}
	if misses := viewerMisses(t, c.addr, ids, n); len(misses) > 0 {
		t.Errorf("after warm -url, %d of the viewer's first %d requests were not hits: %q", len(misses), n, misses)
	}
	// Warming again renders next to nothing (a store write given up under
	// load, after 5 s, is served uncached and rendered again: allow a few).
	out, _, code = runBinary(t, binary, args...)
	var images, failedImages, requests, rendered int
	_, err := fmt.Sscanf(out[strings.LastIndex(out, "warmed "):], "warmed %d images (%d failed) with %d requests", &images, &failedImages, &requests)
	if i := strings.Index(out, ": "); err == nil && i > 0 {
		_, err = fmt.Sscanf(out[strings.LastIndex(out, ": ")+2:], "%d rendered", &rendered)
	}
	if code != 0 || err != nil || requests < 100 || rendered > requests/20 {
		t.Errorf("second warm -url: exit %d, %v: %d of %d requests rendered again\n%s", code, err, rendered, requests, out)
	}

	// In process, into the cache directory of a server started after.
	inProcess := func(depth string) []string {
		cache := t.TempDir()
		// The directories as flags, as check takes -tile-path.
		cmd := exec.Command(binary, append([]string{"warm", "-config", "/dev/null", "-rate", "0", "-depth", depth,
			"-tile-path", dir, "-cache-dir", cache}, ids...)...)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "warmed 6 images (0 failed)") {
			t.Fatalf("warm in process: %v\n%s", err, out)
		}
		c := start(t, "RAIS_TILEPATH="+dir, "RAIS_CACHEDIR="+cache)
		defer c.cmd.Process.Kill()
		// The tiers open in the background, serving uncached meanwhile.
		for _, tier := range []string{"tile", "thumbnail", "info", "other"} {
			for i := 0; metric(t, c, `iiif_cache_state{tier="`+tier+`"}`) != "0"; i++ {
				if i == 300 {
					t.Fatalf("the %s tier did not open", tier)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		return viewerMisses(t, c.addr, ids, n)
	}
	if misses := inProcess("1"); len(misses) > 0 {
		t.Errorf("after warm in process, %d of the viewer's first %d requests were not hits: %q", len(misses), n, misses)
	}
	if misses := inProcess("0"); len(misses) == 0 {
		t.Error("warm -depth 0 left no misses: the first zoom's tiles should not have been warmed")
	}
}

// TestClassify: the tier, rule and key of each URL form, from the binary
// with the configured tiers; the 2.1, 3.0 and unversioned forms of one view
// share a key; a missing image is a failure, status 1.
func TestClassify(t *testing.T) {
	dir := toolSamples(t)
	cfg := filepath.Join(t.TempDir(), "rais.toml")
	if err := os.WriteFile(cfg, []byte("TilePath = \""+dir+"\"\n[Tiers.Thumbnail]\nMaxSize = 1400\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	urls := []string{
		"/iiif/3/page.tif/full/1024,/0/default.jpg", // a thumbnail here: MaxSize 1400
		"/iiif/3/page.tif/0,0,512,512/256,256/0/default.jpg",
		"/iiif/2/page.tif/0,0,512,512/256,/0/default.jpg",
		"http://images.example.org/iiif/page.tif/0,0,512,512/256,/0/default.jpg",
		"/iiif/3/page.tif/full/max/90/default.jpg",
		"/iiif/2/page.tif/info.json",
	}
	cmd := exec.Command(binary, append([]string{"classify", "-config", cfg, "-json"}, urls...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("classify: %v\n%s", err, out)
	}
	var got []classified
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var c classified
		if err := dec.Decode(&c); err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	tileKey := "page.tif\x000,0,512,512/256,256/0/color.jpg"
	want := []struct{ tier, key, rule string }{
		{"thumbnail", "page.tif\x000,0,3000,4000/1024,1365/0/color.jpg", "within ThumbnailMaxSize 1400"},
		{"tile", tileKey, "TileMaxSize 1024"},
		{"tile", tileKey, "TileMaxSize 1024"},
		{"tile", tileKey, "TileMaxSize 1024"},
		{"other", "page.tif\x000,0,3000,4000/3000,4000/90/color.jpg", "rotated 90"},
		{"info", "page.tif\x00info.json 2.1", "info.json"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d answers for %d URLs:\n%s", len(got), len(want), out)
	}
	for i, w := range want {
		if g := got[i]; g.Tier != w.tier || g.Key != w.key || !strings.Contains(g.Rule, w.rule) {
			t.Errorf("%s: %s %q %q; want %s %q, rule saying %q", urls[i], g.Tier, g.Key, g.Rule, w.tier, w.key, w.rule)
		}
	}
	stdout, _, code := runBinary(t, binary, "classify", "-config", cfg, "/iiif/3/nothere.tif/full/max/0/default.jpg", urls[1])
	if code != 1 || !strings.Contains(stdout, "404") || !strings.Contains(stdout, `page.tif\x000,0,512,512/256,256/0/color.jpg`) {
		t.Errorf("classify with a missing image: exit %d\n%s", code, stdout)
	}
}

// TestConfigSaysWhereEachValueCameFrom: iiif-proxy config with a file, an
// environment variable and a flag names each source, masks the token, and
// exits 2 with the problems when the server would not start.
func TestConfigSaysWhereEachValueCameFrom(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rais.toml")
	if err := os.WriteFile(file, []byte("TilePath = \""+dir+"\"\nAdminToken = \"hunter2-hunter2\"\n\n[Tiers.Other]\nMaxBytes = \"3GB\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "config", "-config", file, "-jpg-quality", "60")
	cmd.Env = append(os.Environ(), "RAIS_LOGLEVEL=DEBUG")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("config: %v\n%s", err, out)
	}
	for _, re := range []string{
		`(?m)^TilePath +` + regexp.QuoteMeta(dir) + ` +file ` + regexp.QuoteMeta(file) + `:1$`,
		`(?m)^Tiers\.Other\.MaxBytes +3GB +file ` + regexp.QuoteMeta(file) + `:5$`,
		`(?m)^JPGQuality +60 +flag -jpg-quality$`,
		`(?m)^LogLevel +DEBUG +environment RAIS_LOGLEVEL$`,
		`(?m)^Address +:12415 +default$`,
		`(?m)^AdminToken +\(set\) +file `,
	} {
		if !regexp.MustCompile(re).Match(out) {
			t.Errorf("config output does not match %s:\n%s", re, out)
		}
	}
	if strings.Contains(string(out), "hunter2") {
		t.Error("config printed the admin token")
	}
	_, errOut, code := runBinary(t, binary, "config", "-config", file, "-jpg-quality", "0", "-log-level", "LOUD")
	if code != 2 || !strings.Contains(errOut, "JPGQuality") || !strings.Contains(errOut, "LogLevel") {
		t.Errorf("bad values: exit %d\n%s", code, errOut)
	}
}

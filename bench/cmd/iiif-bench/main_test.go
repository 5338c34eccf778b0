package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/iiif-proxy/iiif-proxy/bench/harness/report"
)

const info2 = `{"@context":"http://iiif.io/api/image/2/context.json","@id":"http://x/iiif/2/a",
"protocol":"http://iiif.io/api/image","width":1000,"height":700,
"tiles":[{"width":256,"scaleFactors":[1,2,4]}],"profile":["http://iiif.io/api/image/2/level2.json"]}`

func TestRunEndToEnd(t *testing.T) {
	var mu sync.Mutex // protects uris
	uris := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		uris[r.RequestURI] = true
		mu.Unlock()
		w.Header().Set("X-Cache", "HIT")
		if strings.HasSuffix(r.URL.Path, "/info.json") {
			w.Write([]byte(info2))
			return
		}
		w.Write([]byte("jpeg"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	jsonPath, svgPath := filepath.Join(dir, "out.json"), filepath.Join(dir, "out.svg")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"-target", srv.URL + "/iiif/2", "-ids", "a,box 1/b.tif",
		"-workload", "viewer,info", "-n", "300", "-warmup", "0", "-c", "3", "-viewport", "300x200",
		"-json", jsonPath, "-plot", svgPath, "-progress", "0"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	t.Log("\n" + out.String())
	for _, want := range []string{"A: 2 images at " + srv.URL + "/iiif/2 (IIIF 2.1)", "== viewer · closed loop, 3 users", "== info"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	var doc report.Document
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Runs) != 2 || doc.Runs[0].Workload != "viewer" || doc.Runs[1].Targets[0].Tiers[0].Requests != 300 {
		t.Errorf("JSON runs %+v", doc.Runs)
	}
	if svg, err := os.ReadFile(svgPath); err != nil || !bytes.Contains(svg, []byte("<polyline")) {
		t.Errorf("plot: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	// The identifier with a slash and a space travels as one segment, and
	// the viewer sends 2.1 sizes.
	for _, want := range []string{"/iiif/2/box%201%2Fb.tif/info.json", "/iiif/2/a/0,0,512,512/256,/0/default.jpg"} {
		if !uris[want] {
			t.Errorf("server never saw %s", want)
		}
	}
}

func TestRunReportsEveryConfigError(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"-weights", "tile=x", "-viewport", "big", "-workload", "nope"}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"-target is required", "weights", "viewport", "no identifiers", `workload "nope"`} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("errors lack %q:\n%s", want, errb.String())
		}
	}
}

func TestImagesIn(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.tif", "sub/b.JPG", "sub/c.jp2", ".tmp-x.tif", ".hidden/d.tif", "notes.txt"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := imagesIn(dir)
	if want := []string{"a.tif", "sub/b.JPG", "sub/c.jp2"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("imagesIn = %v, %v; want %v", got, err, want)
	}
	ids, err := identifiers(list{"a.tif", "x"}, "", dir)
	if want := []string{"a.tif", "x", "sub/b.JPG", "sub/c.jp2"}; err != nil || !slices.Equal(ids, want) {
		t.Errorf("identifiers = %v, %v; want %v without duplicates", ids, err, want)
	}
}

func pct(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic(err)
	}
	return f
}

const bigInfo = `{"@context":"http://iiif.io/api/image/2/context.json","@id":"http://x/iiif/2/a",
"protocol":"http://iiif.io/api/image","width":12000,"height":9000,
"tiles":[{"width":256,"scaleFactors":[1,2,4,8,16,32,64]}],"profile":["http://iiif.io/api/image/2/level2.json"]}`

func TestTraceGenReplaySim(t *testing.T) {
	// A server that caches everything forever: its hit ratio is the
	// compulsory bound, which the simulator must report for it too.
	var mu sync.Mutex // protects seen
	seen := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/info.json") {
			w.Write([]byte(bigInfo))
			return
		}
		mu.Lock()
		hit := seen[r.URL.Path]
		seen[r.URL.Path] = true
		mu.Unlock()
		w.Header().Set("X-Cache", map[bool]string{true: "HIT", false: "MISS"}[hit])
		w.Header().Set("X-Cache-Tier", "tile")
		w.Write(bytes.Repeat([]byte("j"), 100+len(r.URL.Path)))
	}))
	defer srv.Close()
	dir := t.TempDir()
	tr, recs := filepath.Join(dir, "t.txt"), filepath.Join(dir, "r.csv")
	cmd := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		return out.String()
	}
	gen := []string{"trace", "gen", "-target", srv.URL + "/iiif/2", "-ids", "a,b", "-n", "600", "-users", "3",
		"-viewport", "300x200", "-crawl", "0.1", "-seed", "4"}
	cmd(append(gen, "-o", tr)...)
	again := cmd(gen...) // to stdout
	first, err := os.ReadFile(tr)
	if err != nil || string(first) != again {
		t.Fatalf("the same options gave another trace (%v)", err)
	}
	if !strings.HasPrefix(again, "# iiif-bench trace: requests=600 users=3 seed=4 skew=1 points=32 crawl=0.1") ||
		!strings.Contains(again, "\tcrawl\n") {
		t.Errorf("trace:\n%.300s", again)
	}
	out := cmd("trace", "replay", "-target", srv.URL+"/iiif/2", "-trace", tr, "-rate", "0", "-c", "2",
		"-records", recs, "-progress", "0")
	t.Log("\n" + out)
	if !strings.Contains(out, "replayed 600 of 600 requests") {
		t.Errorf("replay output:\n%s", out)
	}
	out = cmd("trace", "sim", "-trace", tr, "-records", recs, "-budget", "100%,5%")
	t.Log("\n" + out)
	// With room for everything every policy meets the bound, and so did
	// the server (shown with the first budget only); 5% leaves LRU below it.
	var bound, server, lru []string
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(strings.TrimSpace(line), "compulsory bound"):
			bound = append(bound, f[4])
		case strings.HasPrefix(strings.TrimSpace(line), "server (replay)"):
			server = append(server, f[4])
		case strings.HasPrefix(strings.TrimSpace(line), "LRU"):
			lru = append(lru, f[3])
		}
	}
	if len(bound) != 2 || len(server) != 1 || server[0] != bound[0] || len(lru) != 2 || lru[0] != bound[0] ||
		pct(lru[1]) >= pct(bound[1]) || pct(lru[1]) == 0 {
		t.Fatalf("bound %v, server %v, LRU %v", bound, server, lru)
	}
	if !strings.Contains(out, "(sizes: ") || !strings.Contains(out, "0 from the model)") ||
		!strings.Contains(out, "LRU") || !strings.Contains(out, "1.000") || !strings.Contains(out, "NP-hard") {
		t.Errorf("sim output:\n%s", out)
	}
}

func TestTraceReportsEveryConfigError(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"trace", "gen", "-crawl", "1", "-viewport", "x", "-n", "0"},
			[]string{"-target is required", "viewport", "no identifiers", "requests 0", "crawl 1"}},
		{[]string{"trace", "replay", "-rate", "-1", "-c", "0"}, []string{"-target is required", "-trace is required", "-c 0"}},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &errb); code != 1 {
			t.Errorf("%v: exit %d", tc.args, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(errb.String(), w) {
				t.Errorf("%v: errors lack %q:\n%s", tc.args, w, errb.String())
			}
		}
	}
	dir := t.TempDir()
	tr := filepath.Join(dir, "t.txt")
	if err := os.WriteFile(tr, []byte("a/0,0,256,256/256,256/0/default.jpg\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"trace", "sim", "-trace", tr, "-budget", "5%,bogus", "-policies", "LRU,MRU"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), `budget "bogus"`) || !strings.Contains(errb.String(), `policy "MRU"`) ||
		strings.Contains(out.String(), "policy") {
		t.Errorf("sim with a bad budget and policy: exit %d, %s%s", code, out.String(), errb.String())
	}
}

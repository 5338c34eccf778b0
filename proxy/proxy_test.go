//go:build cgo

package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/renderer/vips"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

var tilePath string

func TestMain(m *testing.M) {
	if err := vips.Startup(vips.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "proxy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tilePath = dir
	code := func() int {
		for _, f := range []struct {
			name, layout string
			w, h         int
		}{
			{"pattern", vips.PyramidTIFF, 1200, 900},
			{"sub dir/img", vips.PNG, 400, 300},
			{"✓", vips.PNG, 40, 30},
		} {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f.name)), 0o755); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			if _, err := vips.Generate(filepath.Join(dir, f.name), vips.Pattern, f.layout, f.w, f.h, 1); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "broken.jpg"), []byte("not an image"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.RemoveAll(dir)
	vips.Shutdown()
	os.Exit(code)
}

// serve starts a proxy on a loopback port and returns its base URL.
func serve(t *testing.T, cfg Config, rcfg vips.Config) string {
	t.Helper()
	if rcfg.TilePath == "" {
		rcfg.TilePath = tilePath
	}
	r, err := vips.New(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p, err := New(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + serveLoopback(t, p, nil, func() { r.Close() })
}

var client = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, body}
}

func get(t *testing.T, url string) response { return do(t, http.MethodGet, url, nil) }

func TestInfoJSONVersion3(t *testing.T) {
	base := serve(t, Config{}, vips.Config{Limits: rules.Limits{MaxArea: 4_000_000, MaxWidth: 3000}})
	r := get(t, base+"/iiif/3/pattern.tif/info.json")
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, clip(r.body))
	}
	checkHeader(t, r, "Content-Type", "application/json")
	checkHeader(t, r, "Access-Control-Allow-Origin", "*")
	checkHeader(t, r, "Link", `<http://iiif.io/api/image/3/context.json>;rel="http://www.w3.org/ns/json-ld#context";type="application/ld+json"`)
	if r.header.Get("Last-Modified") == "" {
		t.Error("no Last-Modified")
	}
	var info struct {
		Context       string `json:"@context"`
		ID            string `json:"id"`
		Type          string `json:"type"`
		Protocol      string `json:"protocol"`
		Profile       string `json:"profile"`
		Width, Height int
		MaxWidth      int   `json:"maxWidth"`
		MaxHeight     int   `json:"maxHeight"`
		MaxArea       int64 `json:"maxArea"`
		Sizes         []struct{ Width, Height int }
		Tiles         []struct {
			Width, Height int
			ScaleFactors  []int
		}
		ExtraFormats   []string `json:"extraFormats"`
		ExtraQualities []string `json:"extraQualities"`
		ExtraFeatures  []string `json:"extraFeatures"`
	}
	if err := json.Unmarshal(r.body, &info); err != nil {
		t.Fatal(err)
	}
	if info.Context != "http://iiif.io/api/image/3/context.json" || info.Type != "ImageService3" ||
		info.Protocol != "http://iiif.io/api/image" || info.Profile != "level2" {
		t.Errorf("identity fields: %+v", info)
	}
	if info.ID != base+"/iiif/3/pattern.tif" {
		t.Errorf("id = %q, want %q", info.ID, base+"/iiif/3/pattern.tif")
	}
	if info.Width != 1200 || info.Height != 900 {
		t.Errorf("size %d×%d", info.Width, info.Height)
	}
	if info.MaxWidth != 3000 || info.MaxHeight != 900 || info.MaxArea != 4_000_000 {
		t.Errorf("limits %d %d %d", info.MaxWidth, info.MaxHeight, info.MaxArea)
	}
	if len(info.Tiles) != 1 || info.Tiles[0].Width != 256 || fmt.Sprint(info.Tiles[0].ScaleFactors) != "[1 2 4 8]" {
		t.Errorf("tiles %+v, want 256 px with the pyramid's factors [1 2 4 8]", info.Tiles)
	}
	if fmt.Sprint(info.Sizes) != "[{150 113} {300 225} {600 450} {1200 900}]" {
		t.Errorf("sizes %v", info.Sizes)
	}
	for _, want := range [][]string{{"webp", "gif", "tif"}, {"color", "gray", "bitonal"}} {
		got := append(info.ExtraFormats, info.ExtraQualities...)
		for _, w := range want {
			if !strings.Contains(strings.Join(got, " "), w) {
				t.Errorf("%q missing from extraFormats/extraQualities", w)
			}
		}
	}
	if !strings.Contains(strings.Join(info.ExtraFeatures, " "), "rotationArbitrary") {
		t.Errorf("extraFeatures %v", info.ExtraFeatures)
	}
}

// clip keeps failure messages short when a body is an image.
func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

func checkHeader(t *testing.T, r response, name, want string) {
	t.Helper()
	if got := r.header.Get(name); got != want {
		t.Errorf("%s = %q, want %q", name, got, want)
	}
}

func TestInfoJSONVersion2AndBaseURL(t *testing.T) {
	base := serve(t, Config{BaseURL: "https://images.example.org/", WebPath: "/img/"}, vips.Config{})
	r := get(t, base+"/img/2/pattern.tif/info.json")
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, clip(r.body))
	}
	var info map[string]any
	if err := json.Unmarshal(r.body, &info); err != nil {
		t.Fatal(err)
	}
	if info["@context"] != "http://iiif.io/api/image/2/context.json" || info["@id"] != "https://images.example.org/img/2/pattern.tif" {
		t.Errorf("@context/@id: %v %v", info["@context"], info["@id"])
	}
	prof, _ := info["profile"].([]any)
	if len(prof) != 2 || prof[0] != "http://iiif.io/api/image/2/level2.json" {
		t.Fatalf("profile %v", info["profile"])
	}
	extra, _ := prof[1].(map[string]any)
	if fmt.Sprint(extra["formats"]) != "[jpg png webp gif tif]" || !strings.Contains(fmt.Sprint(extra["supports"]), "mirroring") {
		t.Errorf("profile extras %v", extra)
	}
	ld := do(t, http.MethodGet, base+"/img/2/pattern.tif/info.json", map[string]string{"Accept": "application/ld+json"})
	checkHeader(t, ld, "Content-Type", `application/ld+json;profile="http://iiif.io/api/image/2/context.json"`)
	if ld.header.Get("Link") != "" {
		t.Errorf("JSON-LD response carries a context Link header: %q", ld.header.Get("Link"))
	}
}

func TestBareIdentifierRedirectsToInfo(t *testing.T) {
	base := serve(t, Config{}, vips.Config{})
	for _, v := range []string{"2", "3"} {
		r := get(t, base+"/iiif/"+v+"/sub%20dir%2Fimg.png")
		if r.status != http.StatusSeeOther {
			t.Fatalf("status %d: %s", r.status, clip(r.body))
		}
		checkHeader(t, r, "Location", base+"/iiif/"+v+"/sub%20dir%2Fimg.png/info.json")
	}
}

func TestImageResponse(t *testing.T) {
	base := serve(t, Config{}, vips.Config{})
	url := base + "/iiif/3/pattern.tif/pct:0,0,50,50/!300,300/0/default.jpg"
	r := get(t, url)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, clip(r.body))
	}
	checkHeader(t, r, "Content-Type", "image/jpeg")
	checkHeader(t, r, "Access-Control-Allow-Origin", "*")
	checkHeader(t, r, "Link", `<http://iiif.io/api/image/3/level2.json>;rel="profile",<`+base+`/iiif/3/pattern.tif/0,0,600,450/300,225/0/default.jpg>;rel="canonical"`)
	cfg, format, err := image.DecodeConfig(bytes.NewReader(r.body))
	if err != nil || format != "jpeg" || cfg.Width != 300 || cfg.Height != 225 {
		t.Errorf("body: %v %s %d×%d, want a 300×225 jpeg", err, format, cfg.Width, cfg.Height)
	}

	head := do(t, http.MethodHead, url, nil)
	if head.status != http.StatusOK || len(head.body) != 0 {
		t.Errorf("HEAD: status %d, %d body bytes", head.status, len(head.body))
	}
	for _, h := range []string{"Content-Type", "Link", "Last-Modified", "Access-Control-Allow-Origin"} {
		if head.header.Get(h) != r.header.Get(h) {
			t.Errorf("HEAD %s = %q, GET has %q", h, head.header.Get(h), r.header.Get(h))
		}
	}
	if head.header.Get("Content-Length") != fmt.Sprint(len(r.body)) {
		t.Errorf("HEAD Content-Length %q, GET body %d bytes", head.header.Get("Content-Length"), len(r.body))
	}

	cond := do(t, http.MethodGet, url, map[string]string{"If-Modified-Since": r.header.Get("Last-Modified")})
	if cond.status != http.StatusNotModified || len(cond.body) != 0 {
		t.Errorf("If-Modified-Since: status %d, %d bytes; want 304", cond.status, len(cond.body))
	}

	png := get(t, base+"/iiif/2/%E2%9C%93.png/full/full/0/default.png")
	if png.status != http.StatusOK {
		t.Fatalf("percent-encoded unicode id: status %d: %s", png.status, clip(png.body))
	}
	checkHeader(t, png, "Content-Type", "image/png")
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(png.body)); err != nil || cfg.Width != 40 {
		t.Errorf("png %v %v", cfg, err)
	}
	sub := get(t, base+"/iiif/3/sub%20dir%2Fimg.png/full/max/0/default.png")
	if sub.status != http.StatusOK {
		t.Errorf("sub%%20dir%%2Fimg.png: status %d: %s", sub.status, clip(sub.body))
	}
}

func TestOptionsAndMethods(t *testing.T) {
	base := serve(t, Config{}, vips.Config{})
	r := do(t, http.MethodOptions, base+"/iiif/3/pattern.tif/info.json", map[string]string{
		"Origin": "https://viewer.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "range"})
	if r.status != http.StatusNoContent {
		t.Errorf("OPTIONS status %d", r.status)
	}
	checkHeader(t, r, "Access-Control-Allow-Origin", "*")
	checkHeader(t, r, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	checkHeader(t, r, "Access-Control-Allow-Headers", "range")
	p := do(t, http.MethodPost, base+"/iiif/3/pattern.tif/info.json", nil)
	if p.status != http.StatusMethodNotAllowed {
		t.Errorf("POST status %d", p.status)
	}
	checkHeader(t, p, "Allow", "GET, HEAD, OPTIONS")
}

func TestBadRequestsNameTheProblem(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(tilePath, "pattern.tif"), filepath.Join(dir, "escape.tif")); err != nil {
		t.Fatal(err)
	}
	inner := filepath.Join(dir, "inner")
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(tilePath, "pattern.tif"), filepath.Join(inner, "out.tif")); err != nil {
		t.Fatal(err)
	}
	base := serve(t, Config{}, vips.Config{Limits: rules.Limits{MaxArea: 10_000_000, MaxWidth: 5000, MaxHeight: 5000}})
	jail := serve(t, Config{}, vips.Config{TilePath: inner})
	tests := []struct {
		name   string
		url    string
		status int
		body   string
	}{
		{"zero width", base + "/iiif/3/pattern.tif/full/0,/0/default.jpg", 400, `size "0,"`},
		{"v3 full size", base + "/iiif/3/pattern.tif/full/full/0/default.jpg", 400, `size "full"`},
		{"v2 upscale syntax", base + "/iiif/2/pattern.tif/full/^max/0/default.jpg", 400, `size "^max"`},
		{"region outside", base + "/iiif/3/pattern.tif/5000,0,10,10/max/0/default.jpg", 400, `region "5000,0,10,10"`},
		{"upscale without ^", base + "/iiif/3/pattern.tif/0,0,100,100/200,/0/default.jpg", 400, `size "200,"`},
		{"bad rotation", base + "/iiif/3/pattern.tif/full/max/400/default.jpg", 400, `rotation "400"`},
		{"bad quality", base + "/iiif/3/pattern.tif/full/max/0/sepia.jpg", 400, `quality`},
		{"bad format", base + "/iiif/3/pattern.tif/full/max/0/default.bmp", 400, `format`},
		// An identifier with a raw "/" names no image: 404, as the IIIF validator expects.
		{"unencoded slash", base + "/iiif/3/sub dir/img.png/full/max/0/default.png", 404, "%2F"},
		{"over the area limit", base + "/iiif/3/pattern.tif/full/^20000,/0/default.jpg", 400, "size"},
		{"missing image", base + "/iiif/3/nothing.tif/info.json", 404, "no image"},
		{"encoded dot-dot", base + "/iiif/3/%2E%2E%2Fetc%2Fpasswd/info.json", 404, "no image"},
		{"absolute path", base + "/iiif/3/%2Fetc%2Fpasswd/info.json", 404, "no image"},
		{"symlink out of the tree", jail + "/iiif/3/out.tif/info.json", 404, "no image"},
		{"not an image", base + "/iiif/3/broken.jpg/full/max/0/default.jpg", 422, "cannot be decoded: it is not in a format this server reads"},
		{"unknown version", base + "/iiif/4/pattern.tif/info.json", 404, "/iiif/3/"},
		{"outside the web path", base + "/other/pattern.tif", 404, "/iiif/3/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, tt.url)
			if r.status != tt.status || !strings.Contains(string(r.body), tt.body) {
				t.Errorf("GET %s = %d %q; want %d containing %q", tt.url, r.status, clip(r.body), tt.status, tt.body)
			}
			checkHeader(t, r, "Access-Control-Allow-Origin", "*")
			if r.header.Get("Last-Modified") != "" {
				t.Error("an error response carries Last-Modified")
			}
		})
	}
}

func TestStatusMapping(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{&rules.Error{Segment: "size", Value: "0,", Reason: "width must be > 0"}, 400},
		{fmt.Errorf("wrapped: %w", renderer.ErrNotFound), 404},
		{&renderer.SourceError{ID: "x", Detail: "VipsJpeg: premature end"}, 422},
		{renderer.ErrOverloaded, 503},
		{renderer.ErrSourceChanged, 503},
		{errors.New("something unexpected"), 500},
	}
	for _, tt := range tests {
		if got, msg := status(tt.err); got != tt.want {
			t.Errorf("status(%v) = %d (%s), want %d", tt.err, got, msg, tt.want)
		}
	}
	if _, msg := status(&renderer.SourceError{ID: "x", Detail: "secret path /proc/self/fd/7"}); strings.Contains(msg, "/proc") {
		t.Errorf("the public message leaks the detail: %q", msg)
	}
}

//go:build cgo

package proxy

import (
	"bytes"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/renderer/vips"
)

// brokenSources writes truncated and corrupt JPEG, stripped and tiled TIFF,
// PNG and JPEG 2000 files into a new directory and returns their names.
func brokenSources(t *testing.T) (dir string, names []string) {
	t.Helper()
	dir = t.TempDir()
	for _, l := range []struct{ name, layout string }{
		{"jpeg", vips.PlainJPEG}, {"strip", vips.StripTIFF}, {"tiled", vips.PyramidTIFF},
		{"png", vips.PNG}, {"jp2", vips.JP2},
	} {
		file, err := vips.Generate(filepath.Join(t.TempDir(), l.name), vips.Pattern, l.layout, 1200, 900, 1)
		if err != nil {
			t.Fatal(err)
		}
		full, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		ext := filepath.Ext(file)
		cut := len(full) / 2
		if l.name == "jp2" {
			cut = 1500 // as found: head -c 1500 page-jp2.jp2
		}
		bad := bytes.Clone(full)
		for i := len(bad) / 4; i < len(bad)*3/4; i++ {
			bad[i] = byte(i*131 + 7)
		}
		for name, b := range map[string][]byte{"trunc-" + l.name + ext: full[:cut], "corrupt-" + l.name + ext: bad} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
			names = append(names, name)
		}
	}
	return dir, names
}

// TestBrokenSourcesAre422AndNeverCached requests every broken file three
// times in several tiers: each answer is a 422, and no tier stores anything.
// (A truncated JPEG 2000 used to answer 422, then 200 with a black image
// that was then cached.)
func TestBrokenSourcesAre422AndNeverCached(t *testing.T) {
	dir, names := brokenSources(t)
	cp := serveCached(t, dir, 0, "")
	for _, id := range names {
		for _, path := range []string{"/full/256,/0/default.jpg", "/full/max/0/default.png", "/full/max/90/default.jpg"} {
			for i := range 3 {
				r := get(t, cp.base+id+path)
				if r.status != http.StatusUnprocessableEntity {
					t.Errorf("%s%s, request %d: %d %s, want 422", id, path, i+1, r.status, clip(r.body))
				}
			}
		}
	}
	for tr, s := range cp.stores {
		if st := s.Stats(); st.Puts != 0 || st.Entries != 0 {
			t.Errorf("tier %d stored %d entries of broken sources", tr, st.Puts)
		}
	}
}

// TestReplacedFileWithTheSameMtimeIsRevalidatedInEveryTier replaces a
// source in place with other pixels of the same length and puts its
// modification time back (as cp -p, rsync -a or tar x do): once the entries
// are due for revalidation, every tier serves the new pixels.
func TestReplacedFileWithTheSameMtimeIsRevalidatedInEveryTier(t *testing.T) {
	src := t.TempDir()
	na, err := vips.Generate(filepath.Join(src, "a"), vips.Pattern, "tif", 300, 200, 1)
	if err != nil {
		t.Fatal(err)
	}
	nb, err := vips.Generate(filepath.Join(src, "b"), vips.Scan, "tif", 300, 200, 2)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(na)
	b, _ := os.ReadFile(nb)
	for len(a) < len(b) { // TIFF readers ignore bytes no offset points to
		a = append(a, 0)
	}
	for len(b) < len(a) {
		b = append(b, 0)
	}
	dir := t.TempDir()
	name := filepath.Join(dir, "img.tif")
	mtime := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.WriteFile(name, a, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(name, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	cp := serveCached(t, dir, time.Millisecond, "")
	urls := map[string]string{
		"tile":      cp.base + "img.tif/0,0,128,128/128,/0/default.jpg",
		"thumbnail": cp.base + "img.tif/full/100,/0/default.jpg",
		"info":      cp.base + "img.tif/info.json",
		"other":     cp.base + "img.tif/0,0,200,150/max/90/default.png", // rotated: not a tile
	}
	first := map[string]response{}
	for tier, u := range urls {
		r := get(t, u)
		if r.status != 200 || r.header.Get("X-Cache") != "MISS" || r.header.Get("X-Cache-Tier") != tier {
			t.Fatalf("%s: %d %s %s", tier, r.status, r.header.Get("X-Cache"), r.header.Get("X-Cache-Tier"))
		}
		first[tier] = r
	}
	time.Sleep(2 * time.Millisecond) // past the Revalidate age (1ms)
	for tier, u := range urls {
		if r := get(t, u); r.header.Get("X-Cache") != "REVALIDATED" || !bytes.Equal(r.body, first[tier].body) {
			t.Fatalf("%s unchanged: %s, want REVALIDATED and the same bytes", tier, r.header.Get("X-Cache"))
		}
	}

	if err := os.WriteFile(name, b, 0o644); err != nil { // same inode, same length
		t.Fatal(err)
	}
	if err := os.Chtimes(name, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	for tier, u := range urls {
		r := get(t, u)
		if r.status != 200 || r.header.Get("X-Cache") != "MISS" {
			t.Errorf("%s after the replacement: %d %s, want 200 MISS", tier, r.status, r.header.Get("X-Cache"))
		}
		if tier != "info" && bytes.Equal(r.body, first[tier].body) {
			t.Errorf("%s after the replacement: the old pixels", tier)
		}
		if r.header.Get("Last-Modified") != first[tier].header.Get("Last-Modified") {
			t.Errorf("%s: Last-Modified moved although the mtime was kept", tier)
		}
	}
	// The thumbnail's top-left is no longer the pattern's red.
	img, _, err := image.Decode(bytes.NewReader(get(t, urls["thumbnail"]).body))
	if err != nil {
		t.Fatal(err)
	}
	if r, g, b, _ := img.At(5, 5).RGBA(); r>>8 > 200 && g>>8 < 60 && b>>8 < 60 {
		t.Errorf("thumbnail pixel still red after the replacement")
	}
}

// TestAbandonedRenderIsCancelled: a render whose only client gave up (a 503
// at RenderTimeout) is killed, not run to the end: its worker is free again
// long before the render could have finished.
func TestAbandonedRenderIsCancelled(t *testing.T) {
	cp := serveWith(t, vips.Config{TilePath: tilePath, Concurrency: 1},
		Config{RenderWait: 100 * time.Millisecond, RenderTimeout: 300 * time.Millisecond}, 0, "", false)
	// About 400 megapixels of PNG: minutes of work on one core.
	r := get(t, cp.base+"pattern.tif/full/^24000,/0/default.png")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("status %d, want 503 with Retry-After after RenderTimeout", r.status)
	}
	deadline := time.Now().Add(30 * time.Second) // bounds the wait; a kill takes well under a second
	for s := cp.r.Stats(); s.Cancelled != 1 || s.InFlight != 0; s = cp.r.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("30 s after its client left the render still runs: %+v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The worker serves the next request.
	if r := get(t, cp.base+"pattern.tif/0,0,256,256/256,/0/default.jpg"); r.status != 200 {
		t.Errorf("next request: %d", r.status)
	}
	if m := get(t, cp.admin+"/metrics"); !strings.Contains(string(m.body), "iiif_renders_cancelled_total 1") {
		t.Errorf("metrics do not count the cancelled render")
	}
}

// TestRenderLimitsAtTheEdge: rotation cannot get past the output limits, and
// an untiled source over MaxSourcePixels is a 422 that says what to do.
func TestRenderLimitsAtTheEdge(t *testing.T) {
	rcfg := vips.Config{TilePath: tilePath, MaxSourcePixels: 100_000}
	rcfg.Limits.MaxWidth = 500
	cp := serveWith(t, rcfg, Config{}, 0, "", true)
	r := get(t, cp.base+"pattern.tif/full/500,/45/default.jpg")
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `size "500,": rotated by 45°`) {
		t.Errorf("explicit size over the limit once rotated: %d %s", r.status, clip(r.body))
	}
	r = get(t, cp.base+"pattern.tif/full/max/45/default.png")
	if r.status != 200 {
		t.Fatalf("max at 45°: %d %s", r.status, clip(r.body))
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(r.body))
	if err != nil || cfg.Width > 500 {
		t.Errorf("max at 45°: %d pixels wide (%v), limit 500", cfg.Width, err)
	}
	for range 2 {
		r = get(t, cp.base+"sub%20dir%2Fimg.png/full/100,/0/default.jpg") // 400×300 PNG: 120,000 pixels
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), "MaxSourcePixels") {
			t.Errorf("untiled source over MaxSourcePixels: %d %s", r.status, clip(r.body))
		}
	}
	if s := cp.r.Stats(); s.Failures != 0 {
		t.Errorf("%d renders failed: the refusal must come before decoding", s.Failures)
	}
}

package vips

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gif1x1 is a 1×1 GIF89a (one white pixel), the smallest file of the one
// promised format the fixtures do not include.
var gif1x1 = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// TestOnlyThePromisedFormatsAreDecoded: files that Debian's libvips could
// read through loaders iiif-proxy does not offer (PPM, SVG through librsvg,
// CSV, a matrix file) are SourceErrors (422), not images; a GIF, which is
// offered, renders. Before restrictLoaders each of these rendered.
func TestOnlyThePromisedFormatsAreDecoded(t *testing.T) {
	dir := t.TempDir()
	refused := map[string]string{
		"p.ppm": "P6\n4 4\n255\n" + strings.Repeat("\x80\x40\x20", 16),
		"s.svg": `<svg xmlns="http://www.w3.org/2000/svg" width="4000" height="4000"><rect width="4000" height="4000" fill="red"/></svg>`,
		"c.csv": "1,2,3\n4,5,6\n",
		"m.mat": "2 2\n1 2\n3 4\n",
	}
	for name, body := range refused {
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	must(t, os.WriteFile(filepath.Join(dir, "g.gif"), gif1x1, 0o644))
	v := newVips(t, Config{TilePath: dir})
	for name := range refused {
		src, err := v.Info(context.Background(), name)
		var se *SourceError
		if !errors.As(err, &se) {
			t.Errorf("%s: Info = %+v, %v; want a SourceError (a format this server does not read)", name, src, err)
		} else if !strings.Contains(se.Reason(), "not in a format this server reads") {
			t.Errorf("%s: the client is told %q (detail %q)", name, se.Reason(), se.Detail)
		}
	}
	src, err := v.Info(context.Background(), "g.gif")
	must(t, err)
	img, err := v.Render(context.Background(), src, resolve(t, src, "g.gif/full/max/0/default.png"))
	must(t, err)
	if len(img.Body) == 0 {
		t.Fatal("the GIF rendered to nothing")
	}
}

// TestReasonsFromRealDecoderMessages ties SourceError.Reason's words to
// what this libvips says: a truncated JPEG is "truncated", noise "not in a
// format", a TIFF whose header libtiff rejects "damaged, or not in a
// format", and every other damaged fixture gets some reason.
func TestReasonsFromRealDecoderMessages(t *testing.T) {
	dir, names := damaged(t)
	must(t, os.WriteFile(filepath.Join(dir, "noise.jpg"), []byte("not an image at all"), 0o644))
	v := newVips(t, Config{TilePath: dir})
	want := map[string]string{
		"noise.jpg":         "not in a format",
		"trunc-jpeg.jpg":    "truncated",
		"trunc-pyramid.tif": "truncated or damaged", // libtiff refuses it; the log says it starts as a TIFF
	}
	for _, n := range names {
		if _, ok := want[n]; !ok {
			want[n] = "" // any reason, but one
		}
	}
	for id, words := range want {
		src, err := v.Info(context.Background(), id)
		if err == nil {
			_, err = v.Render(context.Background(), src, resolve(t, src, "x/full/max/0/default.jpg"))
		}
		var se *SourceError
		if !errors.As(err, &se) {
			t.Errorf("%s: %v, want a SourceError", id, err)
			continue
		}
		if r := se.Reason(); r == "" || !strings.Contains(r, words) {
			t.Errorf("%s: reason %q for detail %q; want %q", id, r, se.Detail, words)
		} else {
			t.Logf("%s: %q (%s)", id, r, se.Detail)
		}
	}
}

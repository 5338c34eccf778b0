package vips

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/davidbyttow/govips/v2/vips"
)

// fromSOF is a JPEG file from its frame header on: the quantisation tables
// and the entropy-coded data, everything but the APPn header segments.
func fromSOF(t *testing.T, b []byte) []byte {
	t.Helper()
	i := bytes.Index(b, []byte{0xFF, 0xDB}) // DQT
	if i < 0 {
		t.Fatal("no DQT segment")
	}
	return b[i:]
}

// The calling-thread encoder (direct.c) writes the JPEG vips_jpegsave
// would: same tables, sampling and coefficients, for colour and gray, below
// and above Q90.
func TestDirectJPEGMatchesVipsJPEGSave(t *testing.T) {
	for _, q := range []int{75, 92} {
		v := newVips(t, Config{JPGQuality: q})
		for _, path := range []string{
			"x/100,100,256,256/256,/0/default.jpg",
			"x/100,100,256,256/256,/0/gray.jpg",
			"x/full/600,/0/default.jpg",
		} {
			img, _ := render(t, v, ids["pyramid"], path)
			png := path[:len(path)-3] + "png"
			_, d := render(t, v, ids["pyramid"], png)
			want, _, err := d.img.ExportJpeg(&vips.JpegExportParams{Quality: q, StripMetadata: true})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(fromSOF(t, img.Body), fromSOF(t, want)) {
				t.Errorf("Q%d %s: %d bytes differ from vips_jpegsave's %d", q, path, len(img.Body), len(want))
			}
		}
	}
}

// A stored tile that cannot pass through (pass-through off, or an Adobe RGB
// tile in convert mode) is transcoded without libvips (transcode.go) into
// the very JPEG the libvips pipeline makes.
func TestTranscodedTileMatchesTheLibvipsRender(t *testing.T) {
	needProfiles(t)
	dir, err := colourFixtures()
	if err != nil {
		t.Fatal(err)
	}
	v := newVips(t, Config{TilePath: dir})
	for _, tc := range []struct{ id, path string }{
		{"plain-pyr.tif", "x/256,256,256,256/256,/0/default.jpg"},
		{"adobe-pyr.tif", "x/256,0,256,256/256,/0/default.jpg"},
		{"srgb-pyr.tif", "x/0,256,256,256/256,/0/color.jpg"},
	} {
		before := v.Stats()
		fast, _ := render(t, v, tc.id, tc.path)
		if s := v.Stats(); s.Passthrough != before.Passthrough || s.Renders != before.Renders+1 {
			t.Fatalf("%s: stats %+v → %+v", tc.id, before, s)
		}
		testNoTranscode = true
		slow, _ := render(t, v, tc.id, tc.path)
		testNoTranscode = false
		if !bytes.Equal(fromSOF(t, fast.Body), fromSOF(t, slow.Body)) {
			t.Errorf("%s %s: transcoded tile (%d bytes) differs from the libvips render (%d)", tc.id, tc.path, len(fast.Body), len(slow.Body))
		}
	}
}

// Partial edge tiles that cannot pass through (an Adobe RGB pyramid in
// convert mode; pass-through off) are transcoded too, top-left part of the
// padded stored tile, into the very JPEG the libvips pipeline makes.
func TestTranscodedEdgeTilesMatchTheLibvipsRender(t *testing.T) {
	needProfiles(t)
	dir := t.TempDir()
	var files []string
	for _, f := range []struct {
		name string
		px   Pixels
	}{{"adobe-odd", Pixels{Profile: adobeRGB, Convert: true}}, {"plain-odd", Pixels{}}} {
		// Odd sizes: partial tiles on the right and bottom of every level.
		name, err := GenerateWith(filepath.Join(dir, f.name), Scan, PyramidTIFF, 1001, 777, 2, f.px)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.Base(name))
	}
	v := newVips(t, Config{TilePath: dir, TilePassthrough: true, ColourProfiles: ColourConvert})
	off := newVips(t, Config{TilePath: dir, ColourProfiles: ColourConvert})
	n := 0
	for _, id := range files {
		for _, r := range []*Vips{v, off} {
			rs, err := r.Info(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			src, _ := sourceOf(rs)
			if r == v && src.colour.kind == profileNone {
				continue // untagged tiles pass through when it is on
			}
			for _, e := range edgeTiles(t, src) {
				n++
				t.Run(fmt.Sprintf("%s passthrough=%v level %d %s", id, r.cfg.TilePassthrough, e.levelIndex, e.path), func(t *testing.T) {
					before, tc := r.Stats(), transcoded.Load()
					fast, got := render(t, r, id, e.path) // checks the size
					if s := r.Stats(); s.Passthrough != before.Passthrough || transcoded.Load() != tc+1 {
						t.Fatalf("not transcoded: stats %+v → %+v", before, s)
					}
					testNoTranscode = true
					slow, want := render(t, r, id, e.path)
					testNoTranscode = false
					if !bytes.Equal(fromSOF(t, fast.Body), fromSOF(t, slow.Body)) {
						t.Errorf("transcoded (%d bytes) differs from the libvips render (%d) by up to %d per sample",
							len(fast.Body), len(slow.Body), maxPixelDiff(t, got, want, false, false))
					}
				})
			}
		}
	}
	if n < 12 {
		t.Fatalf("only %d edge tiles found: the fixtures no longer have partial edges", n)
	}
}

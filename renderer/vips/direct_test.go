package vips

import (
	"bytes"
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

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

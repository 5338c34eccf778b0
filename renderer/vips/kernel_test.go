package vips

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/davidbyttow/govips/v2/vips"
)

// TestReductionsUseTheLinearKernelUpscalesBicubic pins the resize kernels
// (shim.c): a reduction from the level read is libvips' linear (triangle)
// kernel, an upscale bicubic, pixel for pixel what vips_resize makes with
// that kernel from the same level. The other kernel gives other pixels, so
// the test tells them apart.
func TestReductionsUseTheLinearKernelUpscalesBicubic(t *testing.T) {
	// Scan-like pixels: on the flat cells of the pattern every kernel
	// gives the same result.
	dir := t.TempDir()
	file, err := Generate(filepath.Join(dir, "scan"), Scan, PyramidTIFF, 1200, 900, 1)
	must(t, err)
	id := filepath.Base(file)
	v := newVips(t, Config{TilePath: dir})
	src, err := v.Info(context.Background(), id)
	must(t, err)
	for _, tc := range []struct {
		path        string
		page        int // the level read: half size for 500 px of 1200
		want, other vips.Kernel
	}{
		{"x/full/500,/0/default.png", 1, vips.KernelLinear, vips.KernelCubic},
		{"x/full/^1500,/0/default.png", 0, vips.KernelCubic, vips.KernelLinear},
	} {
		img, err := v.Render(context.Background(), src, resolve(t, src, tc.path))
		must(t, err)
		d := decode(t, img.Body)
		got := pixels(t, d)
		ref := func(k vips.Kernel) []byte {
			p := vips.NewImportParams()
			p.Page.Set(tc.page)
			lv, err := vips.LoadImageFromFile(file, p)
			must(t, err)
			defer lv.Close()
			must(t, lv.ResizeWithVScale(float64(d.w)/float64(lv.Width()), float64(d.h)/float64(lv.Height()), k))
			if lv.Width() != d.w || lv.Height() != d.h {
				t.Fatalf("%s: reference %d×%d, rendered %d×%d", tc.path, lv.Width(), lv.Height(), d.w, d.h)
			}
			b, err := lv.ToBytes()
			must(t, err)
			return b
		}
		want, other := ref(tc.want), ref(tc.other)
		if bytes.Equal(want, other) {
			t.Fatalf("%s: kernels %v and %v give the same pixels: the test cannot tell them apart", tc.path, tc.want, tc.other)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: pixels differ from vips_resize's with kernel %v (same as kernel %v's: %v)",
				tc.path, tc.want, tc.other, bytes.Equal(got, other))
		}
	}
}

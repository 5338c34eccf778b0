package vips

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/davidbyttow/govips/v2/vips"
)

// edgeTile is a request for a partial tile on a level's right or bottom
// edge, and where the stored tile is.
type edgeTile struct {
	path       string
	lv         Level
	col, row   int
	w, h       int
	levelIndex int
}

// edgeTiles lists, for every TIFF level of src with partial edge tiles,
// the tile on its right edge, its bottom edge and its corner, as IIIF
// requests that plan maps onto exactly those tiles (checked).
func edgeTiles(t *testing.T, src *source) []edgeTile {
	t.Helper()
	var out []edgeTile
	for i, lv := range src.Levels {
		d := lv.ifd
		if d == nil || (lv.Width%d.TileWidth == 0 && lv.Height%d.TileHeight == 0) {
			continue
		}
		lastCol, lastRow := (lv.Width-1)/d.TileWidth, (lv.Height-1)/d.TileHeight
		for _, cr := range [][2]int{{lastCol, 0}, {0, lastRow}, {lastCol, lastRow}} {
			lx, ly := cr[0]*d.TileWidth, cr[1]*d.TileHeight
			w, h := min(d.TileWidth, lv.Width-lx), min(d.TileHeight, lv.Height-ly)
			if w == d.TileWidth && h == d.TileHeight {
				continue
			}
			// The full-resolution region whose ends scaleSpan rounds to
			// the tile's; to the image's edge where the tile is.
			fx := func(p, level, full int) int {
				if p >= level {
					return full
				}
				return (p*full + level/2) / level
			}
			x0, x1 := fx(lx, lv.Width, src.Width), fx(lx+w, lv.Width, src.Width)
			y0, y1 := fx(ly, lv.Height, src.Height), fx(ly+h, lv.Height, src.Height)
			path := fmt.Sprintf("x/%d,%d,%d,%d/%d,%d/0/default.jpg", x0, y0, x1-x0, y1-y0, w, h)
			res := resolve(t, &src.Source, path)
			if plv, px, py, pw, ph := plan(src, res); plv.ifd != d || px != lx || py != ly || pw != w || ph != h {
				t.Fatalf("%s plans level %d×%d (%d,%d,%d,%d), want level %d (%d,%d,%d,%d)",
					path, plv.Width, plv.Height, px, py, pw, ph, i, lx, ly, w, h)
			}
			out = append(out, edgeTile{path, lv, cr[0], cr[1], w, h, i})
		}
	}
	return out
}

// storedTile is the stored JPEG tile of e, whole.
func storedTile(t *testing.T, file string, e edgeTile) []byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tile, err := e.lv.ifd.AppendJPEGTile(nil, f, e.col, e.row)
	if err != nil {
		t.Fatal(err)
	}
	return tile
}

// storedCrop decodes the stored tile whole and crops its top left w × h:
// what libvips' TIFF loader makes of a padded edge tile.
func storedCrop(t *testing.T, tile []byte, e edgeTile) decoded {
	t.Helper()
	img, err := vips.NewImageFromBuffer(tile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(img.Close)
	if img.Width() != e.lv.ifd.TileWidth || img.Height() != e.lv.ifd.TileHeight {
		t.Fatalf("stored tile is %d×%d, want padded to %d×%d", img.Width(), img.Height(), e.lv.ifd.TileWidth, e.lv.ifd.TileHeight)
	}
	if err := img.ExtractArea(0, 0, e.w, e.h); err != nil {
		t.Fatal(err)
	}
	return decoded{img, e.w, e.h}
}

// sameSamples checks that crop holds exactly the stored tile's decoded
// samples over its w × h, plane by plane before colour conversion and
// chroma upsampling (Go's decoder hands out the planes as they are): the
// crop is lossless.
func sameSamples(t *testing.T, crop, tile []byte, w, h int) {
	t.Helper()
	a, err := jpeg.Decode(bytes.NewReader(crop))
	if err != nil {
		t.Fatal(err)
	}
	b, err := jpeg.Decode(bytes.NewReader(tile))
	if err != nil {
		t.Fatal(err)
	}
	if a.Bounds() != image.Rect(0, 0, w, h) {
		t.Fatalf("crop is %v, want %d×%d", a.Bounds(), w, h)
	}
	plane := func(name string, pa []byte, sa int, pb []byte, sb int, pw, ph int) {
		for y := range ph {
			if !bytes.Equal(pa[y*sa:y*sa+pw], pb[y*sb:y*sb+pw]) {
				t.Errorf("%s plane row %d differs from the stored tile's", name, y)
				return
			}
		}
	}
	switch a := a.(type) {
	case *image.YCbCr:
		b, ok := b.(*image.YCbCr)
		if !ok || a.SubsampleRatio != b.SubsampleRatio {
			t.Fatalf("crop is a %T, stored tile a %T", a, b)
		}
		plane("Y", a.Y, a.YStride, b.Y, b.YStride, w, h)
		cw, ch := w, h // the chroma samples inside the crop
		switch a.SubsampleRatio {
		case image.YCbCrSubsampleRatio420:
			cw, ch = (w+1)/2, (h+1)/2
		case image.YCbCrSubsampleRatio422:
			cw = (w + 1) / 2
		case image.YCbCrSubsampleRatio440:
			ch = (h + 1) / 2
		}
		plane("Cb", a.Cb, a.CStride, b.Cb, b.CStride, cw, ch)
		plane("Cr", a.Cr, a.CStride, b.Cr, b.CStride, cw, ch)
	case *image.Gray:
		b, ok := b.(*image.Gray)
		if !ok {
			t.Fatalf("crop is a %T, stored tile a %T", a, b)
		}
		plane("gray", a.Pix, a.Stride, b.Pix, b.Stride, w, h)
	default:
		for y := range h {
			for x := range w {
				if a.At(x, y) != b.At(x, y) {
					t.Fatalf("pixel (%d,%d) differs from the stored tile's", x, y)
				}
			}
		}
	}
}

// edgeLines says whether the last column and the last row of a w × h crop
// of tile are decoded from chroma samples the crop no longer has: with
// chroma subsampled 2:1 and an even size, the decoder's interpolating
// ("fancy") upsampling blends the last pixel column or row with the next
// chroma sample, which in the whole tile lies in libtiff's padding and in
// the crop does not exist (the decoder repeats the edge sample, as at any
// image's edge). Those lines differ from decoding the whole tile and
// cropping; every sample still is the stored one (sameSamples).
func edgeLines(tile []byte, w, h int) (col, row bool) {
	img, err := jpeg.Decode(bytes.NewReader(tile))
	if err != nil {
		return false, false
	}
	y, ok := img.(*image.YCbCr)
	if !ok {
		return false, false
	}
	switch y.SubsampleRatio {
	case image.YCbCrSubsampleRatio420:
		return w%2 == 0, h%2 == 0
	case image.YCbCrSubsampleRatio422:
		return w%2 == 0, false
	case image.YCbCrSubsampleRatio440:
		return false, h%2 == 0
	}
	return false, false
}

// TestEdgeTilesPassThroughAsLosslessCrops: a partial edge tile passes
// through, exactly as big as asked, with the stored tile's own pixels.
func TestEdgeTilesPassThroughAsLosslessCrops(t *testing.T) {
	dir := t.TempDir()
	odd, err := Generate(filepath.Join(dir, "odd"), Pattern, PyramidTIFF, 1001, 777, 2) // odd edges at every level
	if err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{ids["bigpyr"], ids["subifd"]} {
		b, err := os.ReadFile(filepath.Join(fixtureDir, link)) // a symlink would lead out of TilePath
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, link), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	on := newVips(t, Config{TilePath: dir, TilePassthrough: true})
	off := newVips(t, Config{TilePath: dir})
	n := 0
	for _, id := range []string{ids["bigpyr"], ids["subifd"], filepath.Base(odd)} {
		rs, err := on.Info(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		src, _ := sourceOf(rs)
		for _, e := range edgeTiles(t, src) {
			n++
			t.Run(fmt.Sprintf("%s level %d %s", id, e.levelIndex, e.path), func(t *testing.T) {
				before := on.Stats().Passthrough
				img, got := render(t, on, id, e.path) // checks the size
				if on.Stats().Passthrough != before+1 {
					t.Fatalf("not passed through")
				}
				tile := storedTile(t, filepath.Join(dir, id), e)
				sameSamples(t, img.Body, tile, e.w, e.h)
				want := storedCrop(t, tile, e)
				col, row := edgeLines(tile, e.w, e.h)
				if d := maxPixelDiff(t, got, want, col, row); d != 0 {
					t.Errorf("cropped tile differs from the stored tile's pixels by up to %d", d)
				}
				_, ref := render(t, off, id, e.path)
				if d := meanAbsDiff(t, got, ref); d > 4 {
					t.Errorf("cropped tile differs from the re-encoded render by %.1f per channel on average", d)
				}
			})
		}
	}
	if n < 12 {
		t.Fatalf("only %d edge tiles found: the fixtures no longer have partial edges", n)
	}
	if s := off.Stats(); s.Passthrough != 0 {
		t.Errorf("pass-through happened while switched off: %+v", s)
	}
}

// maxPixelDiff is the largest difference of any sample of a and b, but for
// the last column and row when skip says so.
func maxPixelDiff(t *testing.T, a, b decoded, skipCol, skipRow bool) int {
	t.Helper()
	if a.w != b.w || a.h != b.h {
		t.Fatalf("sizes differ: %d×%d vs %d×%d", a.w, a.h, b.w, b.h)
	}
	pa, pb := pixels(t, a), pixels(t, b)
	if len(pa) != len(pb) {
		t.Fatalf("%d bytes of pixels vs %d", len(pa), len(pb))
	}
	bands := len(pa) / (a.w * a.h)
	worst := 0
	for y := range a.h {
		if skipRow && y == a.h-1 {
			continue
		}
		for x := range a.w {
			if skipCol && x == a.w-1 {
				continue
			}
			for c := range bands {
				i := (y*a.w+x)*bands + c
				worst = max(worst, abs(int(pa[i])-int(pb[i])))
			}
		}
	}
	return worst
}

// TestS3EdgeTilesPassThrough: an edge tile read by ranges from S3 is
// cropped as from a file, byte for byte.
func TestS3EdgeTilesPassThrough(t *testing.T) {
	v, _, _ := s3Fixture(t, nil)
	local := newVips(t, Config{TilePassthrough: true})
	for _, id := range []string{ids["pyramid"], ids["subifd"]} {
		for _, p := range []string{"1024,768,176,132/176,132/0/default.jpg", "1024,0,176,256/176,256/0/default.jpg", "1024,512,176,388/88,194/0/default.jpg"} {
			before := v.Stats().Passthrough
			got, err := renderBytes(t, v, id, p)
			if err != nil {
				t.Fatalf("%s %s from S3: %v", id, p, err)
			}
			if v.Stats().Passthrough != before+1 {
				t.Errorf("%s %s from S3: not passed through", id, p)
			}
			want, err := renderBytes(t, local, id, p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s %s from S3: %d bytes differ from the file's (%d bytes)", id, p, len(got), len(want))
			}
		}
	}
}

// TestCropRefusesWhatItCannotCropLosslessly: a damaged stored tile, a
// size beyond the tile or none at all fail (and the renderer then renders
// through libvips, which reports a damaged file). A tile truncated only
// past the kept rows fails too: its end marker is missing.
func TestCropRefusesWhatItCannotCropLosslessly(t *testing.T) {
	v := newVips(t, Config{TilePassthrough: true})
	rs, err := v.Info(context.Background(), ids["subifd"])
	if err != nil {
		t.Fatal(err)
	}
	src, _ := sourceOf(rs)
	e := edgeTile{lv: src.Levels[0], col: 4, row: 3}
	tile := storedTile(t, filepath.Join(fixtureDir, ids["subifd"]), e)
	if _, err := cropJPEG(tile, 176, 132); err != nil {
		t.Fatalf("a good tile: %v", err)
	}
	for _, tc := range []struct {
		name string
		tile []byte
		w, h int
	}{
		{"wider than the tile", tile, 257, 132},
		{"taller than the tile", tile, 176, 257},
		{"empty", tile, 0, 132},
		{"truncated in the kept rows", tile[:len(tile)/3], 256, 200},
		{"truncated past them", tile[:len(tile)*9/10], 256, 16},
		{"not a JPEG", []byte("GIF89a not a jpeg at all"), 16, 16},
		{"no frame header", tile[:200], 16, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := bytes.Clone(tc.tile)
			if out, err := cropJPEG(in, tc.w, tc.h); err == nil {
				t.Errorf("cropped to %d bytes, want an error", len(out))
			}
		})
	}
}

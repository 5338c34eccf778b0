package vips

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"unsafe"

	"github.com/davidbyttow/govips/v2/vips"
)

func readProfile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: the colour tests need Debian's colord-data (make deps installs it)", err)
	}
	return b
}

// everyColour is the 65,536 colours with red r, as 8-bit RGB pixels.
func everyColour(r int, px []byte) {
	for i := range 65536 {
		px[3*i], px[3*i+1], px[3*i+2] = byte(r), byte(i>>8), byte(i)
	}
}

// TestShaperImplementationsAgreeOnEveryColour: the implementation renders
// run (AVX2 where the CPU has it) converts every one of the 16.7 million
// 8-bit colours to the same bytes as the scalar one.
func TestShaperImplementationsAgreeOnEveryColour(t *testing.T) {
	conv := newConverter(readProfile(t, adobeRGB))
	best := shaperBest()
	t.Logf("renders convert with the %s implementation", convName(best))
	if best == convScalar {
		t.Log("this CPU (or build) has no SIMD implementation: only the scalar one ran")
	}
	in, want, got := make([]byte, 3*65536), make([]byte, 3*65536), make([]byte, 3*65536)
	differ := 0
	for r := range 256 {
		everyColour(r, in)
		if !conv.rgb8(convScalar, in, want) || !conv.rgb8(best, in, got) {
			t.Fatal("Adobe RGB is not converted by the shaper")
		}
		for i := 0; i < len(in); i += 3 {
			if got[i] != want[i] || got[i+1] != want[i+1] || got[i+2] != want[i+2] {
				if differ < 5 {
					t.Errorf("%v: %s %v, scalar %v", in[i:i+3], convName(best), got[i:i+3], want[i:i+3])
				}
				differ++
			}
		}
	}
	if differ > 0 {
		t.Fatalf("%d colours differ between %s and scalar", differ, convName(best))
	}
}

// TestShaperEdgesAndInPlace: every length from 0 to 40 pixels, at every
// alignment, converted in place and out of place, equals the scalar result
// and touches no byte outside its pixels (the SIMD path loads past its 8
// pixels and must never store past them).
func TestShaperEdgesAndInPlace(t *testing.T) {
	conv := newConverter(readProfile(t, adobeRGB))
	best := shaperBest()
	t.Logf("checking the %s implementation", convName(best))
	src := make([]byte, 3*64)
	for i := range src {
		src[i] = byte(i*37 + 11)
	}
	for n := 1; n <= 40; n++ {
		want := make([]byte, 3*n)
		if !conv.rgb8(convScalar, src[:3*n], want) {
			t.Fatal("Adobe RGB is not converted by the shaper")
		}
		for off := range 4 {
			buf := make([]byte, 3*64+8)
			for i := range buf {
				buf[i] = 0xA5
			}
			copy(buf[off:], src[:3*n])
			conv.rgb8(best, buf[off:off+3*n], buf[off:off+3*n]) // in place
			if string(buf[off:off+3*n]) != string(want) {
				t.Fatalf("%d pixels at offset %d, in place: %v, want %v", n, off, buf[off:off+3*n], want)
			}
			for i, b := range buf {
				if (i < off || i >= off+3*n) && b != 0xA5 {
					t.Fatalf("%d pixels at offset %d: byte %d outside them changed", n, off, i)
				}
			}
			out := make([]byte, 3*n)
			conv.rgb8(best, src[:3*n], out)
			if string(out) != string(want) {
				t.Fatalf("%d pixels, out of place: %v, want %v", n, out, want)
			}
		}
	}
}

// TestShaperWithinOneLevelOfLCMS: the shaper's arithmetic (float, tables
// of 16384 steps) gives lcms' result within one level on every 8-bit
// colour, and the very same byte on nearly every channel (99.2 % for Adobe
// RGB, 97.6 % of the pixels on all three).
func TestShaperWithinOneLevelOfLCMS(t *testing.T) {
	conv := newConverter(readProfile(t, adobeRGB))
	best := shaperBest()
	in, want, got := make([]byte, 3*65536), make([]byte, 3*65536), make([]byte, 3*65536)
	samePixels, sameChannels, worst := 0, 0, 0
	for r := range 256 {
		everyColour(r, in)
		if !conv.rgb8(convLCMS, in, want) || !conv.rgb8(best, in, got) {
			t.Fatal("Adobe RGB is not converted")
		}
		for i := 0; i < len(in); i += 3 {
			d := 0
			for c := range 3 {
				e := abs(int(got[i+c]) - int(want[i+c]))
				if e == 0 {
					sameChannels++
				}
				d = max(d, e)
			}
			worst = max(worst, d)
			if d == 0 {
				samePixels++
			}
		}
	}
	channels := float64(sameChannels) / (3 << 24)
	t.Logf("%s: %.2f %% of the channels (%.2f %% of the colours) convert to lcms' bytes, the rest within %d",
		convName(best), 100*channels, 100*float64(samePixels)/(1<<24), worst)
	if worst > 1 || channels < 0.99 {
		t.Fatalf("worst %d levels from lcms, %.2f %% of the channels identical; want ≤ 1 and ≥ 99 %%", worst, 100*channels)
	}
}

// scanTile is a 256-px tile of scan-like pixels (the generator's Scan:
// paper, ink, an illustration), converted to and stored as Adobe RGB.
var scanTile = sync.OnceValues(func() ([]byte, error) { return scanTileIn(Pixels{Profile: adobeRGB, Convert: true}) })

// cmykTile is the same, converted to libvips' built-in CMYK.
var cmykTile = sync.OnceValues(func() ([]byte, error) { return scanTileIn(Pixels{Profile: "cmyk", Convert: true}) })

// adobe16Tile is the Adobe RGB tile at 16 bits a sample.
var adobe16Tile = sync.OnceValues(func() ([]byte, error) {
	return scanTileIn(Pixels{Profile: adobeRGB, Convert: true, Depth16: true})
})

func scanTileIn(px Pixels) ([]byte, error) {
	dir, err := os.MkdirTemp("", "scan-tile-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	name, err := GenerateWith(filepath.Join(dir, "tile"), Scan, StripTIFF, 256, 256, 7, px)
	if err != nil {
		return nil, err
	}
	img, err := vips.NewImageFromFile(name)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	return img.ToBytes()
}

// BenchmarkConvertTile converts a 256-px tile of scan-like Adobe RGB
// pixels to sRGB in place with each implementation; cpu-ns/pixel is the
// figure to compare (bench/RESULTS.md, "SIMD conversion").
func BenchmarkConvertTile(b *testing.B) {
	conv := newConverter(readProfile(b, adobeRGB))
	tile, err := scanTile()
	if err != nil {
		b.Fatal(err)
	}
	if len(tile) != 256*256*3 {
		b.Fatalf("%d bytes, want a 256-px RGB tile", len(tile))
	}
	for _, impl := range []int{convLCMS, convScalar, convAVX2} {
		b.Run(convName(impl), func(b *testing.B) {
			if !shaperHas(impl) {
				b.Skipf("this CPU has no %s", convName(impl))
			}
			px := make([]byte, len(tile))
			cpu0 := cpuTime()
			for b.Loop() {
				copy(px, tile) // 200 KB, about 5 µs: the same pixels every round
				if !conv.rgb8(impl, px, px) {
					b.Fatal("not converted")
				}
			}
			// CPU time, not wall time: on a shared machine it counts
			// this process's work only (see cpuTime).
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/(256*256), "cpu-ns/pixel")
		})
	}
}

// BenchmarkConvertTileCMYK converts a 256-px tile of scan-like CMYK pixels
// to sRGB with lcms and with the inline table.
func BenchmarkConvertTileCMYK(b *testing.B) {
	needProfiles(b)
	conv := newConverter(cmykProfile(b))
	tile, err := cmykTile()
	if err != nil {
		b.Fatal(err)
	}
	if len(tile) != 256*256*4 {
		b.Fatalf("%d bytes, want a 256-px CMYK tile", len(tile))
	}
	for _, impl := range []int{convLCMS, convCLUT, convCLUTAVX2} {
		if !shaperHas(impl) {
			continue
		}
		b.Run(convName(impl), func(b *testing.B) {
			out := make([]byte, 256*256*3)
			cpu0 := cpuTime()
			for b.Loop() {
				if !conv.cmyk8(impl, tile, out) {
					b.Fatal("not converted")
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/(256*256), "cpu-ns/pixel")
		})
	}
}

// cmykProfile is the profile of the CMYK colour fixture (libvips' built-in
// CMYK profile).
func cmykProfile(t testing.TB) []byte {
	t.Helper()
	dir, err := colourFixtures()
	if err != nil {
		t.Fatal(err)
	}
	img, err := vips.NewImageFromFile(filepath.Join(dir, "cmyk.tif"))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	p := img.GetICCProfile()
	if len(p) == 0 {
		t.Fatal("the CMYK fixture carries no profile")
	}
	return p
}

// TestCLUTMatchesLCMS: 8-bit CMYK converts through the inline table as
// through lcms, on a grid of 52⁴ colours (every fifth level of each ink,
// both ends included), on every level of each ink alone and with full
// black, and on a million pseudo-random colours: all but about 4 in a
// million channels identically (the table's nodes are sampled from lcms'
// transform, which lands one level off now and then), none further than
// one level. The implementation renders run (AVX2 where the CPU has it)
// gives the scalar one's bytes on every one of them.
func TestCLUTMatchesLCMS(t *testing.T) {
	needProfiles(t)
	conv := newConverter(cmykProfile(t))
	best := clutBest()
	t.Logf("renders convert CMYK with the %s implementation", convName(best))
	var levels []int
	for v := 0; v <= 255; v += 5 {
		levels = append(levels, v)
	}
	const chunk = 52 * 52 * 52
	in, want, got, fast := make([]byte, 4*chunk), make([]byte, 3*chunk), make([]byte, 3*chunk), make([]byte, 3*chunk)
	same, worst, total, differ := 0, 0, 0, 0
	check := func(n int) {
		if !conv.cmyk8(convLCMS, in[:4*n], want) || !conv.cmyk8(convCLUT, in[:4*n], got) || !conv.cmyk8(best, in[:4*n], fast) {
			t.Fatal("CMYK is not converted by the table")
		}
		for i := 0; i < 3*n; i++ {
			d := abs(int(got[i]) - int(want[i]))
			worst = max(worst, d)
			if d == 0 {
				same++
			}
			if fast[i] != got[i] {
				if differ < 5 {
					t.Errorf("%v: %s %v, scalar %v", in[i/3*4:i/3*4+4], convName(best), fast[i/3*3:i/3*3+3], got[i/3*3:i/3*3+3])
				}
				differ++
			}
		}
		total += 3 * n
	}
	for _, c := range levels {
		i := 0
		for _, m := range levels {
			for _, y := range levels {
				for _, k := range levels {
					in[4*i], in[4*i+1], in[4*i+2], in[4*i+3] = byte(c), byte(m), byte(y), byte(k)
					i++
				}
			}
		}
		check(i)
	}
	i := 0
	for ink := range 4 {
		for v := range 256 {
			for _, k := range []byte{0, 255} {
				px := in[4*i : 4*i+4]
				px[0], px[1], px[2], px[3] = 0, 0, 0, k
				px[ink] = byte(v)
				i++
			}
		}
	}
	check(i)
	seed := uint32(7)
	for range 8 {
		for j := range in {
			seed = seed*1664525 + 1013904223
			in[j] = byte(seed >> 24)
		}
		check(chunk)
	}
	t.Logf("%d of %d channels (%.4f %%) convert to lcms' bytes, the rest within %d", same, total, 100*float64(same)/float64(total), worst)
	if worst > 1 || float64(same) < 0.999*float64(total) {
		t.Fatalf("worst %d levels from lcms, %.4f %% identical; want ≤ 1 and ≥ 99.9 %%", worst, 100*float64(same)/float64(total))
	}
	if differ > 0 {
		t.Fatalf("%d channels differ between %s and scalar", differ, convName(best))
	}
}

// TestCLUTEdgesAndInPlace: every length from 1 to 40 pixels, in place (4
// bytes a pixel in, 3 out) and out of place, equals the scalar result and
// writes nothing past its 3 bytes a pixel.
func TestCLUTEdgesAndInPlace(t *testing.T) {
	needProfiles(t)
	conv := newConverter(cmykProfile(t))
	best := clutBest()
	t.Logf("checking the %s implementation", convName(best))
	src := make([]byte, 4*40)
	for i := range src {
		src[i] = byte(i*53 + 7)
	}
	for n := 1; n <= 40; n++ {
		want := make([]byte, 3*n)
		if !conv.cmyk8(convCLUT, src[:4*n], want) {
			t.Fatal("CMYK is not converted by the table")
		}
		buf := make([]byte, 4*n+8)
		for i := range buf {
			buf[i] = 0xA5
		}
		copy(buf, src[:4*n])
		conv.cmyk8(best, buf[:4*n], buf[:4*n]) // in place
		if string(buf[:3*n]) != string(want) {
			t.Fatalf("%d pixels in place: %v, want %v", n, buf[:3*n], want)
		}
		for i := 4 * n; i < len(buf); i++ {
			if buf[i] != 0xA5 {
				t.Fatalf("%d pixels: byte %d past the input changed", n, i)
			}
		}
		out := make([]byte, 3*n+8)
		conv.cmyk8(best, src[:4*n], out)
		if string(out[:3*n]) != string(want) || string(out[3*n:]) != string(make([]byte, 8)) {
			t.Fatalf("%d pixels, out of place: %v, want %v and zeros", n, out, want)
		}
	}
}

// TestShaper16WithinOneLevelOfLCMS: 16-bit Adobe RGB converts to 8-bit
// sRGB through the shaper (interpolated input curves) within one level of
// lcms' exact 8-bit matrix-shaper result, on every 8-bit colour widened to
// 16 bits (v·257: the low 4 bits, which the curves interpolate, take every
// value). lcms' own 16-bit transform is no reference: it resamples the
// conversion into a grid, and near the edge of sRGB's gamut (a channel
// clipped to 0) it lands up to 19 levels off its own 8-bit result, which
// the log shows. The implementation renders run (AVX2 where the CPU has
// it) gives the scalar one's bytes on all of them and on as many
// pseudo-random 16-bit colours.
func TestShaper16WithinOneLevelOfLCMS(t *testing.T) {
	conv := newConverter(readProfile(t, adobeRGB))
	best := shaperBest()
	t.Logf("renders convert 16-bit RGB with the %s implementation", convName(best))
	in8, in16 := make([]byte, 3*65536), make([]uint16, 3*65536)
	want, got, grid, fast := make([]byte, 3*65536), make([]byte, 3*65536), make([]byte, 3*65536), make([]byte, 3*65536)
	same, worst, gridWorst, total, differ := 0, 0, 0, 0, 0
	compare := func() {
		for i := range got {
			if fast[i] != got[i] {
				if differ < 5 {
					t.Errorf("%v: %s %v, scalar %v", in16[i/3*3:i/3*3+3], convName(best), fast[i/3*3:i/3*3+3], got[i/3*3:i/3*3+3])
				}
				differ++
			}
		}
	}
	for r := range 256 {
		everyColour(r, in8)
		for i, v := range in8 {
			in16[i] = uint16(v) * 257
		}
		if !conv.rgb8(convLCMS, in8, want) || !conv.rgb16(convScalar, in16, got) || !conv.rgb16(convLCMS, in16, grid) ||
			!conv.rgb16(best, in16, fast) {
			t.Fatal("16-bit Adobe RGB is not converted by the shaper")
		}
		for i := range got {
			d := abs(int(got[i]) - int(want[i]))
			worst = max(worst, d)
			gridWorst = max(gridWorst, abs(int(grid[i])-int(want[i])))
			if d == 0 {
				same++
			}
		}
		total += len(got)
		compare()
	}
	seed := uint32(3)
	for range 256 {
		for i := range in16 {
			seed = seed*1664525 + 1013904223
			in16[i] = uint16(seed >> 16)
		}
		conv.rgb16(convScalar, in16, got)
		conv.rgb16(best, in16, fast)
		compare()
	}
	share := float64(same) / float64(total)
	t.Logf("%.2f %% of the channels convert to lcms' 8-bit bytes, the rest within %d (lcms' 16-bit transform: within %d)",
		100*share, worst, gridWorst)
	if worst > 1 || share < 0.99 {
		t.Fatalf("worst %d levels from lcms, %.2f %% identical; want ≤ 1 and ≥ 99 %%", worst, 100*share)
	}
	if differ > 0 {
		t.Fatalf("%d channels differ between %s and scalar", differ, convName(best))
	}
}

// TestShaper16EdgesAndInPlace: every length from 1 to 40 16-bit pixels, in
// place (6 bytes a pixel in, 3 out) and out of place, equals the scalar
// result and writes nothing past its 3 bytes a pixel.
func TestShaper16EdgesAndInPlace(t *testing.T) {
	conv := newConverter(readProfile(t, adobeRGB))
	best := shaperBest()
	src := make([]uint16, 3*40)
	for i := range src {
		src[i] = uint16(i*7919 + 13)
	}
	for n := 1; n <= 40; n++ {
		want := make([]byte, 3*n)
		if !conv.rgb16(convScalar, src[:3*n], want) {
			t.Fatal("16-bit Adobe RGB is not converted by the shaper")
		}
		buf := make([]uint16, 3*n+4)
		for i := range buf {
			buf[i] = 0xA5A5
		}
		copy(buf, src[:3*n])
		bytes := unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), 2*len(buf))
		conv.rgb16(best, buf[:3*n], bytes[:3*n]) // in place
		if string(bytes[:3*n]) != string(want) {
			t.Fatalf("%d pixels in place: %v, want %v", n, bytes[:3*n], want)
		}
		for i := 6 * n; i < len(bytes); i++ {
			if bytes[i] != 0xA5 {
				t.Fatalf("%d pixels: byte %d past the input changed", n, i)
			}
		}
		out := make([]byte, 3*n+8)
		conv.rgb16(best, src[:3*n], out)
		if string(out[:3*n]) != string(want) || string(out[3*n:]) != string(make([]byte, 8)) {
			t.Fatalf("%d pixels, out of place: %v, want %v and zeros", n, out, want)
		}
	}
}

// BenchmarkConvertTile16 converts a 256-px tile of scan-like 16-bit Adobe
// RGB pixels to 8-bit sRGB with lcms and with the shaper.
func BenchmarkConvertTile16(b *testing.B) {
	conv := newConverter(readProfile(b, adobeRGB))
	raw, err := adobe16Tile()
	if err != nil {
		b.Fatal(err)
	}
	if len(raw) != 256*256*6 {
		b.Fatalf("%d bytes, want a 256-px 16-bit RGB tile", len(raw))
	}
	tile := unsafe.Slice((*uint16)(unsafe.Pointer(&raw[0])), len(raw)/2) // native-endian, as libvips holds it
	for _, impl := range []int{convLCMS, convScalar, convAVX2} {
		if !shaperHas(impl) {
			continue
		}
		b.Run(convName(impl), func(b *testing.B) {
			out := make([]byte, 256*256*3)
			cpu0 := cpuTime()
			for b.Loop() {
				if !conv.rgb16(impl, tile, out) {
					b.Fatal("not converted")
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/(256*256), "cpu-ns/pixel")
		})
	}
}

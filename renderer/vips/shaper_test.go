package vips

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

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
	profile := readProfile(t, adobeRGB)
	best := shaperBest()
	t.Logf("renders convert with the %s implementation", convName(best))
	if best == convScalar {
		t.Log("this CPU (or build) has no SIMD implementation: only the scalar one ran")
	}
	in, want, got := make([]byte, 3*65536), make([]byte, 3*65536), make([]byte, 3*65536)
	differ := 0
	for r := range 256 {
		everyColour(r, in)
		if !convertRGB8With(profile, convScalar, in, want) || !convertRGB8With(profile, best, in, got) {
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
	profile := readProfile(t, adobeRGB)
	best := shaperBest()
	t.Logf("checking the %s implementation", convName(best))
	src := make([]byte, 3*64)
	for i := range src {
		src[i] = byte(i*37 + 11)
	}
	for n := 1; n <= 40; n++ {
		want := make([]byte, 3*n)
		if !convertRGB8With(profile, convScalar, src[:3*n], want) {
			t.Fatal("Adobe RGB is not converted by the shaper")
		}
		for off := range 4 {
			buf := make([]byte, 3*64+8)
			for i := range buf {
				buf[i] = 0xA5
			}
			copy(buf[off:], src[:3*n])
			convertRGB8With(profile, best, buf[off:off+3*n], buf[off:off+3*n]) // in place
			if string(buf[off:off+3*n]) != string(want) {
				t.Fatalf("%d pixels at offset %d, in place: %v, want %v", n, off, buf[off:off+3*n], want)
			}
			for i, b := range buf {
				if (i < off || i >= off+3*n) && b != 0xA5 {
					t.Fatalf("%d pixels at offset %d: byte %d outside them changed", n, off, i)
				}
			}
			out := make([]byte, 3*n)
			convertRGB8With(profile, best, src[:3*n], out)
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
	profile := readProfile(t, adobeRGB)
	best := shaperBest()
	in, want, got := make([]byte, 3*65536), make([]byte, 3*65536), make([]byte, 3*65536)
	samePixels, sameChannels, worst := 0, 0, 0
	for r := range 256 {
		everyColour(r, in)
		if !convertRGB8With(profile, convLCMS, in, want) || !convertRGB8With(profile, best, in, got) {
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
var scanTile = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "scan-tile-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	name, err := GenerateWith(filepath.Join(dir, "tile"), Scan, StripTIFF, 256, 256, 7, Pixels{Profile: adobeRGB, Convert: true})
	if err != nil {
		return nil, err
	}
	img, err := vips.NewImageFromFile(name)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	return img.ToBytes()
})

// BenchmarkConvertTile converts a 256-px tile of scan-like Adobe RGB
// pixels to sRGB in place with each implementation; cpu-ns/pixel is the
// figure to compare (bench/RESULTS.md, "SIMD conversion").
func BenchmarkConvertTile(b *testing.B) {
	profile := readProfile(b, adobeRGB)
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
				if !convertRGB8With(profile, impl, px, px) {
					b.Fatal("not converted")
				}
			}
			// CPU time, not wall time: on a shared machine it counts
			// this process's work only (see cpuTime).
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/(256*256), "cpu-ns/pixel")
		})
	}
}

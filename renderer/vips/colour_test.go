package vips

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/iiif-proxy/iiif-proxy/internal/icc"
)

// Profiles from Debian's colord-data (installed by `make deps`).
const (
	adobeRGB   = "/usr/share/color/icc/colord/AdobeRGB1998.icc"
	colordSRGB = "/usr/share/color/icc/colord/sRGB.icc"
)

func needProfiles(t testing.TB) {
	t.Helper()
	for _, p := range []string{adobeRGB, colordSRGB} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%v: the colour tests need Debian's colord-data (make deps installs it)", err)
		}
	}
}

// colourDir generates the colour fixtures once: the same scan pixels
// untagged, tagged sRGB (libvips' built-in and colord's), converted to and
// tagged Adobe RGB (8 and 16 bit), converted to CMYK, each losslessly
// (deflate TIFF) and as a JPEG pyramid.
var colourFixtures = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "colour-test-")
	if err != nil {
		return "", err
	}
	for _, f := range []struct {
		name string
		px   Pixels
	}{
		{"plain", Pixels{}},
		{"srgb", Pixels{Profile: "srgb"}},
		{"colord-srgb", Pixels{Profile: colordSRGB}},
		{"adobe", Pixels{Profile: adobeRGB, Convert: true}},
		{"adobe16", Pixels{Profile: adobeRGB, Convert: true, Depth16: true}},
		{"cmyk", Pixels{Profile: "cmyk", Convert: true}},
	} {
		for layout, ext := range map[string]string{StripTIFF: "", PyramidTIFF: "-pyr"} {
			if ext != "" && f.px.Depth16 {
				continue // JPEG holds 8 bits
			}
			if _, err := GenerateWith(filepath.Join(dir, f.name+ext), Scan, layout, 640, 512, 3, f.px); err != nil {
				return "", err
			}
		}
	}
	return dir, nil
})

func colourVips(t *testing.T, mode string, log *slog.Logger) *Vips {
	t.Helper()
	needProfiles(t)
	dir, err := colourFixtures()
	if err != nil {
		t.Fatal(err)
	}
	return newVips(t, Config{TilePath: dir, ColourProfiles: mode, TilePassthrough: true, Logger: log})
}

func pixels(t *testing.T, d decoded) []byte {
	t.Helper()
	if b := d.img.Bands(); b != 3 && b != 4 {
		t.Fatalf("%d bands, want RGB or RGBA", b)
	}
	b, err := d.img.ToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSRGBTaggedRendersBitIdenticalToUntagged(t *testing.T) {
	v := colourVips(t, ColourConvert, nil)
	for _, id := range []string{"srgb.tif", "colord-srgb.tif"} {
		for _, path := range []string{"x/full/max/0/default.png", "x/10,20,300,200/150,/0/default.jpg", "x/full/max/33/default.png"} {
			plain, pd := render(t, v, "plain.tif", path)
			tagged, td := render(t, v, id, path)
			if strings.HasSuffix(path, ".jpg") {
				if !bytes.Equal(plain.Body, tagged.Body) {
					t.Errorf("%s %s: JPEG differs from the untagged source's", id, path)
				}
			} else if !bytes.Equal(pixels(t, pd), pixels(t, td)) {
				t.Errorf("%s %s: pixels differ from the untagged source's", id, path)
			}
			if p := td.img.GetICCProfile(); len(p) != 0 {
				t.Errorf("%s %s: convert sent a %d-byte profile", id, path, len(p))
			}
		}
	}
}

func TestSRGBTaggedPyramidPassesThrough(t *testing.T) {
	for _, mode := range []string{ColourConvert, ColourEmbed, ColourStrip} {
		t.Run(mode, func(t *testing.T) {
			v := colourVips(t, mode, nil)
			const tile = "x/256,256,256,256/256,/0/default.jpg"
			plain, _ := render(t, v, "plain-pyr.tif", tile)
			before := v.Stats().Passthrough
			tagged, d := render(t, v, "srgb-pyr.tif", tile)
			if v.Stats().Passthrough != before+1 {
				t.Fatalf("the sRGB-tagged tile was not passed through")
			}
			want := plain.Body
			if mode == ColourEmbed {
				srgb, err := os.ReadFile(filepath.Join(mustDir(t), "srgb.icc"))
				if err != nil {
					t.Fatal(err)
				}
				if got := d.img.GetICCProfile(); !bytes.Equal(got, srgb) {
					t.Fatalf("embed: pass-through carries a %d-byte profile, want the source's %d bytes", len(got), len(srgb))
				}
				want, err = icc.SpliceJPEG(nil, plain.Body, icc.JPEGSegments(srgb))
				if err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(tagged.Body, want) {
				t.Errorf("pass-through bytes differ from the untagged pyramid's tile")
			}
		})
	}
}

// mustDir writes libvips' built-in sRGB profile (the one srgb*.tif carry)
// next to the fixtures and returns their directory.
func mustDir(t *testing.T) string {
	t.Helper()
	dir, err := colourFixtures()
	if err != nil {
		t.Fatal(err)
	}
	img, err := vips.NewImageFromFile(filepath.Join(dir, "srgb.tif"))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if err := os.WriteFile(filepath.Join(dir, "srgb.icc"), img.GetICCProfile(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// reference converts a fixture with libvips' own vips_icc_transform (via
// govips) to 8-bit sRGB pixels.
func reference(t *testing.T, id string) []byte {
	t.Helper()
	dir, _ := colourFixtures()
	img, err := vips.NewImageFromFile(filepath.Join(dir, id))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if err := img.TransformICCProfileWithFallback("srgb", "srgb"); err != nil {
		t.Fatal(err)
	}
	b, err := img.ToBytes()
	if err != nil {
		t.Fatal(err)
	}
	if img.BandFormat() == vips.BandFormatUshort && len(b) == img.Width()*img.Height()*6 {
		out := make([]byte, len(b)/2)
		for i := range out {
			out[i] = byte((int(binary.NativeEndian.Uint16(b[2*i:])) + 128) / 257)
		}
		return out
	}
	if img.BandFormat() == vips.BandFormatUchar && len(b) == img.Width()*img.Height()*3 {
		return b
	}
	t.Fatalf("reference: %d bytes for %d×%d", len(b), img.Width(), img.Height())
	return nil
}

// deltaE is CIE76 ΔE between two 8-bit sRGB pixels.
func deltaE(a, b []byte) float64 {
	la, lb := lab(a), lab(b)
	return math.Sqrt((la[0]-lb[0])*(la[0]-lb[0]) + (la[1]-lb[1])*(la[1]-lb[1]) + (la[2]-lb[2])*(la[2]-lb[2]))
}

func lab(p []byte) [3]float64 {
	var lin [3]float64
	for i := range 3 {
		c := float64(p[i]) / 255
		if c <= 0.04045 {
			lin[i] = c / 12.92
		} else {
			lin[i] = math.Pow((c+0.055)/1.055, 2.4)
		}
	}
	x := (0.4124*lin[0] + 0.3576*lin[1] + 0.1805*lin[2]) / 0.95047
	y := 0.2126*lin[0] + 0.7152*lin[1] + 0.0722*lin[2]
	z := (0.0193*lin[0] + 0.1192*lin[1] + 0.9505*lin[2]) / 1.08883
	f := func(t float64) float64 {
		if t > 216.0/24389 {
			return math.Cbrt(t)
		}
		return (24389.0/27*t + 16) / 116
	}
	return [3]float64{116*f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))}
}

func TestTaggedSourcesConvertLikeLibvips(t *testing.T) {
	v := colourVips(t, ColourConvert, nil)
	for _, tc := range []struct {
		id       string
		maxDelta float64
	}{
		{"adobe.tif", 1},
		{"adobe16.tif", 1},
		{"cmyk.tif", 1},
	} {
		t.Run(tc.id, func(t *testing.T) {
			before := cachedTransforms()
			for range 3 {
				_, d := render(t, v, tc.id, "x/full/max/0/default.png")
				got, want := pixels(t, d), reference(t, tc.id)
				if len(got) != len(want) {
					t.Fatalf("%d bytes, reference %d", len(got), len(want))
				}
				var worst, sum float64
				for i := 0; i < len(got); i += 3 {
					e := deltaE(got[i:i+3], want[i:i+3])
					worst = max(worst, e)
					sum += e
				}
				t.Logf("ΔE from libvips' conversion: max %.3f, mean %.4f", worst, sum/float64(len(got)/3))
				if worst > tc.maxDelta {
					t.Fatalf("ΔE from libvips' conversion: max %.2f, mean %.3f; want max ≤ %g", worst, sum/float64(len(got)/3), tc.maxDelta)
				}
				if p := d.img.GetICCProfile(); len(p) != 0 {
					t.Errorf("convert sent a %d-byte profile", len(p))
				}
			}
			if n := cachedTransforms() - before; n > 1 {
				t.Errorf("%d transforms built for one profile", n)
			}
		})
	}
	// The converted colours differ from the stored ones (else the test
	// above proves nothing): Adobe RGB pixels read as sRGB look dull.
	strip := colourVips(t, ColourStrip, nil)
	_, conv := render(t, v, "adobe.tif", "x/full/max/0/default.png")
	_, raw := render(t, strip, "adobe.tif", "x/full/max/0/default.png")
	if d := meanAbsDiff(t, conv, raw); d < 2 {
		t.Errorf("converted and stripped renders differ by only %.2f per channel", d)
	}
	// And the conversion recovers the pixels drawn before the Adobe RGB
	// conversion, as the untagged source holds them.
	_, plain := render(t, v, "plain.tif", "x/full/max/0/default.png")
	if d := meanAbsDiff(t, conv, plain); d > 1.5 {
		t.Errorf("Adobe RGB converted back differs from the sRGB original by %.2f per channel", d)
	}
}

func TestAdobeRGBPyramidIsConvertedNotPassedThrough(t *testing.T) {
	v := colourVips(t, ColourConvert, nil)
	before := v.Stats().Passthrough
	_, d := render(t, v, "adobe-pyr.tif", "x/0,0,256,256/256,/0/default.jpg")
	if v.Stats().Passthrough != before {
		t.Fatal("an Adobe RGB tile was passed through in convert mode")
	}
	if p := d.img.GetICCProfile(); len(p) != 0 {
		t.Errorf("convert sent a %d-byte profile", len(p))
	}
}

// jpegICC reassembles the APP2 ICC_PROFILE segments of a JPEG file.
func jpegICC(t *testing.T, b []byte) []byte {
	t.Helper()
	var out []byte
	for at := 2; at+4 <= len(b) && b[at] == 0xFF && b[at+1] != 0xDA; {
		n := int(binary.BigEndian.Uint16(b[at+2:]))
		if b[at+1] == 0xE2 && bytes.HasPrefix(b[at+4:], []byte("ICC_PROFILE\x00")) {
			out = append(out, b[at+4+14:at+2+n]...)
		}
		at += 2 + n
	}
	return out
}

func TestEmbedCarriesTheProfileByteForByte(t *testing.T) {
	v := colourVips(t, ColourEmbed, nil)
	strip := colourVips(t, ColourStrip, nil)
	want, err := os.ReadFile(adobeRGB)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ id, path string }{
		{"adobe.tif", "x/0,0,300,200/150,/0/default.jpg"},
		{"adobe.tif", "x/0,0,300,200/150,/0/default.png"},
		{"adobe.tif", "x/0,0,300,200/150,/0/default.webp"},
		{"adobe.tif", "x/0,0,300,200/150,/0/default.tif"},
		{"adobe.tif", "x/0,0,300,200/150,/90/default.png"},
		{"adobe16.tif", "x/full/200,/0/default.png"},
		{"adobe-pyr.tif", "x/256,0,256,256/256,/0/default.jpg"},   // passed through
		{"adobe-pyr.tif", "x/512,256,128,256/128,/0/default.jpg"}, // an edge tile: cropped, passed through
	} {
		t.Run(tc.id+" "+tc.path, func(t *testing.T) {
			before := v.Stats().Passthrough
			img, d := render(t, v, tc.id, tc.path)
			if strings.HasPrefix(tc.id, "adobe-pyr") && v.Stats().Passthrough != before+1 {
				t.Errorf("not passed through")
			}
			if got := d.img.GetICCProfile(); !bytes.Equal(got, want) {
				t.Errorf("output carries a %d-byte profile, want the source's %d bytes", len(got), len(want))
			}
			if strings.HasSuffix(tc.path, ".jpg") {
				if got := jpegICC(t, img.Body); !bytes.Equal(got, want) {
					t.Errorf("APP2 segments hold %d bytes, want the profile's %d", len(got), len(want))
				}
			}
			// The pixels are the stored ones, not converted.
			_, s := render(t, strip, tc.id, tc.path)
			if diff := meanAbsDiff(t, d, s); diff > 0 {
				t.Errorf("embed changed the pixels by %.2f per channel", diff)
			}
		})
	}
	// A gray output of a colour source cannot carry an RGB profile: converted.
	_, d := render(t, v, "adobe.tif", "x/0,0,300,200/150,/0/gray.png")
	if p := d.img.GetICCProfile(); len(p) != 0 {
		t.Errorf("gray output carries a %d-byte RGB profile", len(p))
	}
}

// countingHandler counts warnings.
type countingHandler struct {
	slog.Handler
	warns atomic.Int32
}

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		h.warns.Add(1)
	}
	return nil
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func TestBadProfilesAreIgnoredWithOneWarningPerSource(t *testing.T) {
	needProfiles(t)
	src, err := colourFixtures()
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(filepath.Join(src, "adobe.tif"))
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(orig, []byte("acsp")) - 36
	if at < 0 || bytes.Count(orig, []byte("acsp")) != 1 {
		t.Fatal("cannot find the profile in adobe.tif")
	}
	dir := t.TempDir()
	for name, damage := range map[string]func(p []byte){
		"no-signature":  func(p []byte) { copy(p[36:], "xxxx") },
		"device-link":   func(p []byte) { copy(p[12:], "link") },
		"cmyk-on-rgb":   func(p []byte) { copy(p[16:], "CMYK") },
		"bad-tag-table": func(p []byte) { binary.BigEndian.PutUint32(p[128:], 1000) },
		"garbage-curve": func(p []byte) { // parses; lcms must reject it
			for i := 132; i < 132+12*10; i += 12 {
				if string(p[i:i+4]) == "rTRC" {
					off := binary.BigEndian.Uint32(p[i+4:])
					copy(p[off:], "zzzz")
				}
			}
		},
	} {
		b := bytes.Clone(orig)
		damage(b[at:])
		if err := os.WriteFile(filepath.Join(dir, name+".tif"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := &countingHandler{}
	for _, mode := range []string{ColourConvert, ColourEmbed} {
		t.Run(mode, func(t *testing.T) {
			h.warns.Store(0)
			v := newVips(t, Config{TilePath: dir, ColourProfiles: mode, Logger: slog.New(h)})
			ref := newVips(t, Config{TilePath: src, ColourProfiles: ColourStrip})
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				for range 3 {
					_, got := render(t, v, e.Name(), "x/full/200,/0/default.png")
					_, want := render(t, ref, "adobe.tif", "x/full/200,/0/default.png")
					if d := meanAbsDiff(t, got, want); d != 0 {
						t.Errorf("%s: not rendered as untagged (%.2f per channel off)", e.Name(), d)
					}
					if p := got.img.GetICCProfile(); len(p) != 0 {
						t.Errorf("%s: a %d-byte bad profile was sent", e.Name(), len(p))
					}
				}
			}
			if n := int(h.warns.Load()); n != len(entries) {
				t.Errorf("%d warnings for %d sources with bad profiles, want one each", n, len(entries))
			}
		})
	}
}

func TestColourProfilesValidates(t *testing.T) {
	err := Config{TilePath: t.TempDir(), ColourProfiles: "keep"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "ColourProfiles") {
		t.Errorf("Validate = %v, want a ColourProfiles error", err)
	}
}

// Renders of a tagged source depend on the policy: its identity says which,
// so caches revalidating after a change of ColourProfiles re-render it.
func TestIdentityCarriesThePolicyForTaggedSources(t *testing.T) {
	ident := map[string]map[string]string{}
	for _, mode := range []string{ColourConvert, ColourEmbed, ColourStrip} {
		v := colourVips(t, mode, nil)
		ident[mode] = map[string]string{}
		for _, id := range []string{"plain.tif", "srgb.tif", "adobe.tif"} {
			src, err := v.Info(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			ident[mode][id] = src.Identity
		}
	}
	if a, b, c := ident[ColourConvert]["plain.tif"], ident[ColourEmbed]["plain.tif"], ident[ColourStrip]["plain.tif"]; a != b || b != c {
		t.Errorf("untagged: identities %q %q %q differ", a, b, c)
	}
	if ident[ColourConvert]["srgb.tif"] != ident[ColourStrip]["srgb.tif"] || ident[ColourConvert]["srgb.tif"] == ident[ColourEmbed]["srgb.tif"] {
		t.Errorf("sRGB: identities %v", ident)
	}
	if a, b, c := ident[ColourConvert]["adobe.tif"], ident[ColourEmbed]["adobe.tif"], ident[ColourStrip]["adobe.tif"]; a == b || b == c || a == c {
		t.Errorf("Adobe RGB: identities %q %q %q should all differ", a, b, c)
	}
}

// TestConversionRunsOnTheFewestPixels: an Adobe RGB view is converted after
// the shrink, on the output's pixels only, each once, and by the inline
// shaper, not lcms; a transcoded tile converts its own pixels once.
func TestConversionRunsOnTheFewestPixels(t *testing.T) {
	v := colourVips(t, ColourConvert, nil)
	t.Logf("renders convert with the %s implementation", convName(shaperBest()))
	for _, tc := range []struct {
		id, path string
		w, h     int
	}{
		{"adobe-pyr.tif", "x/full/200,/0/default.jpg", 200, 160}, // from the 320 × 256 level, resized
		{"adobe.tif", "x/full/200,/0/default.jpg", 200, 160},     // from the whole image (strips)
		{"adobe-pyr.tif", "x/0,0,512,512/100,/0/default.jpg", 100, 100},
		{"adobe-pyr.tif", "x/256,256,256,256/256,/0/default.jpg", 256, 256}, // transcoded
		{"adobe-pyr.tif", "x/512,256,128,256/128,/0/default.jpg", 128, 256}, // transcoded edge tile
	} {
		before := shapedPixels()
		render(t, v, tc.id, tc.path)
		if n := shapedPixels() - before; n != uint64(tc.w*tc.h) {
			t.Errorf("%s %s: %d pixels converted by the shaper, want the output's %d × %d = %d",
				tc.id, tc.path, n, tc.w, tc.h, tc.w*tc.h)
		}
	}
}

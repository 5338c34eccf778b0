package corpus

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/iiif-proxy/iiif-proxy/internal/icc"
	"github.com/iiif-proxy/iiif-proxy/internal/imgmeta"
)

// The small version of the realistic corpus holds what each name promises.
func TestRealisticCorpus(t *testing.T) {
	adobe, err := os.ReadFile(DefaultAdobeRGB)
	if err != nil {
		t.Fatalf("%v: this test needs Debian's colord-data (make deps installs it)", err)
	}
	dir := t.TempDir()
	var log bytes.Buffer
	if err := GenerateRealistic(dir, Realistic(DefaultAdobeRGB), 600, 400, 1, &log); err != nil {
		t.Fatal(err)
	}
	tiff := func(name string) *imgmeta.IFD {
		t.Helper()
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		tf, err := imgmeta.ReadTIFF(f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(tf.Pages) < 2 || tf.Pages[0].TileWidth != 256 {
			t.Errorf("%s: %d pages, tiles %d: not a tiled pyramid", name, len(tf.Pages), tf.Pages[0].TileWidth)
		}
		return tf.Pages[0]
	}
	if d := tiff("real-plain.tif"); d.HasICC || !d.JPEGPassthrough() {
		t.Errorf("real-plain.tif: profile %v, JPEG tiles %v", d.HasICC, d.JPEGPassthrough())
	}
	if p, err := icc.Parse(tiff("real-srgb.tif").ICC); err != nil || !p.IsSRGB() {
		t.Errorf("real-srgb.tif: profile %v, not sRGB", err)
	}
	if d := tiff("real-adobe.tif"); !bytes.Equal(d.ICC, adobe) || !d.JPEGPassthrough() {
		t.Errorf("real-adobe.tif: %d-byte profile, want colord's Adobe RGB (%d)", len(d.ICC), len(adobe))
	}
	if d := tiff("real-adobe16.tif"); d.BitsPerSample != 16 || !bytes.Equal(d.ICC, adobe) {
		t.Errorf("real-adobe16.tif: %d bits, %d-byte profile", d.BitsPerSample, len(d.ICC))
	}
	if d := tiff("real-cmyk.tif"); d.SamplesPerPixel != 4 {
		t.Errorf("real-cmyk.tif: %d samples", d.SamplesPerPixel)
	} else if p, err := icc.Parse(d.ICC); err != nil || p.Space != icc.CMYK {
		t.Errorf("real-cmyk.tif: profile %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "real-flat.jpg")); !bytes.HasPrefix(b, []byte{0xFF, 0xD8}) {
		t.Error("real-flat.jpg is not a JPEG")
	}
	f, err := os.Open(filepath.Join(dir, "real-jp2.jp2"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if w, h, err := imgmeta.JP2TileSize(f); err != nil || w != 512 || h != 400 {
		t.Errorf("real-jp2.jp2: tiles %d×%d, %v", w, h, err)
	}
	// A second run skips what exists.
	log.Reset()
	if err := GenerateRealistic(dir, Realistic(DefaultAdobeRGB), 600, 400, 1, &log); err != nil || bytes.Count(log.Bytes(), []byte("exists")) != 7 {
		t.Errorf("second run: %v\n%s", err, log.String())
	}
}

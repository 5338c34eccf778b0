package corpus

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/iiif-proxy/iiif-proxy/renderer/vips"
)

// Variant is one file of the realistic corpus: the same scan stored the
// way a digitisation workflow might have stored it.
type Variant struct {
	Name   string      // file name
	Layout string      // vips layout (Generate)
	Pixels vips.Pixels // profile, conversion, depth
	What   string      // for the log and the README
}

// The pyramid layout of the issue-8 measurements: 256-pixel JPEG tiles at
// Q75, one page per level (what IIPImage reads).
const (
	pyramidQ75 = "tif[tile,pyramid,compression=jpeg,Q=75,tile-width=256,tile-height=256]"
	pyramid16  = "tif[tile,pyramid,compression=deflate,predictor=horizontal,tile-width=256,tile-height=256]"
)

// DefaultAdobeRGB is colord-data's Adobe RGB (1998) compatible profile.
const DefaultAdobeRGB = "/usr/share/color/icc/colord/AdobeRGB1998.icc"

// Realistic lists the realistic corpus: one scan (seeded, so every file holds
// the same picture) untagged, tagged sRGB (libvips' built-in 6.9 KB profile,
// pixels unchanged), converted to and tagged Adobe RGB (adobe names the
// profile file), in 16 bits per sample (Adobe RGB), converted to CMYK
// (libvips' built-in CMYK profile) as pyramids, and untagged as a flat JPEG
// and as a tiled JPEG 2000.
func Realistic(adobe string) []Variant {
	return []Variant{
		{"real-plain.tif", pyramidQ75, vips.Pixels{}, "untagged pyramid"},
		{"real-srgb.tif", pyramidQ75, vips.Pixels{Profile: "srgb"}, "sRGB-tagged pyramid (same pixels)"},
		{"real-adobe.tif", pyramidQ75, vips.Pixels{Profile: adobe, Convert: true}, "Adobe RGB pyramid"},
		{"real-adobe16.tif", pyramid16, vips.Pixels{Profile: adobe, Convert: true, Depth16: true}, "16-bit Adobe RGB pyramid (deflate)"},
		{"real-cmyk.tif", pyramidQ75, vips.Pixels{Profile: "cmyk", Convert: true}, "CMYK pyramid"},
		{"real-flat.jpg", "jpg[Q=85]", vips.Pixels{}, "flat JPEG"},
		{"real-jp2.jp2", "jp2[tile-width=512,tile-height=512,Q=45]", vips.Pixels{}, "JPEG 2000, 512-pixel tiles"},
	}
}

// GenerateRealistic writes the variants at width × height into dir,
// skipping files that exist, each under a temporary name renamed when
// complete. It starts and stops libvips, so it runs once per process.
func GenerateRealistic(dir string, variants []Variant, width, height, seed int, log io.Writer) error {
	if width < 64 || height < 64 || width > 30000 || height > 30000 {
		return fmt.Errorf("corpus: size %d×%d: want 64–30000 a side", width, height)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var todo []Variant
	for _, v := range variants {
		if _, err := os.Stat(filepath.Join(dir, v.Name)); err == nil {
			fmt.Fprintf(log, "%-24s exists\n", v.Name)
			continue
		}
		todo = append(todo, v)
	}
	if len(todo) == 0 {
		return nil
	}
	if err := vips.Startup(vips.Options{Concurrency: runtime.NumCPU()}); err != nil {
		return err
	}
	defer vips.Shutdown()
	for _, v := range todo {
		start := time.Now()
		ext := filepath.Ext(v.Name)
		tmp := filepath.Join(dir, ".tmp-"+strings.TrimSuffix(v.Name, ext))
		name, err := vips.GenerateWith(tmp, vips.Scan, v.Layout, width, height, seed, v.Pixels)
		if err == nil && !strings.HasSuffix(name, ext) {
			err = fmt.Errorf("corpus: renderer wrote %s, want %s", name, ext)
		}
		if err == nil {
			err = os.Rename(name, filepath.Join(dir, v.Name))
		}
		if err != nil {
			os.Remove(name)
			return fmt.Errorf("%s: %w", v.Name, err)
		}
		fi, _ := os.Stat(filepath.Join(dir, v.Name))
		fmt.Fprintf(log, "%-24s %-36s %d×%d %6.0f MB in %v\n", v.Name, v.What, width, height,
			float64(fi.Size())/1e6, time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}

package vips

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/iiif-proxy/iiif-proxy/rules"
)

// Benchmarks read a corpus of large synthetic scans, generated on first use
// into $IIIF_BENCH_CORPUS (default: $TMPDIR/iiif-proxy-bench) and reused.
var (
	corpusOnce sync.Once
	corpusDir  string
	corpusErr  error
)

const bigW, bigH = 20480, 11520

func corpus(b *testing.B) string {
	corpusOnce.Do(func() {
		corpusDir = os.Getenv("IIIF_BENCH_CORPUS")
		if corpusDir == "" {
			corpusDir = filepath.Join(os.TempDir(), "iiif-proxy-bench")
		}
		if corpusErr = os.MkdirAll(corpusDir, 0o755); corpusErr != nil {
			return
		}
		for _, f := range []struct{ name, layout string }{{"scan-pyramid", PyramidTIFF}, {"scan-plain", PlainJPEG}} {
			ext := ".tif"
			if f.layout == PlainJPEG {
				ext = ".jpg"
			}
			if _, err := os.Stat(filepath.Join(corpusDir, f.name+ext)); err == nil {
				continue
			}
			tmp := filepath.Join(corpusDir, ".tmp-"+f.name)
			name, err := Generate(tmp, Scan, f.layout, bigW, bigH, 7)
			if err != nil {
				corpusErr = err
				return
			}
			if corpusErr = os.Rename(name, filepath.Join(corpusDir, f.name+ext)); corpusErr != nil {
				return
			}
		}
	})
	if corpusErr != nil {
		b.Fatal(corpusErr)
	}
	return corpusDir
}

// benchRender renders the IIIF paths in turn, b.N times in all.
func benchRender(b *testing.B, id string, paths []string) {
	benchRenderWith(b, Config{}, id, paths)
}

// benchRenderWith is benchRender with cfg's settings (TilePath, Concurrency
// and OpenCacheLen are the benchmark's).
func benchRenderWith(b *testing.B, cfg Config, id string, paths []string) {
	cfg.TilePath, cfg.Concurrency, cfg.OpenCacheLen = corpus(b), 1, benchOpenCache
	v := newVips(b, cfg)
	src, err := v.Info(context.Background(), id)
	if err != nil {
		b.Fatal(err)
	}
	res := make([]rules.Resolved, len(paths))
	for i, p := range paths {
		req, err := rules.Parse(rules.V3, p)
		if err != nil {
			b.Fatal(err)
		}
		if res[i], err = req.Resolve(rules.ImageInfo{Width: src.Width, Height: src.Height}, rules.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	var bytes int64
	i := 0
	cpu0 := cpuTime()
	for b.Loop() {
		img, err := v.Render(context.Background(), src, res[i%len(res)])
		if err != nil {
			b.Fatal(err)
		}
		bytes += int64(len(img.Body))
		i++
	}
	b.ReportMetric(float64(bytes)/float64(i), "B/img")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(i), "cpu-ns/op")
}

// cpuTime is the process's user and system CPU time so far, in ns. On a
// shared machine a benchmark's wall time counts other jobs' turns too; its
// CPU time per op (reported as cpu-ns/op) does not.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// tiles lists distinct 256-px tile URLs at scale factor f.
func tiles(f, n int) []string {
	var out []string
	span := 256 * f
	for y := 0; y+span <= bigH && len(out) < n; y += span {
		for x := 0; x+span <= bigW && len(out) < n; x += span {
			out = append(out, fmt.Sprintf("x/%d,%d,%d,%d/256,256/0/default.jpg", x, y, span, span))
		}
	}
	return out
}

func BenchmarkTilePyramidFull(b *testing.B) { benchRender(b, "scan-pyramid.tif", tiles(1, 512)) }

func BenchmarkTilePyramidEighth(b *testing.B) { benchRender(b, "scan-pyramid.tif", tiles(8, 512)) }

// edgeTiles8 lists the 1/8-scale tiles of the bottom row: the level is
// 2560 × 1440, so they are 256 × 160, stored padded to 256 × 256.
func edgeTiles8() []string {
	var out []string
	for x := 0; x < bigW; x += 2048 {
		out = append(out, fmt.Sprintf("x/%d,%d,2048,%d/256,160/0/default.jpg", x, bigH/2048*2048, bigH%2048))
	}
	return out
}

// allTiles8 lists every 1/8-scale tile, the bottom row's partial ones
// included (10 of 60), as the pass-through benchmark over HTTP walks them.
func allTiles8() []string { return append(tiles(8, 512), edgeTiles8()...) }

// BenchmarkPassthroughEighth: pass-through on, every 1/8-scale tile.
func BenchmarkPassthroughEighth(b *testing.B) {
	benchRenderWith(b, Config{TilePassthrough: true}, "scan-pyramid.tif", allTiles8())
}

// BenchmarkPassthroughEdgeEighth: pass-through on, the partial tiles of
// the 1/8 level's bottom row only.
func BenchmarkPassthroughEdgeEighth(b *testing.B) {
	benchRenderWith(b, Config{TilePassthrough: true}, "scan-pyramid.tif", edgeTiles8())
}

func BenchmarkThumb1024Pyramid(b *testing.B) {
	benchRender(b, "scan-pyramid.tif", []string{"x/full/1024,/0/default.jpg"})
}

func BenchmarkThumb1024PlainJPEG(b *testing.B) {
	benchRender(b, "scan-plain.jpg", []string{"x/full/1024,/0/default.jpg"})
}

// BenchmarkTilePlainJPEGFull is the worst case of a plain JPEG source: a
// full-resolution tile near the bottom decodes nearly every row above it.
func BenchmarkTilePlainJPEGFull(b *testing.B) {
	benchRender(b, "scan-plain.jpg", []string{fmt.Sprintf("x/%d,%d,256,256/256,/0/default.jpg", bigW/2, bigH-512)})
}

func BenchmarkTilePlainJPEGEighth(b *testing.B) {
	benchRender(b, "scan-plain.jpg", tiles(8, 64))
}

var benchOpenCache = 0

// The realistic corpus (iiif-bench corpus -realistic), when it is in
// $IIIF_BENCH_CORPUS: the same scan tagged sRGB, converted to Adobe RGB,
// and as JPEG 2000. Renders re-encode (no pass-through).
func benchReal(b *testing.B, id string, paths []string) {
	if _, err := os.Stat(filepath.Join(corpus(b), id)); err != nil {
		b.Skipf("%s is not in the corpus (iiif-bench corpus -realistic %s)", id, corpus(b))
	}
	benchRender(b, id, paths)
}

func BenchmarkTileSRGBTagged(b *testing.B) { benchReal(b, "real-srgb.tif", tiles(1, 512)) }

func BenchmarkTileAdobeRGB(b *testing.B) { benchReal(b, "real-adobe.tif", tiles(1, 512)) }

// BenchmarkTileAdobeRGBEdgeEighth: the partial 1/8-scale tiles of the
// bottom row (256 × 160), converted.
func BenchmarkTileAdobeRGBEdgeEighth(b *testing.B) { benchReal(b, "real-adobe.tif", edgeTiles8()) }

// BenchmarkTileAdobeRGBEighth: every 1/8-scale tile, the partial ones
// included, converted (as the HTTP benchmark walks them).
func BenchmarkTileAdobeRGBEighth(b *testing.B) { benchReal(b, "real-adobe.tif", allTiles8()) }

// BenchmarkTileCMYK: full-resolution tiles of the CMYK pyramid (JPEG
// tiles, libvips' CMYK profile), converted to sRGB by lcms.
func BenchmarkTileCMYK(b *testing.B) { benchReal(b, "real-cmyk.tif", tiles(1, 256)) }

// BenchmarkTileAdobeRGB16: full-resolution tiles of the 16-bit Adobe RGB
// pyramid (deflate tiles), converted to 8-bit sRGB by lcms.
func BenchmarkTileAdobeRGB16(b *testing.B) { benchReal(b, "real-adobe16.tif", tiles(1, 256)) }

func BenchmarkThumb1024AdobeRGB(b *testing.B) {
	benchReal(b, "real-adobe.tif", []string{"x/full/1024,/0/default.jpg"})
}

func BenchmarkTileJP2(b *testing.B) { benchReal(b, "real-jp2.jp2", tiles(1, 256)) }

func BenchmarkThumb1024JP2(b *testing.B) {
	benchReal(b, "real-jp2.jp2", []string{"x/full/1024,/0/default.jpg"})
}

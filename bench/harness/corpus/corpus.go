// Package corpus generates a deterministic corpus of large test images for
// load tests: photographed-page content (paper texture, fibres, paragraphs
// of text, from vips.Generate) so that JPEG tiles weigh what real scans'
// do, as plain JPEG, tiled pyramidal TIFF and JPEG 2000, from 4,000 to
// 30,000 pixels a side.
//
// Image i of a plan depends only on the seed and i, never on how many images
// are asked for, so a larger corpus extends a smaller one. Files are named
// "c{i}-{width}x{height}.{ext}"; existing files are skipped, and a file is
// written under a temporary name and renamed, so an interrupted run leaves
// no half image behind.
package corpus

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/iiif-proxy/iiif-proxy/renderer/vips"
)

// Formats and their renderer layouts.
var layouts = map[string]string{
	"tif": vips.PyramidTIFF,
	"jpg": vips.PlainJPEG,
	"jp2": vips.JP2,
}

// Options choose the corpus.
type Options struct {
	// Count is the number of images. Zero means 12.
	Count int
	// MinSide and MaxSide bound both sides of every image. Zero means 4000
	// and 20000; at most 30000.
	MinSide, MaxSide int
	// MaxJP2Side bounds the sides of JPEG 2000 images, whose encoding is
	// slow: about 7 megapixels a second on two cores, a third of TIFF's.
	// Zero means 8000.
	MaxJP2Side int
	// Formats are cycled through image by image: "tif", "jpg", "jp2". Nil
	// means all three.
	Formats []string
	// Seed selects the corpus. Zero is a valid seed.
	Seed uint64
}

// WithDefaults fills zero fields.
func (o Options) WithDefaults() Options {
	if o.Count == 0 {
		o.Count = 12
	}
	if o.MinSide == 0 {
		o.MinSide = 4000
	}
	if o.MaxSide == 0 {
		o.MaxSide = 20000
	}
	if o.MaxJP2Side == 0 {
		o.MaxJP2Side = 8000
	}
	if len(o.Formats) == 0 {
		o.Formats = []string{"tif", "jpg", "jp2"}
	}
	return o
}

// Validate reports every bad field at once.
func (o Options) Validate() error {
	var errs []error
	if o.Count < 1 {
		errs = append(errs, fmt.Errorf("count %d: must be ≥ 1", o.Count))
	}
	if o.MinSide < 64 || o.MaxSide > 30000 || o.MinSide > o.MaxSide {
		errs = append(errs, fmt.Errorf("sides %d–%d: want 64 ≤ min ≤ max ≤ 30000", o.MinSide, o.MaxSide))
	}
	if o.MaxJP2Side < 64 {
		errs = append(errs, fmt.Errorf("JPEG 2000 side %d: must be ≥ 64", o.MaxJP2Side))
	}
	for _, f := range o.Formats {
		if layouts[f] == "" {
			errs = append(errs, fmt.Errorf("format %q: want tif, jpg or jp2", f))
		}
	}
	return errors.Join(errs...)
}

// Item is one planned image.
type Item struct {
	Name          string // file name without extension
	Format        string // tif, jpg or jp2
	Width, Height int
	Seed          int
}

// File is the item's file name.
func (it Item) File() string { return it.Name + "." + it.Format }

// Aspect ratios of what libraries digitise: pages, plates, maps, panoramas.
var aspects = []float64{4.0 / 3, 3.0 / 4, 1.414, 1 / 1.414, 1, 3.0 / 2, 2.0 / 3, 2}

// Plan lists the images o describes. Sizes are log-uniform between the
// bounds, so small and large images are equally common by order of
// magnitude.
func Plan(o Options) ([]Item, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	items := make([]Item, o.Count)
	for i := range items {
		rng := rand.New(rand.NewPCG(o.Seed, uint64(i)))
		format := o.Formats[i%len(o.Formats)]
		hi := o.MaxSide
		if format == "jp2" {
			hi = min(hi, o.MaxJP2Side)
		}
		lo := min(o.MinSide, hi)
		a := aspects[rng.IntN(len(aspects))]
		r := math.Max(a, 1/a)
		// The long side is log-uniform over what leaves the short side ≥ lo.
		from := math.Min(float64(lo)*r, float64(hi))
		long := from * math.Pow(float64(hi)/from, rng.Float64())
		w, h := long, long/r
		if a < 1 {
			w, h = h, w
		}
		clamp := func(v float64) int { return int(math.Round(math.Min(math.Max(v, float64(lo)), float64(hi)))) }
		items[i] = Item{Format: format, Width: clamp(w), Height: clamp(h), Seed: int(rng.Int32())}
		items[i].Name = fmt.Sprintf("c%03d-%dx%d", i, items[i].Width, items[i].Height)
	}
	return items, nil
}

// Generate writes the planned images into dir, skipping those that exist,
// and logs one line per image to log. It starts libvips (vips.Startup)
// and stops it when done, so it runs once per process.
func Generate(dir string, items []Item, log io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var todo []Item
	for _, it := range items {
		if _, err := os.Stat(filepath.Join(dir, it.File())); err == nil {
			fmt.Fprintf(log, "%-40s exists\n", it.File())
			continue
		}
		todo = append(todo, it)
	}
	if len(todo) == 0 {
		return nil
	}
	if err := vips.Startup(vips.Options{Concurrency: runtime.NumCPU()}); err != nil {
		return err
	}
	defer vips.Shutdown()
	for _, it := range todo {
		start := time.Now()
		tmp := filepath.Join(dir, ".tmp-"+it.Name)
		name, err := vips.Generate(tmp, vips.Scan, layouts[it.Format], it.Width, it.Height, it.Seed)
		if err == nil && !strings.HasSuffix(name, "."+it.Format) {
			err = fmt.Errorf("corpus: renderer wrote %s, want .%s", name, it.Format)
		}
		if err == nil {
			err = os.Rename(name, filepath.Join(dir, it.File()))
		}
		if err != nil {
			os.Remove(name)
			return err
		}
		fmt.Fprintf(log, "%-40s %5.0f MP in %v\n", it.File(), float64(it.Width)*float64(it.Height)/1e6,
			time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}

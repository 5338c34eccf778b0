package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/iiif-proxy/iiif-proxy/renderer/vips"
)

// sample is one generated sample image.
type sample struct {
	name          string
	content       vips.Content
	layout        string
	width, height int
	small         bool // part of the -small set (tests, quick starts)
}

var samples = []sample{
	{"pattern", vips.Pattern, vips.PyramidTIFF, 4000, 3000, true},
	{"scan-pyramid", vips.Scan, vips.PyramidTIFF, 20480, 11520, false},
	{"scan-plain", vips.Scan, vips.PlainJPEG, 20480, 11520, false},
	{"page", vips.Scan, vips.PyramidTIFF, 3000, 4000, true},
	{"page-plain", vips.Scan, vips.PlainJPEG, 3000, 4000, true},
	{"page-jp2", vips.Scan, vips.JP2, 3000, 4000, true},
	{"page-png", vips.Scan, vips.PNG, 1200, 1600, true},
	{"page-webp", vips.Scan, vips.WebP, 1200, 1600, true},
}

// samplesCmd generates the sample images that the default configuration
// serves, skipping files that already exist.
func samplesCmd(args []string) int {
	fs := newFlagSet("samples", "samples [-dir DIR] [-small] [-only NAMES]\n\n"+
		"Writes the sample images the shipped configuration serves, skipping those that exist.")
	dir := fs.String("dir", "samples", "Directory to write the images to.")
	small := fs.Bool("small", false, "Write only the small images (seconds instead of a minute).")
	only := fs.String("only", "", "Write only these images, by name, comma-separated (e.g. pattern,page).")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "iiif-proxy samples:", err)
		return 1
	}
	if err := vips.Startup(vips.Options{Concurrency: runtime.NumCPU()}); err != nil {
		fmt.Fprintln(os.Stderr, "iiif-proxy samples:", err)
		return 1
	}
	defer vips.Shutdown()
	for i, s := range samples {
		if *small && !s.small {
			continue
		}
		if *only != "" && !slices.Contains(strings.Split(*only, ","), s.name) {
			continue
		}
		base := filepath.Join(*dir, s.name)
		if m, _ := filepath.Glob(base + ".*"); len(m) > 0 {
			fmt.Printf("%-40s exists\n", m[0])
			continue
		}
		start := time.Now()
		tmp := filepath.Join(*dir, ".tmp-"+s.name)
		name, err := vips.Generate(tmp, s.content, s.layout, s.width, s.height, 1000+i)
		if err == nil {
			err = os.Rename(name, base+filepath.Ext(name))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "iiif-proxy samples:", err)
			return 1
		}
		fmt.Printf("%-40s %d×%d in %s\n", base+filepath.Ext(name), s.width, s.height, time.Since(start).Round(time.Millisecond))
	}
	return 0
}

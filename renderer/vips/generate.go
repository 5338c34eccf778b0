package vips

// #include <stdlib.h>
// #include "shim.h"
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// Content is what Generate draws.
type Content int

const (
	// Pattern is a PatternCols × PatternRows grid of the PatternColors, for
	// tests that assert a region, rotation or mirror by the colours returned.
	Pattern Content = iota
	// Scan looks like a photographed page: paper texture with fibres and
	// grain, and paragraphs of text, so its JPEG tiles weigh what real scans'
	// do. Seeded, so a corpus is reproducible.
	Scan
)

// The test pattern's grid and colours, row-major: cell (c, r) is
// PatternColors[r*PatternCols+c]. Saturated and far apart, so they survive
// JPEG compression and resampling.
const PatternCols, PatternRows = 4, 3

var PatternColors = [PatternCols * PatternRows][3]uint8{
	{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 0},
	{0, 255, 255}, {255, 0, 255}, {255, 255, 255}, {0, 0, 0},
	{255, 128, 0}, {128, 0, 255}, {0, 128, 64}, {128, 128, 128},
}

// Layouts for Generate: libvips save options by file kind.
const (
	// PyramidTIFF is a tiled, JPEG-compressed pyramidal TIFF, one page per level.
	PyramidTIFF = "tif[tile,pyramid,compression=jpeg,Q=80,tile-width=256,tile-height=256]"
	// SubIFDTIFF is the same pyramid stored as sub-IFDs.
	SubIFDTIFF = "tif[tile,pyramid,subifd,compression=jpeg,Q=80,tile-width=256,tile-height=256]"
	// StripTIFF is an untiled, deflate-compressed TIFF.
	StripTIFF = "tif[compression=deflate]"
	// PlainJPEG is a baseline JPEG.
	PlainJPEG = "jpg[Q=85]"
	// JP2 is a tiled, lossy JPEG 2000 with its resolution levels.
	JP2  = "jp2[tile-width=512,tile-height=512,Q=45]"
	PNG  = "png"
	WebP = "webp[Q=85]"
)

// Generate writes a width × height image of content c to path, whose name
// must not carry an extension: layout (one of the constants above) supplies
// the extension and options. It returns the file's full name. Generation is a
// lazy libvips pipeline, so memory stays small even at 30,000 pixels a side.
func Generate(path string, c Content, layout string, width, height, seed int) (string, error) {
	return GenerateWith(path, c, layout, width, height, seed, Pixels{})
}

// Pixels say how Generate stores the drawn (sRGB) pixels.
type Pixels struct {
	// Profile, when set, is an ICC profile written into the file: a file
	// name or a libvips built-in ("srgb", "cmyk", "p3").
	Profile string
	// Convert converts the pixels to Profile first (a CMYK profile makes a
	// CMYK image); otherwise they are only tagged with it.
	Convert bool
	// Depth16 stores 16 bits per sample.
	Depth16 bool
}

// GenerateWith is Generate with the pixels stored as px says: the realistic
// corpus's tagged, converted, CMYK and 16-bit sources.
func GenerateWith(path string, c Content, layout string, width, height, seed int, px Pixels) (string, error) {
	if !started.Load() {
		return "", errors.New("renderer: call Startup before Generate")
	}
	if width < 1 || height < 1 {
		return "", fmt.Errorf("renderer: bad size %d×%d", width, height)
	}
	ext, opts, _ := strings.Cut(layout, "[")
	name := path + "." + ext
	target := name
	if opts != "" {
		target += "[" + opts
	}
	var pal [len(PatternColors) * 3]C.uchar
	for i, col := range PatternColors {
		for j := range 3 {
			pal[i*3+j] = C.uchar(col[j])
		}
	}
	ct := C.CString(target)
	defer C.free(unsafe.Pointer(ct))
	var cerr *C.char
	var prof *C.char
	if px.Profile != "" {
		prof = C.CString(px.Profile)
		defer C.free(unsafe.Pointer(prof))
	}
	if C.iiif_make(ct, C.int(c), C.int(width), C.int(height), C.int(seed), &pal[0], PatternCols, PatternRows,
		prof, cbool(px.Convert), cbool(px.Depth16), &cerr) != 0 {
		msg := C.GoString(cerr)
		C.iiif_free(unsafe.Pointer(cerr))
		return "", fmt.Errorf("renderer: generating %s: %s", name, strings.TrimSpace(msg))
	}
	return name, nil
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

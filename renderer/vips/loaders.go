package vips

/*
#include <vips/vips.h>

// iiif_restrict_loaders blocks every libvips loader, then lets through the
// ones for the source formats iiif-proxy reads. Block flags live on the
// classes, so a loader's file, buffer and source variants all follow its
// base class.
static void iiif_restrict_loaders(void) {
	vips_operation_block_set("VipsForeignLoad", TRUE);
	static const char *allowed[] = {
		"VipsForeignLoadJpeg", "VipsForeignLoadPng", "VipsForeignLoadWebp",
		"VipsForeignLoadNsgif", "VipsForeignLoadTiff", "VipsForeignLoadJp2k",
	};
	for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
		vips_operation_block_set(allowed[i], FALSE);
}
*/
import "C"

import (
	"bytes"
	"strings"
)

// restrictLoaders lets libvips decode only the source formats the README
// promises (JPEG, PNG, WebP, GIF, TIFF, JPEG 2000). Debian's libvips also
// links ImageMagick, poppler (PDF), librsvg (SVG), OpenSlide, FITS, MATLAB,
// OpenEXR, CSV, raw and PPM loaders: a stray PDF, SVG or a file that
// ImageMagick hands to one of its delegates in TilePath would otherwise be
// decoded by code paths that are neither tested here nor bounded by the
// renderer's budgets (a PDF page is rasterised whole; an SVG can ask for
// any size). Blocked, such a file is a 422 like any undecodable one.
func restrictLoaders() { C.iiif_restrict_loaders() }

// magics are the first bytes of the promised formats.
var magics = []struct {
	prefix []byte
	at     int
	name   string
}{
	{[]byte("II*\x00"), 0, "TIFF"}, {[]byte("MM\x00*"), 0, "TIFF"},
	{[]byte("II+\x00"), 0, "BigTIFF"}, {[]byte("MM\x00+"), 0, "BigTIFF"},
	{[]byte("\xff\xd8\xff"), 0, "JPEG"}, {[]byte("\x89PNG"), 0, "PNG"}, {[]byte("GIF8"), 0, "GIF"},
	{[]byte("WEBP"), 8, "WebP"}, {[]byte("\x00\x00\x00\x0cjP  "), 0, "JPEG 2000"}, {[]byte("\xff\x4f\xff\x51"), 0, "JPEG 2000"},
}

// sniffed improves a decoder message that only says ImageMagick is
// blocked: libvips offers ImageMagick what none of the allowed loaders
// claims, which is also what a TIFF whose directory libtiff cannot read
// (a truncated one) comes to. When the file starts like a promised format,
// the log says so instead of naming a loader nobody asked for.
func sniffed(msg string, in input) string {
	if !strings.Contains(msg, "magickload: operation is blocked") {
		return msg
	}
	var head [12]byte
	n, _ := in.reader().ReadAt(head[:], 0)
	for _, m := range magics {
		if n >= m.at+len(m.prefix) && bytes.Equal(head[m.at:m.at+len(m.prefix)], m.prefix) {
			return "it starts as a " + m.name + " file, but the " + m.name + " loader cannot read its header: the file is truncated or damaged"
		}
	}
	return msg
}

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

// restrictLoaders lets libvips decode only the source formats the README
// promises (JPEG, PNG, WebP, GIF, TIFF, JPEG 2000). Debian's libvips also
// links ImageMagick, poppler (PDF), librsvg (SVG), OpenSlide, FITS, MATLAB,
// OpenEXR, CSV, raw and PPM loaders: a stray PDF, SVG or a file that
// ImageMagick hands to one of its delegates in TilePath would otherwise be
// decoded by code paths that are neither tested here nor bounded by the
// renderer's budgets (a PDF page is rasterised whole; an SVG can ask for
// any size). Blocked, such a file is a 422 like any undecodable one.
func restrictLoaders() { C.iiif_restrict_loaders() }

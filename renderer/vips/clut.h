// clut.h: 8-bit CMYK to 8-bit RGB through a 4-dimensional lookup table,
// inline instead of through lcms. A CMYK profile's conversion is a table,
// which lcms samples into a grid of 17 points per input channel and
// interpolates per pixel (tetrahedral on three inputs, linear on the
// first): at 8 bits that costs about 40 ns a pixel on the test machine, half
// a CMYK tile's render, mostly in its generic 8-to-16-bit formatters and
// per-pixel calls. iiif_clut4 samples lcms' own transform at the grid's
// nodes once per profile and interpolates with lcms' arithmetic (the same
// fixed point, the same rounding), inline.
#ifndef IIIF_CLUT_H
#define IIIF_CLUT_H

#include <lcms2.h>

typedef struct clut4 clut4;

// iiif_clut4_new builds the table from tr16, an lcms transform from 16-bit
// CMYK to 16-bit RGB of the same profiles, intent and flags as the 8-bit
// one it stands in for. NULL on failure (lcms then does the work).
clut4 *iiif_clut4_new(cmsHTRANSFORM tr16);

void iiif_clut4_free(clut4 *cl);

// iiif_clut4 converts n CMYK pixels (4 bytes each) from in to n RGB pixels
// (3 bytes each) at out, which must not overlap in unless out == in.
// It runs the fastest implementation this CPU has (AVX2, as shaper.h).
void iiif_clut4(const clut4 *cl, const unsigned char *in, unsigned char *out, int n);

// iiif_clut4_with is iiif_clut4 with impl, an enum iiif_shape_impl (which
// must be available: iiif_shape_has), for tests and benchmarks.
void iiif_clut4_with(int impl, const clut4 *cl, const unsigned char *in, unsigned char *out, int n);

#endif

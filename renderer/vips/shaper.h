// shaper.h: 8-bit RGB to 8-bit RGB conversion between two matrix-shaper
// profiles (Adobe RGB, eciRGB, ProPhoto, Display P3 and sRGB itself are all
// such), inline instead of through lcms' generic formatters: a tone curve per
// channel to linear light, one 3 × 3 matrix (PCS to PCS, both D50), the
// inverse tone curves of the output profile. colour.c uses it for the
// transforms it caches when it applies, lcms otherwise.
//
// Two implementations compute the same bytes: a portable scalar one, and
// on x86-64 CPUs with AVX2 one that converts 8 pixels at a time (gathers
// from the same tables, the same float arithmetic in the same order),
// chosen once at run time. bench/RESULTS.md ("SIMD conversion") has the
// figures.
#ifndef IIIF_SHAPER_H
#define IIIF_SHAPER_H

#include <lcms2.h>

typedef struct shaper shaper;

// iiif_shaper_new builds the shaper from in to out, for 16-bit inputs too
// when sixteen, or returns NULL when either is not a matrix-shaper profile
// (lcms then does the work). Free it with iiif_shaper_free.
shaper *iiif_shaper_new(cmsHPROFILE in, cmsHPROFILE out, int sixteen);

void iiif_shaper_free(shaper *sh);

// iiif_shape converts n RGB pixels from in to out (which may be in), with
// the fastest implementation this CPU runs.
void iiif_shape(const shaper *sh, const unsigned char *in, unsigned char *out, int n);

// iiif_shape16 converts n 16-bit RGB pixels at in to n 8-bit ones at out,
// which may be in (out trails in), with the fastest implementation. sh
// must have been built with sixteen. The 16-bit input curves are tables
// read with linear interpolation.
void iiif_shape16(const shaper *sh, const unsigned short *in, unsigned char *out, int n);

// Implementations, for tests and benchmarks: IIIF_SHAPE_SCALAR always runs;
// IIIF_SHAPE_AVX2 only where iiif_shape_has(IIIF_SHAPE_AVX2).
enum iiif_shape_impl { IIIF_SHAPE_SCALAR = 0, IIIF_SHAPE_AVX2 = 1 };

// iiif_shape_has reports whether this build and CPU run impl.
int iiif_shape_has(int impl);

// iiif_shape_with is iiif_shape with impl (which must be available).
void iiif_shape_with(int impl, const shaper *sh, const unsigned char *in, unsigned char *out, int n);

// iiif_shape16_with is iiif_shape16 with impl (which must be available).
void iiif_shape16_with(int impl, const shaper *sh, const unsigned short *in, unsigned char *out, int n);

// iiif_shape_best is the implementation iiif_shape runs.
int iiif_shape_best(void);

#endif

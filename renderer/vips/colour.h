// colour.h: colour profiles in the pipeline. One lcms2 transform per
// distinct embedded profile (and pixel layout), built on first use, kept for
// the life of the process and shared by every render and thread, instead of
// libvips' vips_icc_transform, which opens the profiles and builds a new
// transform for every pipeline: with a 3 KB profile that cost ten times a
// 256-pixel tile's whole render. The pixels of the two commonest kinds are
// converted inline rather than through lcms' generic per-pixel code: 8-bit
// RGB between matrix-shaper profiles by shaper.h (AVX2 where the CPU has
// it), 8-bit CMYK by clut.h (lcms' own table and interpolation).
#ifndef IIIF_COLOUR_H
#define IIIF_COLOUR_H

#include <vips/vips.h>

// iiif_icc_convert makes *out, in converted to 8-bit sRGB (libvips' built-in
// sRGB profile, relative colorimetric, no black point compensation: what
// vips_icc_transform(in, "srgb", "embedded", TRUE, "depth", 8) gives) with
// the profile embedded in in, whose key (a hash of its bytes) the caller
// computed once. in must be 3-band RGB or 4-band CMYK, 8 or 16 bit, RGB
// optionally with alpha. On -1 (a layout or profile lcms cannot handle)
// nothing is made and the libvips error buffer says why.
int iiif_icc_convert(VipsImage *in, unsigned long long key, VipsImage **out);

// iiif_icc_check builds (and caches) the transform for in's embedded
// profile, so that a profile lcms rejects is found once, when the source is
// described, not on every render. 0: usable; -1: not, with a libvips error.
int iiif_icc_check(VipsImage *in, unsigned long long key);

// iiif_icc_rgb8_rows converts rows of 8-bit RGB pixels (width of them in
// each row, rows starting stride pixels apart) in place from profile (len
// bytes, key its hash) to sRGB with the cached transform.
int iiif_icc_rgb8_rows(unsigned long long key, const void *profile, size_t len, unsigned char *pixels, int width,
                       int rows, int stride);

// IIIF_ICC_CLUT and IIIF_ICC_CLUT_AVX2 name the inline CMYK table's
// implementations (clut.h) to iiif_icc_with, scalar and AVX2.
#define IIIF_ICC_CLUT 2
#define IIIF_ICC_CLUT_AVX2 3

// Pixel layouts for iiif_icc_with.
enum iiif_icc_layout { IIIF_ICC_RGB8 = 0, IIIF_ICC_CMYK8 = 1, IIIF_ICC_RGB16 = 2 };

// iiif_icc_with converts n pixels of layout (native-endian samples) from
// profile to 8-bit sRGB with the cached transform's implementation impl:
// -1 lcms itself, IIIF_ICC_CLUT(_AVX2) the table, else an enum iiif_shape_impl
// (shaper.h). -1 when impl does not
// apply (not a matrix-shaper profile, not CMYK, or the CPU lacks impl).
// For tests and benchmarks, which compare the implementations.
int iiif_icc_with(unsigned long long key, const void *profile, size_t len, int layout, const void *in,
                  unsigned char *out, int n, int impl);

// iiif_icc_shaped is how many pixels the inline shaper (shaper.h) has
// converted, for tests that check where in a pipeline the conversion runs
// and that it takes the fast path.
guint64 iiif_icc_shaped(void);

// iiif_icc_transforms is how many transforms are cached.
int iiif_icc_transforms(void);

#endif

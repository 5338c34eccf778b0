// direct.h: rendering small JPEG outputs on the calling thread.
//
// vips_jpegsave_buffer evaluates its pipeline through vips_sink_disc: a
// worker thread computes the pixels and a write-behind thread runs libjpeg,
// while the calling thread waits. For a 256-pixel tile the work is well
// under a millisecond, and on a busy core every hand-off between those
// threads is a context switch (18 % of the core in perf, bench/RESULTS.md).
// iiif_direct_jpeg computes the output in one region on the calling thread
// and compresses it there with libjpeg(-turbo), with the settings
// vips_jpegsave uses (baseline, standard tables, 4:2:0 chroma below Q90,
// no optimised Huffman coding).
#ifndef IIIF_DIRECT_H
#define IIIF_DIRECT_H

#include <stddef.h>
#include <vips/vips.h>

// IIIF_DIRECT_MAX_PIXELS bounds the outputs rendered this way: the whole
// output is held in memory at once (4 MB at 3 bands).
#define IIIF_DIRECT_MAX_PIXELS (1024 * 1024)

// iiif_direct_ok reports whether im (the final 8-bit image) can be encoded
// by iiif_direct_jpeg.
int iiif_direct_ok(VipsImage *im);

// iiif_direct_jpeg evaluates im on this thread and encodes it as a JPEG of
// quality q into *buf (g_free it). -1 with a libvips error on failure.
int iiif_direct_jpeg(VipsImage *im, int q, void **buf, size_t *len);

// iiif_transcode_jpeg decodes a whole JPEG (a stored pyramid tile, made
// complete by imgmeta.AppendJPEGTile) and encodes its top-left ow × oh
// again at quality q (the whole tile, or the part of a padded edge tile
// inside the level), converting its pixels from profile icc (icc_len
// bytes, icc_key its hash) to sRGB first when icc is not NULL: what
// IIPImage does for a tile, with none of a libvips pipeline's set-up. -1
// on any decoder error or warning, or an ow × oh larger than the tile.
int iiif_transcode_jpeg(const void *in, size_t inlen, int ow, int oh, int q, unsigned long long icc_key,
                        const void *icc, size_t icc_len, void **buf, size_t *len);

#endif

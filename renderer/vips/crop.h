// crop.h: partial edge tiles of a pyramid, cropped without decoding.
//
// libtiff stores the tiles on a level's right and bottom edges padded to
// the full tile size, so a request for an edge tile (the 256 × 160 tiles on
// the bottom row of a 2560 × 1440 level) is smaller than the stored JPEG.
// The crop's origin is the stored tile's (0, 0), always on an iMCU
// boundary, so it can be done on the DCT coefficients, as `jpegtran -crop
// WxH+0+0` does: the coefficients are read (entropy decoding only), and
// written again under the smaller image dimensions; blocks past them are
// not written. No pixel is decoded or quantised again. The frame header is
// shortened to the crop's height before reading, so the rows below it are
// not even entropy-decoded (libjpeg skips them as extraneous data).
//
// Entropy coding is most of the cost (perf: Huffman decoding and the SIMD
// Huffman encoder), so a crop costs about as much CPU as reading and
// writing the kept part of the tile.
#ifndef IIIF_CROP_H
#define IIIF_CROP_H

#include <stddef.h>

// iiif_crop_jpeg writes the top-left w × h of the complete baseline JPEG in
// (inlen bytes) to *buf (g_free it), losslessly. -1 with a libvips error
// when in is damaged (a libjpeg warning counts) or smaller than w × h. It
// overwrites the height in in's frame header.
int iiif_crop_jpeg(void *in, size_t inlen, int w, int h, void **buf, size_t *len);

#endif

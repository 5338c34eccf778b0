// jpegerr.h: libjpeg error handling shared by the calling-thread encoder
// (direct.c) and the lossless crop (crop.c): errors become a libvips error
// and a longjmp back to the caller, so no libjpeg error ever exits the
// process.
#ifndef IIIF_JPEGERR_H
#define IIIF_JPEGERR_H

#include <stdio.h>
#include <setjmp.h>
#include <jpeglib.h>

typedef struct {
	struct jpeg_error_mgr pub;
	jmp_buf jmp;
} iiif_jpeg_err;

// iiif_jpeg_on_error reports the message with vips_error and longjmps to
// the iiif_jpeg_err's jmp.
void iiif_jpeg_on_error(j_common_ptr c);

// iiif_jpeg_on_quiet drops every message: when compressing, none matter.
void iiif_jpeg_on_quiet(j_common_ptr c, int level);

// iiif_jpeg_on_warning makes a warning an error when decompressing: libjpeg
// only warns about truncated or damaged entropy-coded data, and a damaged
// stored tile must fail, so that the caller renders through libvips, which
// reports it.
void iiif_jpeg_on_warning(j_common_ptr c, int level);

#endif

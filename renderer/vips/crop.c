// crop.c: see crop.h.
#include <stdlib.h>
#include <vips/vips.h>

#include <jerror.h>

#include "crop.h"
#include "jpegerr.h"

// shorten writes h into the frame header of the JPEG in (a baseline or
// extended sequential SOF) when it says more, so that the decoder reads
// only the MCU rows the crop keeps, and not the padding below them (38 % of
// a 256 × 160 edge tile). 0 when there is no such header before the scan.
static int shorten(unsigned char *in, size_t len, int h) {
	size_t i = 2;
	while (i + 4 <= len && in[i] == 0xFF) {
		unsigned char m = in[i + 1];
		size_t seglen = ((size_t)in[i + 2] << 8) | in[i + 3];
		if (m == 0xDA) break; // start of scan: no frame header before it
		if (m == 0xC0 || m == 0xC1) {
			if (i + 9 > len) return 0;
			if (h < (in[i + 5] << 8 | in[i + 6])) {
				in[i + 5] = (unsigned char)(h >> 8);
				in[i + 6] = (unsigned char)h;
			}
			return 1;
		}
		i += 2 + seglen;
	}
	return 0;
}

// on_crop_warning is iiif_jpeg_on_warning but for the one warning a
// shortened frame causes: the MCU rows past the new height are "extraneous
// data" before the end marker, skipped by a byte scan.
static void on_crop_warning(j_common_ptr c, int level) {
	if (level < 0 && c->err->msg_code == JWRN_EXTRANEOUS_DATA) return;
	iiif_jpeg_on_warning(c, level);
}

int iiif_crop_jpeg(void *in, size_t inlen, int w, int h, void **buf, size_t *len) {
	*buf = NULL;
	*len = 0;
	struct jpeg_decompress_struct d;
	struct jpeg_compress_struct c;
	// One error manager for both: whichever fails longjmps here, and what
	// was created is destroyed.
	iiif_jpeg_err e;
	// out and compressing are in memory (out's address goes to libjpeg), so
	// they hold their last values after a longjmp.
	unsigned char *out = NULL;
	unsigned long outlen = 0;
	volatile int compressing = 0;
	d.err = jpeg_std_error(&e.pub);
	e.pub.error_exit = iiif_jpeg_on_error;
	e.pub.emit_message = on_crop_warning;
	if (setjmp(e.jmp)) {
		if (compressing) jpeg_destroy_compress(&c);
		jpeg_destroy_decompress(&d);
		free(out);
		return -1;
	}
	jpeg_create_decompress(&d);
	if (h > 0 && !shorten(in, inlen, h)) {
		vips_error("iiif", "crop: no baseline frame header");
		longjmp(e.jmp, 1);
	}
	jpeg_mem_src(&d, (const unsigned char *)in, inlen);
	jpeg_read_header(&d, TRUE);
	if (w <= 0 || h <= 0 || (JDIMENSION)w > d.image_width || (JDIMENSION)h != d.image_height) {
		vips_error("iiif", "crop: %d×%d from a %u×%u tile", w, h, d.image_width, d.image_height);
		longjmp(e.jmp, 1);
	}
	jvirt_barray_ptr *coefs = jpeg_read_coefficients(&d);
	c.err = &e.pub;
	jpeg_create_compress(&c);
	compressing = 1;
	// Quantisation tables, sampling factors and colour space as stored; the
	// standard Huffman tables (complete for every baseline symbol) and no
	// optimised coding, whose second pass costs more than it saves on a tile.
	jpeg_copy_critical_parameters(&d, &c);
	c.image_width = w;
	c.image_height = h;
	jpeg_mem_dest(&c, &out, &outlen);
	// The arrays are as wide as the stored tile, wider than the cropped
	// image needs: the coefficient controller reads only the blocks inside
	// it, and since the crop starts at (0, 0) they are the same blocks.
	jpeg_write_coefficients(&c, coefs);
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	compressing = 0;
	jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	*buf = g_memdup2(out, outlen);
	*len = outlen;
	free(out);
	return 0;
}

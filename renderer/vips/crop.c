// crop.c: see crop.h.
#include <stdlib.h>
#include <vips/vips.h>

#include "crop.h"
#include "jpegerr.h"

int iiif_crop_jpeg(const void *in, size_t inlen, int w, int h, void **buf, size_t *len) {
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
	e.pub.emit_message = iiif_jpeg_on_warning;
	if (setjmp(e.jmp)) {
		if (compressing) jpeg_destroy_compress(&c);
		jpeg_destroy_decompress(&d);
		free(out);
		return -1;
	}
	jpeg_create_decompress(&d);
	jpeg_mem_src(&d, (const unsigned char *)in, inlen);
	jpeg_read_header(&d, TRUE);
	if (w <= 0 || h <= 0 || (JDIMENSION)w > d.image_width || (JDIMENSION)h > d.image_height) {
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
	// The arrays are the stored tile's, larger than the cropped image
	// needs: the coefficient controller reads only the blocks inside it,
	// and since the crop starts at (0, 0) they are the same blocks.
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

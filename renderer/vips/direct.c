// direct.c: see direct.h.
#include <stdio.h>
#include <stdlib.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <vips/vips.h>

#include "direct.h"
#include "colour.h"
#include "jpegerr.h"

int iiif_direct_ok(VipsImage *im) {
	return im->BandFmt == VIPS_FORMAT_UCHAR && im->Coding == VIPS_CODING_NONE &&
	       (im->Bands == 1 || im->Bands == 3) &&
	       (guint64)im->Xsize * im->Ysize <= IIIF_DIRECT_MAX_PIXELS;
}

// rowfn returns row y of the pixels being encoded.
typedef JSAMPROW (*rowfn)(void *ctx, int y);

// encode compresses w × h pixels of bands (1 or 3) samples into *buf.
static int encode(int w, int h, int bands, int q, rowfn row, void *ctx, void **buf, size_t *len) {
	struct jpeg_compress_struct c;
	iiif_jpeg_err e;
	unsigned char *out = NULL;
	unsigned long outlen = 0;
	c.err = jpeg_std_error(&e.pub);
	e.pub.error_exit = iiif_jpeg_on_error;
	e.pub.emit_message = iiif_jpeg_on_quiet;
	if (setjmp(e.jmp)) {
		jpeg_destroy_compress(&c);
		free(out);
		return -1;
	}
	jpeg_create_compress(&c);
	jpeg_mem_dest(&c, &out, &outlen);
	c.image_width = w;
	c.image_height = h;
	c.input_components = bands;
	c.in_color_space = bands == 1 ? JCS_GRAYSCALE : JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, q, TRUE);
	if (bands == 3 && q >= 90) { // vips_jpegsave: no chroma subsampling from Q90
		c.comp_info[0].h_samp_factor = 1;
		c.comp_info[0].v_samp_factor = 1;
	}
	jpeg_start_compress(&c, TRUE);
	for (int y = 0; y < h; y++) {
		JSAMPROW r = row(ctx, y);
		jpeg_write_scanlines(&c, &r, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	*buf = g_memdup2(out, outlen);
	*len = outlen;
	free(out);
	return 0;
}

static JSAMPROW region_row(void *ctx, int y) { return (JSAMPROW)VIPS_REGION_ADDR((VipsRegion *)ctx, 0, y); }

int iiif_direct_jpeg(VipsImage *im, int q, void **buf, size_t *len) {
	*buf = NULL;
	*len = 0;
	VipsRegion *r = vips_region_new(im);
	VipsRect all = {0, 0, im->Xsize, im->Ysize};
	// Demand-driven evaluation of the whole pipeline, on this thread. It
	// fails when the render is killed (iiif_kill_set sets im's kill flag).
	int rc = vips_region_prepare(r, &all);
	if (rc == 0) rc = encode(im->Xsize, im->Ysize, im->Bands, q, region_row, r, buf, len);
	g_object_unref(r);
	return rc;
}

typedef struct {
	unsigned char *pixels;
	size_t stride;
} flat;

static JSAMPROW flat_row(void *ctx, int y) {
	flat *f = (flat *)ctx;
	return f->pixels + (size_t)y * f->stride;
}

int iiif_transcode_jpeg(const void *in, size_t inlen, int ow, int oh, int q, unsigned long long icc_key,
                        const void *icc, size_t icc_len, void **buf, size_t *len) {
	*buf = NULL;
	*len = 0;
	struct jpeg_decompress_struct d;
	iiif_jpeg_err e;
	unsigned char *volatile pixels = NULL;
	d.err = jpeg_std_error(&e.pub);
	e.pub.error_exit = iiif_jpeg_on_error;
	e.pub.emit_message = iiif_jpeg_on_warning;
	if (setjmp(e.jmp)) {
		jpeg_destroy_decompress(&d);
		g_free(pixels);
		return -1;
	}
	jpeg_create_decompress(&d);
	jpeg_mem_src(&d, (const unsigned char *)in, inlen);
	jpeg_read_header(&d, TRUE);
	if (d.num_components != 1 && d.num_components != 3) {
		vips_error("iiif", "transcode: %d components", d.num_components);
		longjmp(e.jmp, 1);
	}
	d.out_color_space = d.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
	jpeg_start_decompress(&d);
	int w = d.output_width, h = d.output_height, bands = d.output_components;
	if (ow <= 0 || oh <= 0 || ow > w || oh > h) {
		vips_error("iiif", "transcode: %dx%d is not inside the %dx%d tile", ow, oh, w, h);
		longjmp(e.jmp, 1);
	}
	// Rows below the output are not decoded; columns right of it are
	// (libjpeg decodes whole rows), as libvips' TIFF loader decodes the
	// padded tile whole, so the pixels kept are the ones it keeps.
	h = oh;
	size_t stride = (size_t)w * bands;
	pixels = g_malloc((size_t)h * stride);
	while (d.output_scanline < (JDIMENSION)h) {
		JSAMPROW r = pixels + (size_t)d.output_scanline * stride;
		jpeg_read_scanlines(&d, &r, 1);
	}
	// Past an edge tile's last row: abort, not finish (which would decode
	// the padding). A whole tile is finished, which checks its end.
	if (d.output_scanline < d.output_height)
		jpeg_abort_decompress(&d);
	else
		jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	int rc = 0;
	if (icc != NULL && bands == 3) rc = iiif_icc_rgb8_rows(icc_key, icc, icc_len, pixels, ow, h, w);
	flat f = {pixels, stride};
	if (rc == 0) rc = encode(ow, oh, bands, q, flat_row, &f, buf, len);
	g_free(pixels);
	return rc;
}

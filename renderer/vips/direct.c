// direct.c: see direct.h.
#include <stdio.h>
#include <stdlib.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <vips/vips.h>

#include "direct.h"

int iiif_direct_ok(VipsImage *im) {
	return im->BandFmt == VIPS_FORMAT_UCHAR && im->Coding == VIPS_CODING_NONE &&
	       (im->Bands == 1 || im->Bands == 3) &&
	       (guint64)im->Xsize * im->Ysize <= IIIF_DIRECT_MAX_PIXELS;
}

typedef struct {
	struct jpeg_error_mgr pub;
	jmp_buf jmp;
} errmgr;

static void on_error(j_common_ptr c) {
	errmgr *e = (errmgr *)c->err;
	char msg[JMSG_LENGTH_MAX];
	(*c->err->format_message)(c, msg);
	vips_error("iiif", "libjpeg: %s", msg);
	longjmp(e->jmp, 1);
}

static void on_message(j_common_ptr c, int level) {} // warnings: none matter when compressing

int iiif_direct_jpeg(VipsImage *im, int q, void **buf, size_t *len) {
	*buf = NULL;
	*len = 0;
	VipsRegion *r = vips_region_new(im);
	VipsRect all = {0, 0, im->Xsize, im->Ysize};
	// Demand-driven evaluation of the whole pipeline, on this thread. It
	// fails when the render is killed (iiif_kill_set sets im's kill flag).
	if (vips_region_prepare(r, &all)) {
		g_object_unref(r);
		return -1;
	}
	struct jpeg_compress_struct c;
	errmgr e;
	unsigned char *out = NULL;
	unsigned long outlen = 0;
	c.err = jpeg_std_error(&e.pub);
	e.pub.error_exit = on_error;
	e.pub.emit_message = on_message;
	if (setjmp(e.jmp)) {
		jpeg_destroy_compress(&c);
		free(out);
		g_object_unref(r);
		return -1;
	}
	jpeg_create_compress(&c);
	jpeg_mem_dest(&c, &out, &outlen);
	c.image_width = im->Xsize;
	c.image_height = im->Ysize;
	c.input_components = im->Bands;
	c.in_color_space = im->Bands == 1 ? JCS_GRAYSCALE : JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, q, TRUE);
	if (im->Bands == 3 && q >= 90) { // vips_jpegsave: no chroma subsampling from Q90
		c.comp_info[0].h_samp_factor = 1;
		c.comp_info[0].v_samp_factor = 1;
	}
	jpeg_start_compress(&c, TRUE);
	for (int y = 0; y < im->Ysize; y++) {
		JSAMPROW row = (JSAMPROW)VIPS_REGION_ADDR(r, 0, y);
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	g_object_unref(r);
	*buf = g_memdup2(out, outlen);
	*len = outlen;
	free(out);
	return 0;
}

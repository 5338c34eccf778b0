// jpegerr.c: see jpegerr.h.
#include <vips/vips.h>

#include "jpegerr.h"

void iiif_jpeg_on_error(j_common_ptr c) {
	iiif_jpeg_err *e = (iiif_jpeg_err *)c->err;
	char msg[JMSG_LENGTH_MAX];
	(*c->err->format_message)(c, msg);
	vips_error("iiif", "libjpeg: %s", msg);
	longjmp(e->jmp, 1);
}

void iiif_jpeg_on_quiet(j_common_ptr c, int level) {}

void iiif_jpeg_on_warning(j_common_ptr c, int level) {
	if (level < 0) iiif_jpeg_on_error(c);
}

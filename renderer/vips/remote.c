// remote.c: see remote.h.
#include <vips/vips.h>

#include "remote.h"
#include "_cgo_export.h"

static gint64 read_cb(VipsSourceCustom *s, void *buf, gint64 len, gpointer h) {
	return iiifSourceRead((uintptr_t)h, buf, len);
}

static gint64 seek_cb(VipsSourceCustom *s, gint64 off, int whence, gpointer h) {
	return iiifSourceSeek((uintptr_t)h, off, whence);
}

static void free_cb(gpointer h, GObject *gone) { iiifSourceFree((uintptr_t)h); }

VipsImage *iiif_open_remote(uintptr_t handle, const char *opts) {
	VipsSourceCustom *s = vips_source_custom_new();
	g_signal_connect(s, "read", G_CALLBACK(read_cb), (gpointer)handle);
	g_signal_connect(s, "seek", G_CALLBACK(seek_cb), (gpointer)handle);
	g_object_weak_ref(G_OBJECT(s), free_cb, (gpointer)handle);
	// The image holds the source as long as it needs it.
	VipsImage *im = vips_image_new_from_source(VIPS_SOURCE(s), opts, NULL);
	g_object_unref(s);
	return im;
}

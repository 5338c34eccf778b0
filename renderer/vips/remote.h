// remote.h: libvips reading a source through Go (an S3 object through the
// source cache) instead of a file: a VipsSourceCustom whose "read" and
// "seek" signals call the exported Go functions of remote.go.
#ifndef IIIF_REMOTE_H
#define IIIF_REMOTE_H

#include <stdint.h>

typedef struct _VipsImage VipsImage;

// iiif_open_remote loads the image of the Go reader behind handle (a
// cgo.Handle of a *cursor) with libvips options opts ("page=2,fail_on=error").
// The handle is released (iiifSourceFree) when libvips frees the source,
// whether or not the load succeeded.
VipsImage *iiif_open_remote(uintptr_t handle, const char *opts);

#endif

package vips

// #include "shim.h"
import "C"

import (
	"context"
	"unsafe"
)

// runPipeline runs the C pipeline, killing it if ctx ends first. killed reports
// that the kill was set, whatever the pipeline made of it.
//
// The C call cannot watch a Go context, so a context.AfterFunc does: when ctx
// ends (every request waiting for the render gave up, or RenderTimeout
// passed) it sets libvips' kill flag on the image the pipeline is evaluating
// (iiif_kill_set in shim.c), libvips fails the next region it computes, and
// the call returns within a tile or strip instead of running to the end. The
// kill is set only on images private to this render, never on a source
// handle shared with others.
func runPipeline(ctx context.Context, im *C.VipsImage, job *C.iiif_job, buf *unsafe.Pointer, n *C.size_t, cerr **C.char) (rc C.int, killed bool) {
	kill := C.iiif_kill_new()
	defer C.iiif_kill_free(kill)
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		C.iiif_kill_set(kill)
		close(done)
	})
	if testHookRendering != nil {
		testHookRendering()
	}
	rc = C.iiif_render(im, job, kill, buf, n, cerr)
	if !stop() {
		<-done // the kill is being set: wait before freeing it
		return rc, true
	}
	return rc, false
}

// testHookRendering, when set by a test, runs just before the pipeline.
var testHookRendering func()

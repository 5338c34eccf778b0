package renderer

// #include "shim.h"
import "C"

import (
	"runtime/debug"
	"sync/atomic"
	"time"
)

// A render is big, and worth giving memory back after, when it decodes or
// outputs more than bigPixels pixels or encodes more than bigBytes bytes. A
// tile never is.
const (
	bigPixels = 16 << 20
	bigBytes  = 16 << 20
)

// releaseDelay is how long after a big render its memory is given back: long
// enough for the response to be on its way (its body is live until then),
// and at most once per delay however many big renders run.
const releaseDelay = time.Second

var releasing atomic.Bool // a release is scheduled

// releaseSoon schedules giving freed memory back to the kernel. Both heaps
// keep what a big render freed: glibc only trims the top of each arena by
// itself (libvips' buffers are spread over many), and Go's heap, grown to
// hold a 177 MB body, is only scavenged slowly after its next collection,
// which an idle server may not run for minutes. Measured in
// docs/RELIABILITY.md ("Memory").
func releaseSoon() {
	if releasing.CompareAndSwap(false, true) {
		time.AfterFunc(releaseDelay, func() {
			releasing.Store(false)
			debug.FreeOSMemory()
			C.iiif_trim()
		})
	}
}

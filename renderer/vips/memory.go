package vips

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

// releaseDelays are when, after a big render, its memory is given back:
// soon, and once more when even a slow client has had time to take the
// response (its body is live until it is sent). A burst of big renders
// schedules one release, not one each.
var releaseDelays = [...]time.Duration{time.Second, 10 * time.Second}

var releasing atomic.Bool // a release is scheduled

// releaseSoon schedules giving freed memory back to the kernel. Both heaps
// keep what a big render freed: glibc only trims the top of each arena by
// itself (libvips' buffers are spread over many), and Go's heap, grown to
// hold a 177 MB body, is only scavenged slowly after its next collection,
// which an idle server may not run for minutes. Each release costs a
// collection of the live heap and a walk of malloc's free lists: a few
// milliseconds, against seconds for the render that asked for it. Measured
// in docs/RELIABILITY.md ("Memory").
func releaseSoon() {
	if releasing.CompareAndSwap(false, true) {
		time.AfterFunc(releaseDelays[0], func() {
			releasing.Store(false)
			release()
			time.AfterFunc(releaseDelays[1]-releaseDelays[0], release)
		})
	}
}

func release() {
	debug.FreeOSMemory()
	C.iiif_trim()
}

// opCacheSize is the number of operations in libvips' cache, which Startup
// turns off.
func opCacheSize() int { return int(C.iiif_cache_size()) }

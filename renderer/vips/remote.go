package vips

// #include <stdint.h>
// #include <stdlib.h>
import "C"

import (
	"errors"
	"io"
	"os"
	"runtime/cgo"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/iiif-proxy/iiif-proxy/sources"
)

// input is an opened source: a local file (TilePath a directory, or the
// whole local copy of an S3 object), which libvips opens by its
// /proc/self/fd path as it always did, or an S3 object read by ranges
// through the source cache (f nil), which libvips reads through Go
// (remote.c). Local files pay nothing for the S3 path: f is used directly.
type input struct {
	f  *os.File      // read this when set
	rf *sources.File // the S3 object; nil for local files
	at time.Time     // when rf was opened: failures of the store since count
}

// reader is what imgmeta's TIFF and JPEG 2000 header readers and tile
// pass-through read: the *os.File itself for a local file (boxing input in
// an interface would cost an allocation per tile).
func (in input) reader() io.ReaderAt {
	if in.f != nil {
		return in.f
	}
	return in.rf
}

// name is what libvips' messages call the source, to be replaced by the
// identifier; "" for a remote source (libvips has no name for it).
func (in input) name() string {
	if in.f != nil {
		return fdPath(in.f)
	}
	return ""
}

// cargs are the path and remote arguments of the shim's open functions for
// in; free releases the path. A remote handle is consumed by the call.
func (in input) cargs() (path *C.char, remote C.uintptr_t, free func()) {
	if in.f != nil {
		cp := C.CString(fdPath(in.f))
		return cp, 0, func() { C.free(unsafe.Pointer(cp)) }
	}
	// The source may outlive this input (a level kept open for later
	// renders): it reads through a reader of its own, closed with it.
	return nil, C.uintptr_t(cgo.NewHandle(&cursor{rf: in.rf.Clone()})), func() {}
}

// unavailable is the failure of the store that a read of in met, if any: a
// decoder error on in is then the store's fault, not the file's.
func (in input) unavailable() error {
	if in.rf == nil {
		return nil
	}
	return in.rf.ErrSince(in.at)
}

func (in input) close() {
	if in.f != nil {
		in.f.Close()
	}
	if in.rf != nil {
		in.rf.Close()
	}
}

// cursor is one libvips source's position in a remote file. libvips'
// loaders serialise their reads of a source, so the lock only guards
// against misuse.
type cursor struct {
	rf  *sources.File
	mu  sync.Mutex // protects pos
	pos int64
}

//export iiifSourceRead
func iiifSourceRead(h C.uintptr_t, buf unsafe.Pointer, n C.longlong) C.longlong {
	c := cgo.Handle(h).Value().(*cursor)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n <= 0 {
		return 0
	}
	p := unsafe.Slice((*byte)(buf), int(n))
	k, err := c.rf.ReadAt(p, c.pos)
	c.pos += int64(k)
	if err != nil && !errors.Is(err, io.EOF) {
		return -1
	}
	return C.longlong(k)
}

//export iiifSourceSeek
func iiifSourceSeek(h C.uintptr_t, off C.longlong, whence C.int) C.longlong {
	c := cgo.Handle(h).Value().(*cursor)
	c.mu.Lock()
	defer c.mu.Unlock()
	pos := int64(off)
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		pos += c.pos
	case io.SeekEnd:
		pos += c.rf.Size()
	default:
		return -1
	}
	if pos < 0 {
		return -1
	}
	c.pos = pos
	return C.longlong(pos)
}

//export iiifSourceFree
func iiifSourceFree(h C.uintptr_t) {
	hd := cgo.Handle(h)
	hd.Value().(*cursor).rf.Close()
	hd.Delete()
}

func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

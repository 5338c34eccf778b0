package vips

// #include <stdlib.h>
// #include "colour.h"
// #include "shaper.h"
import "C"

import (
	"hash/fnv"
	"unsafe"
)

// The implementations of a colour conversion (colour.h, shaper.h), for the
// tests and benchmarks that compare them: renders always run the fastest.
const (
	convLCMS     = -1 // lcms' own transform
	convScalar   = C.IIIF_SHAPE_SCALAR
	convAVX2     = C.IIIF_SHAPE_AVX2
	convCLUT     = C.IIIF_ICC_CLUT      // 8-bit CMYK's table, scalar
	convCLUTAVX2 = C.IIIF_ICC_CLUT_AVX2 // and with AVX2
)

func convName(impl int) string {
	switch impl {
	case convLCMS:
		return "lcms"
	case convScalar:
		return "scalar"
	case convAVX2:
		return "avx2"
	case convCLUT:
		return "clut"
	case convCLUTAVX2:
		return "clut-avx2"
	}
	return "unknown"
}

// shaperBest is the implementation renders run on this CPU.
func shaperBest() int { return int(C.iiif_shape_best()) }

// clutBest is the CMYK table's implementation renders run on this CPU.
func clutBest() int {
	if shaperBest() == convAVX2 {
		return convCLUTAVX2
	}
	return convCLUT
}

// shaperHas reports whether this build and CPU run impl.
func shaperHas(impl int) bool {
	switch impl {
	case convLCMS, convCLUT:
		return true
	case convCLUTAVX2:
		return shaperHas(convAVX2)
	}
	return C.iiif_shape_has(C.int(impl)) != 0
}

// converter converts pixels from one profile to sRGB through the transform
// cache, as renders do, with a chosen implementation.
type converter struct {
	profile []byte
	key     uint64 // the cache's key, hashed once (libvips' CMYK profile is 0.5 MB)
}

func newConverter(profile []byte) converter {
	h := fnv.New64a()
	h.Write(profile)
	return converter{profile, h.Sum64()}
}

// rgb8 converts the 8-bit RGB pixels in (len a multiple of 3) into out
// with impl. false: impl does not apply to the profile or this CPU, or the
// profile is unusable.
func (c converter) rgb8(impl int, in, out []byte) bool {
	return c.run(C.IIIF_ICC_RGB8, impl, unsafe.Pointer(unsafe.SliceData(in)), out, len(in)/3)
}

// cmyk8 is rgb8 for 8-bit CMYK pixels (len a multiple of 4; out takes 3
// bytes a pixel).
func (c converter) cmyk8(impl int, in, out []byte) bool {
	return c.run(C.IIIF_ICC_CMYK8, impl, unsafe.Pointer(unsafe.SliceData(in)), out, len(in)/4)
}

// rgb16 is rgb8 for 16-bit RGB pixels (len a multiple of 3).
func (c converter) rgb16(impl int, in []uint16, out []byte) bool {
	return c.run(C.IIIF_ICC_RGB16, impl, unsafe.Pointer(unsafe.SliceData(in)), out, len(in)/3)
}

func (c converter) run(layout C.int, impl int, in unsafe.Pointer, out []byte, n int) bool {
	if n < 1 || len(out) < 3*n || len(c.profile) == 0 {
		return false
	}
	// Go memory passed for the call's duration only (no Go pointers in it).
	return C.iiif_icc_with(C.ulonglong(c.key), unsafe.Pointer(&c.profile[0]), C.size_t(len(c.profile)), layout,
		in, (*C.uchar)(unsafe.Pointer(&out[0])), C.int(n), C.int(impl)) == 0
}

// shapedPixels is how many pixels renders have converted with the inline
// shaper in this process (a converter's are not counted).
func shapedPixels() uint64 { return uint64(C.iiif_icc_shaped()) }

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
	convLCMS   = -1 // lcms' own transform
	convScalar = C.IIIF_SHAPE_SCALAR
	convAVX2   = C.IIIF_SHAPE_AVX2
)

func convName(impl int) string {
	switch impl {
	case convLCMS:
		return "lcms"
	case convScalar:
		return "scalar"
	case convAVX2:
		return "avx2"
	}
	return "unknown"
}

// shaperBest is the implementation renders run on this CPU.
func shaperBest() int { return int(C.iiif_shape_best()) }

// shaperHas reports whether this build and CPU run impl.
func shaperHas(impl int) bool { return impl == convLCMS || C.iiif_shape_has(C.int(impl)) != 0 }

// convertRGB8With converts the 8-bit RGB pixels in (len a multiple of 3)
// from profile to sRGB into out with impl, through the transform cache as
// renders do. false: impl does not apply to the profile or this CPU, or
// the profile is unusable.
func convertRGB8With(profile []byte, impl int, in, out []byte) bool {
	if len(in) < 3 || len(out) < len(in) || len(profile) == 0 {
		return false
	}
	h := fnv.New64a()
	h.Write(profile)
	// Go memory passed for the call's duration only (no Go pointers in it).
	return C.iiif_icc_rgb8_with(C.ulonglong(h.Sum64()), unsafe.Pointer(&profile[0]), C.size_t(len(profile)),
		(*C.uchar)(unsafe.Pointer(&in[0])), (*C.uchar)(unsafe.Pointer(&out[0])), C.int(len(in)/3), C.int(impl)) == 0
}

// shapedPixels is how many pixels renders have converted with the inline
// shaper in this process (convertRGB8With's are not counted).
func shapedPixels() uint64 { return uint64(C.iiif_icc_shaped()) }

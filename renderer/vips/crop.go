package vips

// #include <stdlib.h>
// #include <vips/vips.h>
// #include "shim.h"
// #include "crop.h"
import "C"

import (
	"errors"
	"unsafe"
)

var errCrop = errors.New("the stored tile cannot be cropped losslessly")

// cropJPEG returns the top-left w × h of the complete JPEG tile, cropped
// losslessly on its DCT coefficients (crop.h). It fails on a damaged tile
// or one smaller than w × h; the caller then renders through libvips.
func cropJPEG(tile []byte, w, h int) ([]byte, error) {
	in := C.CBytes(tile)
	defer C.free(in)
	var buf unsafe.Pointer
	var n C.size_t
	if C.iiif_crop_jpeg(in, C.size_t(len(tile)), C.int(w), C.int(h), &buf, &n) != 0 {
		C.vips_error_clear() // the caller's libvips render says what is wrong, if anything
		return nil, errCrop
	}
	defer C.iiif_free(buf)
	return C.GoBytes(buf, C.int(n)), nil
}

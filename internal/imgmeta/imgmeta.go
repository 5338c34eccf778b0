// Package imgmeta reads the header facts libvips does not report: the
// directory structure of a TIFF (pages, sub-IFDs, tile size, where each
// compressed tile lies, so a stored JPEG tile can be served as it is), and the
// tile size of a JPEG 2000 codestream (XTsiz/YTsiz of the SIZ marker, in a
// bare .j2k stream or inside a .jp2 "jp2c" box). Everything is read through
// an io.ReaderAt, a few hundred bytes at a time, and no pixel is decoded.
package imgmeta

import (
	"encoding/binary"
	"errors"
	"io"
)

// errFormat means the bytes are not the format the function reads.
var errFormat = errors.New("imgmeta: unrecognised header")

const (
	tagTileWidth  = 322
	tagTileLength = 323
	maxIFDEntries = 4096 // a sanity bound: real TIFFs have a few dozen
)

// JP2TileSize returns the tile width and height of a JPEG 2000 codestream,
// bare (.j2k) or wrapped in a JP2 file. An untiled codestream reports one tile
// the size of the image.
func JP2TileSize(r io.ReaderAt) (w, h int, err error) {
	start, err := codestreamStart(r)
	if err != nil {
		return 0, 0, err
	}
	// SOC (FF4F) then SIZ (FF51): Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz, XTsiz, YTsiz, XTOsiz, YTOsiz.
	var b [40]byte
	if _, err := r.ReadAt(b[:], start); err != nil {
		return 0, 0, err
	}
	if b[0] != 0xFF || b[1] != 0x4F || b[2] != 0xFF || b[3] != 0x51 {
		return 0, 0, errFormat
	}
	be := binary.BigEndian
	xsiz, ysiz := be.Uint32(b[8:]), be.Uint32(b[12:])
	xo, yo := be.Uint32(b[16:]), be.Uint32(b[20:])
	xt, yt := be.Uint32(b[24:]), be.Uint32(b[28:])
	if xt == 0 || yt == 0 || xsiz <= xo || ysiz <= yo {
		return 0, 0, errFormat
	}
	return int(min(xt, xsiz-xo)), int(min(yt, ysiz-yo)), nil
}

// codestreamStart finds the codestream: at 0 for a bare stream, else in the
// contents of the top-level "jp2c" box.
func codestreamStart(r io.ReaderAt) (int64, error) {
	var b [16]byte
	if _, err := r.ReadAt(b[:2], 0); err != nil {
		return 0, err
	}
	if b[0] == 0xFF && b[1] == 0x4F {
		return 0, nil
	}
	off := int64(0)
	for range 64 { // a JP2 has a handful of top-level boxes before jp2c
		if _, err := r.ReadAt(b[:8], off); err != nil {
			return 0, errFormat
		}
		size := int64(binary.BigEndian.Uint32(b[:4]))
		header := int64(8)
		if size == 1 { // 64-bit XLBox
			if _, err := r.ReadAt(b[8:16], off+8); err != nil {
				return 0, errFormat
			}
			size = int64(binary.BigEndian.Uint64(b[8:16]))
			header = 16
		}
		if string(b[4:8]) == "jp2c" {
			return off + header, nil
		}
		if size < header { // size 0 means "to the end", which only jp2c may use
			return 0, errFormat
		}
		off += size
	}
	return 0, errFormat
}

// Package imgmeta reads the few header facts libvips does not report: the
// internal tile size of a tiled TIFF (tags 322/323 of the first IFD, classic
// or BigTIFF, either byte order) and of a JPEG 2000 codestream (XTsiz/YTsiz of
// the SIZ marker, in a bare .j2k stream or inside a .jp2 "jp2c" box). Both read
// a few hundred bytes through an io.ReaderAt and never decode pixels.
package imgmeta

import (
	"encoding/binary"
	"errors"
	"io"
)

// ErrNotTiled means the image has no internal tiling (a stripped TIFF).
var ErrNotTiled = errors.New("imgmeta: image is not tiled")

// errFormat means the bytes are not the format the function reads.
var errFormat = errors.New("imgmeta: unrecognised header")

const (
	tagTileWidth  = 322
	tagTileLength = 323
	maxIFDEntries = 4096 // a sanity bound: real TIFFs have a few dozen
)

// TIFFTileSize returns the tile width and height of the first image of a
// TIFF, or ErrNotTiled.
func TIFFTileSize(r io.ReaderAt) (w, h int, err error) {
	var hdr [16]byte
	if _, err := r.ReadAt(hdr[:8], 0); err != nil {
		return 0, 0, err
	}
	var bo binary.ByteOrder
	switch string(hdr[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0, 0, errFormat
	}
	big := false
	var ifd int64
	switch bo.Uint16(hdr[2:4]) {
	case 42:
		ifd = int64(bo.Uint32(hdr[4:8]))
	case 43:
		big = true
		if _, err := r.ReadAt(hdr[:16], 0); err != nil {
			return 0, 0, err
		}
		ifd = int64(bo.Uint64(hdr[8:16]))
	default:
		return 0, 0, errFormat
	}
	countSize, entrySize := int64(2), int64(12)
	if big {
		countSize, entrySize = 8, 20
	}
	var cnt [8]byte
	if _, err := r.ReadAt(cnt[:countSize], ifd); err != nil {
		return 0, 0, err
	}
	n := int64(bo.Uint16(cnt[:2]))
	if big {
		n = int64(bo.Uint64(cnt[:8]))
	}
	if n <= 0 || n > maxIFDEntries {
		return 0, 0, errFormat
	}
	entries := make([]byte, n*entrySize)
	if _, err := r.ReadAt(entries, ifd+countSize); err != nil {
		return 0, 0, err
	}
	for i := int64(0); i < n; i++ {
		e := entries[i*entrySize : (i+1)*entrySize]
		tag, typ := bo.Uint16(e[0:2]), bo.Uint16(e[2:4])
		if tag != tagTileWidth && tag != tagTileLength {
			continue
		}
		valOff := 8
		if big {
			valOff = 12
		}
		var v int
		switch typ {
		case 3: // SHORT
			v = int(bo.Uint16(e[valOff:]))
		case 4: // LONG
			v = int(bo.Uint32(e[valOff:]))
		case 16: // LONG8
			v = int(bo.Uint64(e[valOff:]))
		default:
			return 0, 0, errFormat
		}
		if tag == tagTileWidth {
			w = v
		} else {
			h = v
		}
	}
	if w <= 0 || h <= 0 {
		return 0, 0, ErrNotTiled
	}
	return w, h, nil
}

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

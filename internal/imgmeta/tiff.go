package imgmeta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// TIFF tags read here.
const (
	tagImageWidth      = 256
	tagImageLength     = 257
	tagBitsPerSample   = 258
	tagCompression     = 259
	tagPhotometric     = 262
	tagSamplesPerPixel = 277
	tagPlanarConfig    = 284
	tagTileOffsets     = 324
	tagTileByteCounts  = 325
	tagSubIFDs         = 330
	tagJPEGTables      = 347
	tagICCProfile      = 34675

	compressionJPEG = 7
	photometricGray = 1
	photometricYCC  = 6

	maxIFDs = 64 // pages or sub-IFDs followed; pyramids have a dozen at most
)

// IFD is one image of a TIFF: its size, tiling and where its tiles are.
type IFD struct {
	Width, Height         int
	TileWidth, TileHeight int // 0 when stripped
	Compression           int
	Photometric           int
	SamplesPerPixel       int
	BitsPerSample         int
	PlanarConfig          int
	HasICC                bool
	// ICC is the embedded ICC profile (tag 34675), when it is under
	// maxICCBytes.
	ICC []byte
	// JPEGTables is the abbreviated table stream shared by JPEG tiles.
	JPEGTables []byte
	offsets    array // TileOffsets
	counts     array // TileByteCounts
	subIFDs    []int64
}

// array is a TIFF array of unsigned integers, left in the file or, when it
// fits in the entry's value field, held inline.
type array struct {
	at     int64 // where the values are in the file, when not inline
	inline []byte
	n      int
	size   int // 1, 2, 4 or 8 bytes each
	bo     binary.ByteOrder
}

func (a array) get(r io.ReaderAt, i int) (uint64, error) {
	if i < 0 || i >= a.n {
		return 0, fmt.Errorf("imgmeta: index %d outside an array of %d", i, a.n)
	}
	var b [8]byte
	if a.inline != nil {
		copy(b[:], a.inline[i*a.size:])
	} else if _, err := r.ReadAt(b[:a.size], a.at+int64(i*a.size)); err != nil {
		return 0, err
	}
	if a.size == 1 {
		return uint64(b[0]), nil
	}
	switch a.size {
	case 2:
		return uint64(a.bo.Uint16(b[:])), nil
	case 4:
		return uint64(a.bo.Uint32(b[:])), nil
	}
	return a.bo.Uint64(b[:]), nil
}

// TIFF is the structure of a TIFF file: its pages, each with its sub-IFDs.
type TIFF struct {
	Pages   []*IFD
	SubIFDs [][]*IFD // SubIFDs[p] are page p's sub-IFDs (libvips' "subifd" pyramids)
}

type reader struct {
	r   io.ReaderAt
	bo  binary.ByteOrder
	big bool
}

// ReadTIFF reads the directory structure of a TIFF (classic or BigTIFF,
// either byte order): every page and sub-IFD, without tile data.
func ReadTIFF(r io.ReaderAt) (*TIFF, error) {
	var hdr [16]byte
	if _, err := r.ReadAt(hdr[:8], 0); err != nil {
		return nil, err
	}
	rd := reader{r: r}
	switch string(hdr[:2]) {
	case "II":
		rd.bo = binary.LittleEndian
	case "MM":
		rd.bo = binary.BigEndian
	default:
		return nil, errFormat
	}
	var next int64
	switch rd.bo.Uint16(hdr[2:4]) {
	case 42:
		next = int64(rd.bo.Uint32(hdr[4:8]))
	case 43:
		rd.big = true
		if _, err := r.ReadAt(hdr[:16], 0); err != nil {
			return nil, err
		}
		next = int64(rd.bo.Uint64(hdr[8:16]))
	default:
		return nil, errFormat
	}
	t := &TIFF{}
	for next != 0 && len(t.Pages) < maxIFDs {
		ifd, nxt, err := rd.ifd(next)
		if err != nil {
			return nil, err
		}
		var subs []*IFD
		for _, off := range ifd.subIFDs {
			if len(subs) >= maxIFDs {
				break
			}
			s, _, err := rd.ifd(off)
			if err != nil {
				return nil, err
			}
			subs = append(subs, s)
		}
		t.Pages = append(t.Pages, ifd)
		t.SubIFDs = append(t.SubIFDs, subs)
		next = nxt
	}
	if len(t.Pages) == 0 {
		return nil, errFormat
	}
	return t, nil
}

var typeSize = map[uint16]int{1: 1, 2: 1, 3: 2, 4: 4, 7: 1, 13: 4, 16: 8, 18: 8}

func (rd reader) ifd(off int64) (*IFD, int64, error) {
	countSize, entrySize, offSize := int64(2), int64(12), 4
	if rd.big {
		countSize, entrySize, offSize = 8, 20, 8
	}
	var cnt [8]byte
	if _, err := rd.r.ReadAt(cnt[:countSize], off); err != nil {
		return nil, 0, err
	}
	n := int64(rd.bo.Uint16(cnt[:2]))
	if rd.big {
		n = int64(rd.bo.Uint64(cnt[:8]))
	}
	if n <= 0 || n > maxIFDEntries {
		return nil, 0, errFormat
	}
	buf := make([]byte, n*entrySize+int64(offSize))
	if _, err := rd.r.ReadAt(buf, off+countSize); err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, err
	}
	ifd := &IFD{PlanarConfig: 1, SamplesPerPixel: 1, BitsPerSample: 1}
	for i := range n {
		e := buf[i*entrySize : (i+1)*entrySize]
		tag, typ := rd.bo.Uint16(e[0:2]), rd.bo.Uint16(e[2:4])
		var count uint64
		var val []byte
		if rd.big {
			count, val = rd.bo.Uint64(e[4:12]), e[12:20]
		} else {
			count, val = uint64(rd.bo.Uint32(e[4:8])), e[8:12]
		}
		size, ok := typeSize[typ]
		if !ok || count > 1<<31 {
			continue
		}
		a := array{n: int(count), size: size, bo: rd.bo}
		if int(count)*size <= len(val) {
			a.inline = val[:int(count)*size]
		} else if rd.big {
			a.at = int64(rd.bo.Uint64(val))
		} else {
			a.at = int64(rd.bo.Uint32(val))
		}
		first := func() int {
			if a.n == 0 {
				return 0
			}
			v, err := a.get(rd.r, 0)
			if err != nil {
				return 0
			}
			return int(v)
		}
		switch tag {
		case tagImageWidth:
			ifd.Width = first()
		case tagImageLength:
			ifd.Height = first()
		case tagBitsPerSample:
			ifd.BitsPerSample = first()
		case tagCompression:
			ifd.Compression = first()
		case tagPhotometric:
			ifd.Photometric = first()
		case tagSamplesPerPixel:
			ifd.SamplesPerPixel = first()
		case tagPlanarConfig:
			ifd.PlanarConfig = first()
		case tagTileWidth:
			ifd.TileWidth = first()
		case tagTileLength:
			ifd.TileHeight = first()
		case tagICCProfile:
			ifd.HasICC = true
			if count <= maxICCBytes {
				if a.inline != nil {
					ifd.ICC = append([]byte(nil), a.inline...)
				} else if tb := make([]byte, count); count > 0 {
					if _, err := rd.r.ReadAt(tb, a.at); err == nil {
						ifd.ICC = tb
					}
				}
			}
		case tagTileOffsets, tagTileByteCounts:
			if tag == tagTileOffsets {
				ifd.offsets = a
			} else {
				ifd.counts = a
			}
		case tagSubIFDs:
			for j := range min(a.n, maxIFDs) {
				if v, err := a.get(rd.r, j); err == nil && v != 0 {
					ifd.subIFDs = append(ifd.subIFDs, int64(v))
				}
			}
		case tagJPEGTables:
			if a.inline == nil && count > 4 && count < 1<<20 {
				tb := make([]byte, count)
				if _, err := rd.r.ReadAt(tb, a.at); err == nil {
					ifd.JPEGTables = tb
				}
			}
		}
	}
	tail := buf[n*entrySize:]
	var next int64
	if rd.big {
		next = int64(rd.bo.Uint64(tail))
	} else {
		next = int64(rd.bo.Uint32(tail))
	}
	return ifd, next, nil
}

// JPEGPassthrough reports whether this IFD's tiles are complete baseline
// JPEG streams once JPEGTables are spliced in: JPEG-compressed, 8-bit,
// YCbCr (3 samples) or gray (1 sample), chunky and tiled. An ICC profile is
// the caller's business (see ICC): whether the tile's pixels may be served
// as they are, and whether the profile goes with them.
func (d *IFD) JPEGPassthrough() bool {
	return d.Compression == compressionJPEG && d.BitsPerSample == 8 && d.PlanarConfig == 1 &&
		d.TileWidth > 0 && d.TileHeight > 0 && len(d.JPEGTables) > 4 &&
		((d.Photometric == photometricYCC && d.SamplesPerPixel == 3) ||
			(d.Photometric == photometricGray && d.SamplesPerPixel == 1)) &&
		d.offsets.n > 0 && d.offsets.n == d.counts.n
}

// jfif is a JFIF APP0 segment: it tells decoders the components are YCbCr.
var jfif = []byte{0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0}

// maxICCBytes bounds the profile read with an IFD (display and camera
// profiles are 0.5-60 KB; printer profiles with big LUTs a few MB).
const maxICCBytes = 4 << 20

// maxTileBytes bounds one compressed tile read (a 1024² tile at Q100 is well
// under 4 MB).
const maxTileBytes = 16 << 20

// ErrNoPassthrough means the tile cannot be served as stored.
var ErrNoPassthrough = errors.New("imgmeta: tile cannot be passed through")

// AppendJPEGTile appends tile (col, row) of d to dst as a complete JPEG file:
// SOI, JFIF, the shared tables, then the tile's own stream. r must read the
// same file d came from.
func (d *IFD) AppendJPEGTile(dst []byte, r io.ReaderAt, col, row int) ([]byte, error) {
	if !d.JPEGPassthrough() {
		return dst, ErrNoPassthrough
	}
	across := (d.Width + d.TileWidth - 1) / d.TileWidth
	i := row*across + col
	off, err := d.offsets.get(r, i)
	if err != nil {
		return dst, err
	}
	n, err := d.counts.get(r, i)
	if err != nil {
		return dst, err
	}
	tables := d.JPEGTables
	if n < 4 || n > maxTileBytes || tables[0] != 0xFF || tables[1] != 0xD8 ||
		tables[len(tables)-2] != 0xFF || tables[len(tables)-1] != 0xD9 {
		return dst, ErrNoPassthrough
	}
	start := len(dst)
	dst = append(dst, 0xFF, 0xD8)
	dst = append(dst, jfif...)
	dst = append(dst, tables[2:len(tables)-2]...)
	body := len(dst)
	dst = append(dst, make([]byte, n)...)
	if _, err := r.ReadAt(dst[body:], int64(off)); err != nil {
		return dst[:start], err
	}
	// The tile stream starts with its own SOI: drop it.
	if dst[body] != 0xFF || dst[body+1] != 0xD8 || dst[len(dst)-2] != 0xFF || dst[len(dst)-1] != 0xD9 {
		return dst[:start], ErrNoPassthrough
	}
	copy(dst[body:], dst[body+2:])
	return dst[:len(dst)-2], nil
}

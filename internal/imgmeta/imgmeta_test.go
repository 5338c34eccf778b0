package imgmeta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// tiffEntry is one IFD entry for the test writer.
type tiffEntry struct {
	tag, typ uint16
	vals     []uint64 // numbers, or
	raw      []byte   // UNDEFINED bytes
}

// buildTIFF writes a one-IFD TIFF (classic or BigTIFF, either byte order)
// followed by the given tile streams.
func buildTIFF(t *testing.T, bo binary.ByteOrder, big bool, entries []tiffEntry, tiles [][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	put := func(v any) { binary.Write(&b, bo, v) }
	if bo == binary.LittleEndian {
		b.WriteString("II")
	} else {
		b.WriteString("MM")
	}
	hdr := 8
	if big {
		put(uint16(43))
		put(uint16(8))
		put(uint16(0))
		hdr = 16
	} else {
		put(uint16(42))
	}
	entrySize, countSize, offSize := 12, 2, 4
	if big {
		entrySize, countSize, offSize = 20, 8, 8
	}
	ifdAt := hdr
	ifdLen := countSize + len(entries)*entrySize + offSize
	dataAt := ifdAt + ifdLen
	// Lay out out-of-line data and tiles after the IFD.
	var data bytes.Buffer
	var tileOffs []uint64
	for _, tl := range tiles {
		tileOffs = append(tileOffs, uint64(dataAt+data.Len()))
		data.Write(tl)
	}
	for i := range entries {
		if entries[i].tag == tagTileOffsets {
			entries[i].vals = tileOffs
		}
	}
	if big {
		put(uint64(ifdAt))
	} else {
		put(uint32(ifdAt))
	}
	if big {
		put(uint64(len(entries)))
	} else {
		put(uint16(len(entries)))
	}
	size := map[uint16]int{3: 2, 4: 4, 7: 1, 16: 8}
	for _, e := range entries {
		put(e.tag)
		put(e.typ)
		n := len(e.vals)
		if e.raw != nil {
			n = len(e.raw)
		}
		if big {
			put(uint64(n))
		} else {
			put(uint32(n))
		}
		var val bytes.Buffer
		if e.raw != nil {
			val.Write(e.raw)
		} else {
			for _, v := range e.vals {
				switch size[e.typ] {
				case 2:
					binary.Write(&val, bo, uint16(v))
				case 4:
					binary.Write(&val, bo, uint32(v))
				case 8:
					binary.Write(&val, bo, v)
				}
			}
		}
		if val.Len() <= offSize {
			field := make([]byte, offSize)
			copy(field, val.Bytes())
			b.Write(field)
		} else {
			at := uint64(dataAt + data.Len())
			data.Write(val.Bytes())
			if big {
				put(at)
			} else {
				put(uint32(at))
			}
		}
	}
	if big {
		put(uint64(0))
	} else {
		put(uint32(0))
	}
	if b.Len() != dataAt {
		t.Fatalf("layout: IFD ends at %d, expected %d", b.Len(), dataAt)
	}
	b.Write(data.Bytes())
	return b.Bytes()
}

var (
	tables = []byte{0xFF, 0xD8, 0xFF, 0xDB, 0, 4, 1, 2, 0xFF, 0xD9}
	tile0  = []byte{0xFF, 0xD8, 0xFF, 0xC0, 0xAA, 0xFF, 0xD9}
	tile1  = []byte{0xFF, 0xD8, 0xFF, 0xC0, 0xBB, 0xCC, 0xFF, 0xD9}
)

func jpegTIFF(t *testing.T, bo binary.ByteOrder, big bool, photometric uint64) []byte {
	offType := uint16(4)
	if big {
		offType = 16
	}
	return buildTIFF(t, bo, big, []tiffEntry{
		{tag: tagImageWidth, typ: 4, vals: []uint64{500}},
		{tag: tagImageLength, typ: 4, vals: []uint64{256}},
		{tag: tagBitsPerSample, typ: 3, vals: []uint64{8, 8, 8}},
		{tag: tagCompression, typ: 3, vals: []uint64{7}},
		{tag: tagPhotometric, typ: 3, vals: []uint64{photometric}},
		{tag: tagSamplesPerPixel, typ: 3, vals: []uint64{3}},
		{tag: tagPlanarConfig, typ: 3, vals: []uint64{1}},
		{tag: tagTileWidth, typ: 3, vals: []uint64{256}},
		{tag: tagTileLength, typ: 3, vals: []uint64{256}},
		{tag: tagTileOffsets, typ: offType},
		{tag: tagTileByteCounts, typ: 4, vals: []uint64{uint64(len(tile0)), uint64(len(tile1))}},
		{tag: tagJPEGTables, typ: 7, raw: tables},
	}, [][]byte{tile0, tile1})
}

func TestReadTIFFAndPassThroughATile(t *testing.T) {
	for _, tc := range []struct {
		name string
		bo   binary.ByteOrder
		big  bool
	}{
		{"classic little-endian", binary.LittleEndian, false},
		{"classic big-endian", binary.BigEndian, false},
		{"BigTIFF little-endian", binary.LittleEndian, true},
		{"BigTIFF big-endian", binary.BigEndian, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := jpegTIFF(t, tc.bo, tc.big, photometricYCC)
			tf, err := ReadTIFF(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			d := tf.Pages[0]
			if d.Width != 500 || d.Height != 256 || d.TileWidth != 256 || d.TileHeight != 256 || !d.JPEGPassthrough() {
				t.Fatalf("IFD %+v", d)
			}
			got, err := d.AppendJPEGTile([]byte("prefix"), bytes.NewReader(file), 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			want := append([]byte("prefix\xFF\xD8"), jfif...)
			want = append(want, tables[2:len(tables)-2]...)
			want = append(want, tile1[2:]...)
			if !bytes.Equal(got, want) {
				t.Errorf("tile 1:\n got % x\nwant % x", got, want)
			}
			if _, err := d.AppendJPEGTile(nil, bytes.NewReader(file), 2, 0); err == nil {
				t.Error("a tile outside the grid did not fail")
			}
		})
	}
}

func TestPassthroughRefusesWhatItCannotServeAsStored(t *testing.T) {
	rgb := jpegTIFF(t, binary.LittleEndian, false, 2) // photometric RGB: a decoder would read YCbCr
	tf, err := ReadTIFF(bytes.NewReader(rgb))
	if err != nil {
		t.Fatal(err)
	}
	if tf.Pages[0].JPEGPassthrough() {
		t.Error("RGB-photometric JPEG tiles accepted for pass-through")
	}
	if _, err := tf.Pages[0].AppendJPEGTile(nil, bytes.NewReader(rgb), 0, 0); !errors.Is(err, ErrNoPassthrough) {
		t.Errorf("AppendJPEGTile = %v, want ErrNoPassthrough", err)
	}
	for _, bad := range [][]byte{nil, []byte("GIF89a"), []byte("II\x2a\x00\xff\xff\xff\x7f")} {
		if _, err := ReadTIFF(bytes.NewReader(bad)); err == nil {
			t.Errorf("ReadTIFF(% x) succeeded", bad)
		}
	}
}

func TestJP2TileSize(t *testing.T) {
	siz := func(w, h, tw, th uint32) []byte {
		b := []byte{0xFF, 0x4F, 0xFF, 0x51, 0, 41, 0, 0}
		for _, v := range []uint32{w, h, 0, 0, tw, th, 0, 0} {
			b = binary.BigEndian.AppendUint32(b, v)
		}
		return b
	}
	box := func(typ string, body []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
		return append(append(b, typ...), body...)
	}
	jp2 := append(box("jP  ", []byte{0x0D, 0x0A, 0x87, 0x0A}), box("ftyp", []byte("jp2 \x00\x00\x00\x00jp2 "))...)
	jp2 = append(jp2, box("jp2h", make([]byte, 30))...)
	jp2 = append(jp2, box("jp2c", siz(6000, 4000, 1024, 512))...)
	tests := []struct {
		name   string
		data   []byte
		tw, th int
	}{
		{"bare codestream", siz(3000, 2000, 512, 512), 512, 512},
		{"jp2 boxes", jp2, 1024, 512},
		{"tile larger than image", siz(300, 200, 1024, 1024), 300, 200},
	}
	for _, tt := range tests {
		w, h, err := JP2TileSize(bytes.NewReader(tt.data))
		if err != nil || w != tt.tw || h != tt.th {
			t.Errorf("%s: %d×%d %v, want %d×%d", tt.name, w, h, err, tt.tw, tt.th)
		}
	}
	if _, _, err := JP2TileSize(bytes.NewReader([]byte("not a jpeg 2000 file at all"))); err == nil {
		t.Error("garbage accepted")
	}
}

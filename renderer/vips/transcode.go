package vips

// #include "shim.h"
// #include "direct.h"
import "C"

import (
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/iiif-proxy/iiif-proxy/rules"
)

// testNoTranscode sends every render through libvips, for tests that
// compare the two paths.
var testNoTranscode bool

// transcoded counts the renders transcode served, for tests that check
// which path a render took.
var transcoded atomic.Uint64

// transcodable reports whether res is exactly one stored JPEG tile of lv,
// or the part inside the level of a partial tile on its right or bottom
// edge, unrotated, as JPEG, in the tile's own colour space: the geometry
// of a pass-through, for when the tile cannot pass through as stored
// (TilePassthrough off, or its profile must be converted).
func transcodable(lv Level, x, y, w, h int, res rules.Resolved) bool {
	d := lv.ifd
	if d == nil || !d.JPEGPassthrough() || res.Format != rules.FormatJPG || res.Rotation != (rules.Rotation{}) ||
		w != res.Width || h != res.Height || x%d.TileWidth != 0 || y%d.TileHeight != 0 ||
		x >= d.Width || y >= d.Height || w != min(d.TileWidth, d.Width-x) || h != min(d.TileHeight, d.Height-y) {
		return false
	}
	switch res.Quality {
	case rules.QualityDefault, rules.QualityColor:
		return true
	case rules.QualityGray:
		return d.SamplesPerPixel == 1
	}
	return false
}

// transcode decodes the stored tile and encodes it again at JPGQuality,
// converting its colours when mode says so, in one C call and without a
// libvips pipeline (direct.h). transcodable holds, so res's size is the
// tile's, or for an edge tile (stored padded) the top-left part inside the
// level. ok is false when it cannot (a damaged tile, a profile lcms
// rejects): the caller renders through libvips, which reads the tile again
// or says why it cannot. The caller holds a render slot.
func (v *Vips) transcode(in input, src *source, lv Level, x, y int, res rules.Resolved, mode int) ([]byte, bool) {
	d := lv.ifd
	tile, err := d.AppendJPEGTile(make([]byte, 0, 64<<10), in.reader(), x/d.TileWidth, y/d.TileHeight)
	if err != nil {
		return nil, false
	}
	// The tile and the profile are passed as Go memory, for the call only
	// (cgo allows it: they hold no Go pointers), not copied to C's heap:
	// a copy of colord's Adobe RGB profile is 18.6 KB a tile.
	var profile unsafe.Pointer
	var plen C.size_t
	if mode == C.IIIF_ICC_CONVERT {
		if src.colour.kind != profileRGB || len(src.colour.profile) == 0 {
			return nil, false
		}
		profile, plen = unsafe.Pointer(&src.colour.profile[0]), C.size_t(len(src.colour.profile))
	}
	if len(tile) == 0 {
		return nil, false
	}
	cin := unsafe.Pointer(&tile[0])
	var buf unsafe.Pointer
	var n C.size_t
	start := time.Now()
	rc := C.iiif_transcode_jpeg(cin, C.size_t(len(tile)), C.int(res.Width), C.int(res.Height),
		C.int(v.cfg.JPGQuality), C.ulonglong(src.colour.key), profile, plen, &buf, &n)
	v.stats.ns.Add(uint64(time.Since(start)))
	if rc != 0 {
		C.vips_error_clear()
		return nil, false
	}
	defer C.iiif_free(buf)
	body, err := withProfile(C.GoBytes(buf, C.int(n)), src.colour, mode, res)
	if err != nil {
		return nil, false
	}
	transcoded.Add(1)
	return body, true
}

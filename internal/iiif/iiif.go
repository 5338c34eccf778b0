// Package iiif reads IIIF Image API info.json documents (3.0 and 2.1) and
// computes what a deep-zoom viewer asks for: the pyramid that `tiles` and
// `scaleFactors` describe, the tiles a view of the image covers, and each
// tile's URL in the form OpenSeadragon's IIIFTileSource builds for the
// version the server advertises.
//
// For a 1000 × 700 image with 256-pixel tiles and scale factors 1, 2, 4, the
// half-resolution level is 500 × 350 pixels, 2 × 2 tiles; its bottom-right
// tile covers the image region 512,512,488,188 and is 244 × 94 pixels:
//
//	3.0: 512,512,488,188/244,94/0/default.jpg
//	2.1: 512,512,488,188/244,/0/default.jpg
//
// The quarter-resolution level (250 × 175) fits one tile, which is asked
// for as the whole image: full/250,175/0/default.jpg (2.1: full/250,/…).
// The package does no I/O.
package iiif

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Version is the IIIF Image API version a server advertises.
type Version int

// The versions the harness speaks.
const (
	V2 Version = 2 // Image API 2.1: "@id", sizes "w,"
	V3 Version = 3 // Image API 3.0: "id", sizes "w,h"
)

func (v Version) String() string {
	switch v {
	case V2:
		return "2.1"
	case V3:
		return "3.0"
	}
	return "unknown"
}

// TileSpec is one entry of info.json's `tiles`: a tile size in output pixels
// and the scale factors it applies to.
type TileSpec struct {
	Width, Height int
	ScaleFactors  []int
}

// Image is what the harness needs from one info.json.
type Image struct {
	ID            string  // identifier as the harness names it in URLs (not escaped)
	Version       Version // from @context
	Width, Height int     // full-resolution size
	Tiles         []TileSpec
}

// ErrNotIIIF says a document is not an IIIF Image API 2.x or 3.x info.json.
var ErrNotIIIF = errors.New("not an IIIF Image API 2.1 or 3.0 info.json")

type infoDoc struct {
	Context json.RawMessage `json:"@context"`
	ID      string          `json:"id"`
	AtID    string          `json:"@id"`
	Type    string          `json:"type"`
	Width   int             `json:"width"`
	Height  int             `json:"height"`
	Tiles   []struct {
		Width        int   `json:"width"`
		Height       int   `json:"height"`
		ScaleFactors []int `json:"scaleFactors"`
	} `json:"tiles"`
}

// ParseInfo reads an info.json document of the image named id. The version
// comes from `@context` (…/image/3/context.json or …/image/2/context.json),
// else from `type: ImageService3` or the presence of `id` or `@id`.
func ParseInfo(id string, data []byte) (Image, error) {
	var d infoDoc
	if err := json.Unmarshal(data, &d); err != nil {
		return Image{}, fmt.Errorf("%w: %v", ErrNotIIIF, err)
	}
	im := Image{ID: id, Width: d.Width, Height: d.Height}
	im.Version = contextVersion(d.Context)
	if im.Version == 0 {
		switch {
		case d.Type == "ImageService3" || d.ID != "":
			im.Version = V3
		case d.AtID != "":
			im.Version = V2
		default:
			return Image{}, fmt.Errorf("%w: no @context, id or @id", ErrNotIIIF)
		}
	}
	if im.Width < 1 || im.Height < 1 {
		return Image{}, fmt.Errorf("%w: size %d×%d", ErrNotIIIF, im.Width, im.Height)
	}
	for _, t := range d.Tiles {
		if t.Width < 1 {
			return Image{}, fmt.Errorf("%w: tile width %d", ErrNotIIIF, t.Width)
		}
		h := t.Height
		if h < 1 {
			h = t.Width // the spec: height defaults to width
		}
		sf := slices.Clone(t.ScaleFactors)
		if len(sf) == 0 {
			sf = []int{1}
		}
		for _, s := range sf {
			if s < 1 {
				return Image{}, fmt.Errorf("%w: scale factor %d", ErrNotIIIF, s)
			}
		}
		im.Tiles = append(im.Tiles, TileSpec{Width: t.Width, Height: h, ScaleFactors: sf})
	}
	return im, nil
}

// contextVersion finds the Image API version in a @context string or list.
func contextVersion(raw json.RawMessage) Version {
	var list []string
	var one string
	if json.Unmarshal(raw, &one) == nil {
		list = []string{one}
	} else {
		var anys []any
		if json.Unmarshal(raw, &anys) != nil {
			return 0
		}
		for _, a := range anys {
			if s, ok := a.(string); ok {
				list = append(list, s)
			}
		}
	}
	for _, s := range list {
		switch {
		case strings.Contains(s, "/image/3/"):
			return V3
		case strings.Contains(s, "/image/2/"):
			return V2
		}
	}
	return 0
}

// Level is one resolution level of the pyramid.
type Level struct {
	Scale                 int // scale factor: 1 is full resolution
	TileWidth, TileHeight int // tile size in this level's pixels
	Width, Height         int // the level's size: the image's divided by Scale, rounded up
	Cols, Rows            int // tiles across and down
}

// Levels returns the pyramid, finest level (smallest scale factor) first.
// A scale factor listed under several `tiles` entries takes the first. An
// info.json without `tiles` gets 512-pixel tiles (or the short side, if
// smaller) and scale factors 1, 2, 4, … until the image fits one tile.
func (im Image) Levels() []Level {
	type ts struct{ w, h int }
	bySF := map[int]ts{}
	var order []int
	for _, t := range im.Tiles {
		for _, s := range t.ScaleFactors {
			if _, ok := bySF[s]; !ok {
				bySF[s] = ts{t.Width, t.Height}
				order = append(order, s)
			}
		}
	}
	if len(order) == 0 {
		tw := min(512, im.Width, im.Height)
		for s := 1; ; s *= 2 {
			bySF[s] = ts{tw, tw}
			order = append(order, s)
			if ceilDiv(im.Width, s) <= tw && ceilDiv(im.Height, s) <= tw {
				break
			}
		}
	}
	slices.Sort(order)
	levels := make([]Level, len(order))
	for i, s := range order {
		t := bySF[s]
		w, h := ceilDiv(im.Width, s), ceilDiv(im.Height, s)
		levels[i] = Level{Scale: s, TileWidth: t.w, TileHeight: t.h, Width: w, Height: h,
			Cols: ceilDiv(w, t.w), Rows: ceilDiv(h, t.h)}
	}
	return levels
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// TileURL returns the path of tile (col, row) of level l after the
// identifier: "{region}/{size}/0/default.jpg", as OpenSeadragon's
// IIIFTileSource forms it, with sizes in the canonical form of the image's
// version: "w,h" for 3.0 and "w," for 2.1 (OpenSeadragon itself sends "w,h"
// to 2.x servers above level 0). The region is clipped to the image; a level
// smaller than one tile both ways is asked for as region "full"; the
// full-size whole image is size "max" (3.0) or "full" (2.1).
func (im Image) TileURL(l Level, col, row int) string {
	var b []byte
	if l.Width < l.TileWidth && l.Height < l.TileHeight {
		b = append(b, "full/"...)
		b = im.appendSize(b, l.Width, l.Height)
	} else {
		tw, th := l.TileWidth*l.Scale, l.TileHeight*l.Scale
		x, y := col*tw, row*th
		w, h := min(tw, im.Width-x), min(th, im.Height-y)
		if x == 0 && y == 0 && w == im.Width && h == im.Height {
			b = append(b, "full"...)
		} else {
			b = strconv.AppendInt(b, int64(x), 10)
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(y), 10)
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(w), 10)
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(h), 10)
		}
		b = append(b, '/')
		b = im.appendSize(b, min(l.TileWidth, l.Width-col*l.TileWidth), min(l.TileHeight, l.Height-row*l.TileHeight))
	}
	b = append(b, "/0/default.jpg"...)
	return string(b)
}

func (im Image) appendSize(b []byte, w, h int) []byte {
	if im.Version == V2 {
		if w == im.Width {
			return append(b, "full"...)
		}
		b = strconv.AppendInt(b, int64(w), 10)
		return append(b, ',')
	}
	if w == im.Width && h == im.Height {
		return append(b, "max"...)
	}
	b = strconv.AppendInt(b, int64(w), 10)
	b = append(b, ',')
	return strconv.AppendInt(b, int64(h), 10)
}

// Viewport is the viewer's size on screen, in screen pixels.
type Viewport struct{ Width, Height int }

// ParseViewport reads "1280x800".
func ParseViewport(s string) (Viewport, error) {
	ws, hs, ok := strings.Cut(strings.ToLower(s), "x")
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if !ok || err1 != nil || err2 != nil || w < 1 || h < 1 {
		return Viewport{}, fmt.Errorf("viewport %q: want WIDTHxHEIGHT, e.g. 1280x800", s)
	}
	return Viewport{w, h}, nil
}

// View is what a viewer shows: the image point at the centre of the
// viewport and the zoom, in screen pixels per full-resolution image pixel.
type View struct {
	X, Y float64
	Zoom float64
}

// FitZoom is the zoom at which the whole image fits the viewport.
func (im Image) FitZoom(vp Viewport) float64 {
	return math.Min(float64(vp.Width)/float64(im.Width), float64(vp.Height)/float64(im.Height))
}

// Home is the view a viewer opens at: the whole image, centred, fitted.
func (im Image) Home(vp Viewport) View {
	return View{X: float64(im.Width) / 2, Y: float64(im.Height) / 2, Zoom: im.FitZoom(vp)}
}

// LevelFor returns the index in levels (finest first) of the level a viewer
// draws at zoom: the coarsest whose resolution is at least the screen's
// (scale factor ≤ 1/zoom), or the finest when zoomed in beyond it.
func LevelFor(levels []Level, zoom float64) int {
	best := 0
	for i, l := range levels {
		if float64(l.Scale)*zoom <= 1+1e-9 {
			best = i
		}
	}
	return best
}

// Tile names one tile of the pyramid.
type Tile struct{ Level, Col, Row int }

// Visible returns the tiles of the level LevelFor picks that the view
// covers, row by row, left to right.
func (im Image) Visible(levels []Level, v View, vp Viewport) []Tile {
	return im.AppendVisible(nil, levels, v, vp)
}

// AppendVisible is Visible appending to dst.
func (im Image) AppendVisible(dst []Tile, levels []Level, v View, vp Viewport) []Tile {
	li := LevelFor(levels, v.Zoom)
	l := levels[li]
	hw, hh := float64(vp.Width)/(2*v.Zoom), float64(vp.Height)/(2*v.Zoom)
	x0, x1 := math.Max(0, v.X-hw), math.Min(float64(im.Width), v.X+hw)
	y0, y1 := math.Max(0, v.Y-hh), math.Min(float64(im.Height), v.Y+hh)
	if x1 <= x0 || y1 <= y0 {
		return dst
	}
	// Tile extent in image pixels; the epsilon keeps a view edge that lands
	// on a tile edge from pulling in the neighbour through rounding.
	tw, th := float64(l.TileWidth*l.Scale), float64(l.TileHeight*l.Scale)
	const eps = 1e-9
	c0, c1 := int(math.Floor(x0/tw+eps)), int(math.Ceil(x1/tw-eps))-1
	r0, r1 := int(math.Floor(y0/th+eps)), int(math.Ceil(y1/th-eps))-1
	c0, r0 = max(c0, 0), max(r0, 0)
	c1, r1 = min(c1, l.Cols-1), min(r1, l.Rows-1)
	for r := r0; r <= r1; r++ {
		for c := c0; c <= c1; c++ {
			dst = append(dst, Tile{li, c, r})
		}
	}
	return dst
}

package iiif

import (
	"errors"
	"slices"
	"testing"
)

const info3 = `{"@context":"http://iiif.io/api/image/3/context.json","id":"http://x/iiif/3/a","type":"ImageService3",
"protocol":"http://iiif.io/api/image","profile":"level2","width":1000,"height":700,
"tiles":[{"width":256,"height":256,"scaleFactors":[1,2,4]}]}`

const info2 = `{"@context":"http://iiif.io/api/image/2/context.json","@id":"http://x/iiif/2/a",
"protocol":"http://iiif.io/api/image","width":1000,"height":700,
"tiles":[{"width":256,"scaleFactors":[4,1,2]}],"profile":["http://iiif.io/api/image/2/level2.json",{}]}`

func small(t *testing.T, doc string) Image {
	t.Helper()
	im, err := ParseInfo("a", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func TestParseInfo(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want Version
	}{
		{"3.0", info3, V3},
		{"2.1", info2, V2},
		{"context list", `{"@context":["http://iiif.io/api/image/3/context.json",{"x":1}],"id":"i","width":5,"height":5}`, V3},
		{"no context, @id", `{"@id":"i","width":5,"height":5}`, V2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im := small(t, tc.doc)
			if im.Version != tc.want {
				t.Errorf("version %v, want %v", im.Version, tc.want)
			}
		})
	}
	for _, bad := range []string{`{`, `{"width":5,"height":5}`, `{"id":"i","width":0,"height":5}`,
		`{"id":"i","width":5,"height":5,"tiles":[{"width":0}]}`} {
		if _, err := ParseInfo("a", []byte(bad)); !errors.Is(err, ErrNotIIIF) {
			t.Errorf("ParseInfo(%s) = %v, want ErrNotIIIF", bad, err)
		}
	}
}

func TestLevels(t *testing.T) {
	want := []Level{
		{Scale: 1, TileWidth: 256, TileHeight: 256, Width: 1000, Height: 700, Cols: 4, Rows: 3},
		{Scale: 2, TileWidth: 256, TileHeight: 256, Width: 500, Height: 350, Cols: 2, Rows: 2},
		{Scale: 4, TileWidth: 256, TileHeight: 256, Width: 250, Height: 175, Cols: 1, Rows: 1},
	}
	for _, doc := range []string{info3, info2} {
		if got := small(t, doc).Levels(); !slices.Equal(got, want) {
			t.Errorf("Levels = %+v\nwant %+v", got, want)
		}
	}
	// No tiles: 512-pixel tiles, powers of two until one tile holds the image.
	im := Image{Width: 3000, Height: 1000, Version: V3}
	got := im.Levels()
	if len(got) != 4 || got[3].Scale != 8 || got[3].Cols != 1 || got[0].TileWidth != 512 {
		t.Errorf("default Levels = %+v", got)
	}
}

// views lists, for a 1000 × 700 image with 256-pixel tiles and scale factors
// 1, 2, 4, hand-computed tiles and URLs of four views.
var views = []struct {
	name   string
	vp     Viewport
	view   func(Image, Viewport) View
	v3, v2 []string
}{
	{
		// 300 × 200 fits the image at zoom 0.2857: 1/zoom = 3.5, so scale 2,
		// the 500 × 350 level, all four of its tiles.
		name: "home 300x200",
		vp:   Viewport{300, 200},
		view: Image.Home,
		v3: []string{
			"0,0,512,512/256,256/0/default.jpg", "512,0,488,512/244,256/0/default.jpg",
			"0,512,512,188/256,94/0/default.jpg", "512,512,488,188/244,94/0/default.jpg",
		},
		v2: []string{
			"0,0,512,512/256,/0/default.jpg", "512,0,488,512/244,/0/default.jpg",
			"0,512,512,188/256,/0/default.jpg", "512,512,488,188/244,/0/default.jpg",
		},
	},
	{
		// 1:1 at (600, 400): x 450–750, y 300–500 → columns 1–2, row 1.
		name: "1:1 middle",
		vp:   Viewport{300, 200},
		view: func(Image, Viewport) View { return View{X: 600, Y: 400, Zoom: 1} },
		v3:   []string{"256,256,256,256/256,256/0/default.jpg", "512,256,256,256/256,256/0/default.jpg"},
		v2:   []string{"256,256,256,256/256,/0/default.jpg", "512,256,256,256/256,/0/default.jpg"},
	},
	{
		// 2:1 at the bottom-right corner: x 925–1000, y 650–700, clipped edge tile.
		name: "2:1 corner",
		vp:   Viewport{300, 200},
		view: func(Image, Viewport) View { return View{X: 1000, Y: 700, Zoom: 2} },
		v3:   []string{"768,512,232,188/232,188/0/default.jpg"},
		v2:   []string{"768,512,232,188/232,/0/default.jpg"},
	},
	{
		// Zoom 0.2: scale 4 (1/zoom = 5), a level smaller than one tile.
		name: "whole at quarter",
		vp:   Viewport{200, 140},
		view: Image.Home,
		v3:   []string{"full/250,175/0/default.jpg"},
		v2:   []string{"full/250,/0/default.jpg"},
	},
}

func TestVisibleTiles(t *testing.T) {
	for _, doc := range []string{info3, info2} {
		im := small(t, doc)
		levels := im.Levels()
		for _, tc := range views {
			t.Run(im.Version.String()+" "+tc.name, func(t *testing.T) {
				var got []string
				for _, tl := range im.Visible(levels, tc.view(im, tc.vp), tc.vp) {
					got = append(got, im.TileURL(levels[tl.Level], tl.Col, tl.Row))
				}
				want := tc.v3
				if im.Version == V2 {
					want = tc.v2
				}
				if !slices.Equal(got, want) {
					t.Errorf("got  %q\nwant %q", got, want)
				}
			})
		}
	}
}

func TestFullSizeWholeImage(t *testing.T) {
	// A 200 × 100 image with 256 tiles at scale 1 is one tile: the whole
	// image at full size.
	for v, want := range map[Version]string{V3: "full/max/0/default.jpg", V2: "full/full/0/default.jpg"} {
		im := Image{ID: "s", Version: v, Width: 200, Height: 100, Tiles: []TileSpec{{256, 256, []int{1}}}}
		l := im.Levels()
		if got := im.TileURL(l[0], 0, 0); got != want {
			t.Errorf("%v: %s, want %s", v, got, want)
		}
	}
}

func TestLevelFor(t *testing.T) {
	levels := small(t, info3).Levels()
	for zoom, want := range map[float64]int{2: 0, 1: 0, 0.9: 0, 0.5: 1, 0.3: 1, 0.25: 2, 0.01: 2} {
		if got := LevelFor(levels, zoom); got != want {
			t.Errorf("LevelFor(%v) = %d, want %d", zoom, got, want)
		}
	}
}

func TestParseViewport(t *testing.T) {
	if vp, err := ParseViewport("1280x800"); err != nil || vp != (Viewport{1280, 800}) {
		t.Errorf("ParseViewport = %v, %v", vp, err)
	}
	for _, bad := range []string{"", "1280", "0x5", "ax5"} {
		if _, err := ParseViewport(bad); err == nil {
			t.Errorf("ParseViewport(%q) succeeded", bad)
		}
	}
}

package rules

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

var (
	img6000x4000 = ImageInfo{Width: 6000, Height: 4000}
	img7001x5003 = ImageInfo{Width: 7001, Height: 5003}
	img300x200   = ImageInfo{Width: 300, Height: 200} // the spec's example image
	noLimits     = Limits{}
)

// mustParse parses prefix "id/"+path or fails the test.
func mustParse(t testing.TB, v Version, path string) Request {
	t.Helper()
	r, err := Parse(v, "id/"+path)
	if err != nil {
		t.Fatalf("Parse(%v, %q): %v", v, path, err)
	}
	return r
}

func TestResolveOK(t *testing.T) {
	type want struct {
		region   Rect
		full     bool
		w, h     int
		upscaled bool
	}
	tests := []struct {
		name string
		v    Version
		path string
		info ImageInfo
		lim  Limits
		want want
	}{
		// Regions.
		{"v3 full", V3, "full/max/0/default.jpg", img6000x4000, noLimits, want{Rect{0, 0, 6000, 4000}, true, 6000, 4000, false}},
		{"v2 full", V2, "full/full/0/default.jpg", img6000x4000, noLimits, want{Rect{0, 0, 6000, 4000}, true, 6000, 4000, false}},
		{"v3 tile", V3, "1024,2048,512,512/256,/0/default.jpg", img6000x4000, noLimits, want{Rect{1024, 2048, 512, 512}, false, 256, 256, false}},
		{"v2 tile", V2, "1024,2048,512,512/256,/0/default.jpg", img6000x4000, noLimits, want{Rect{1024, 2048, 512, 512}, false, 256, 256, false}},
		{"cropped right and bottom", V3, "5000,3000,2000,2000/max/0/default.jpg", img6000x4000, noLimits, want{Rect{5000, 3000, 1000, 1000}, false, 1000, 1000, false}},
		{"cropped to the last pixel", V2, "5999,3999,10,10/full/0/default.jpg", img6000x4000, noLimits, want{Rect{5999, 3999, 1, 1}, false, 1, 1, false}},
		{"spec example 5 cropped", V3, "125,15,200,200/max/0/default.jpg", img300x200, noLimits, want{Rect{125, 15, 175, 185}, false, 175, 185, false}},
		{"pixels covering the image", V3, "0,0,6000,4000/max/0/default.jpg", img6000x4000, noLimits, want{Rect{0, 0, 6000, 4000}, true, 6000, 4000, false}},
		{"pixels beyond the image from 0,0", V3, "0,0,9999,9999/max/0/default.jpg", img6000x4000, noLimits, want{Rect{0, 0, 6000, 4000}, true, 6000, 4000, false}},
		{"square landscape", V3, "square/max/0/default.jpg", img6000x4000, noLimits, want{Rect{1000, 0, 4000, 4000}, false, 4000, 4000, false}},
		{"square portrait", V3, "square/max/0/default.jpg", ImageInfo{4000, 6000}, noLimits, want{Rect{0, 1000, 4000, 4000}, false, 4000, 4000, false}},
		{"square of a square", V2, "square/full/0/default.jpg", ImageInfo{5000, 5000}, noLimits, want{Rect{0, 0, 5000, 5000}, true, 5000, 5000, false}},
		{"square odd margin rounds down", V3, "square/max/0/default.jpg", img7001x5003, noLimits, want{Rect{999, 0, 5003, 5003}, false, 5003, 5003, false}},
		{"square one pixel margin", V3, "square/max/0/default.jpg", ImageInfo{3, 2}, noLimits, want{Rect{0, 0, 2, 2}, false, 2, 2, false}},
		{"pct spec example 4", V3, "pct:41.6,7.5,40,70/max/0/default.jpg", img300x200, noLimits, want{Rect{125, 15, 120, 140}, false, 120, 140, false}},
		{"pct spec example 6 cropped", V2, "pct:41.6,7.5,66.6,100/full/0/default.jpg", img300x200, noLimits, want{Rect{125, 15, 175, 185}, false, 175, 185, false}},
		{"pct whole image", V3, "pct:0,0,100,100/max/0/default.jpg", img7001x5003, noLimits, want{Rect{0, 0, 7001, 5003}, true, 7001, 5003, false}},
		{"pct tiny is one pixel", V3, "pct:0,0,0.001,0.001/max/0/default.jpg", img300x200, noLimits, want{Rect{0, 0, 1, 1}, false, 1, 1, false}},
		{"pct start rounding onto the edge", V3, "pct:99.99,0,0.01,100/max/0/default.jpg", ImageInfo{100, 100}, noLimits, want{Rect{99, 0, 1, 100}, false, 1, 100, false}},
		{"pct thirds", V3, "pct:33.33,0,33.33,100/max/0/default.jpg", img7001x5003, noLimits, want{Rect{2333, 0, 2334, 5003}, false, 2334, 5003, false}},

		// Sizes.
		{"v3 w,", V3, "full/3000,/0/default.jpg", img6000x4000, noLimits, want{Rect{0, 0, 6000, 4000}, true, 3000, 2000, false}},
		{"v3 ,h", V3, "full/,2000/0/default.jpg", img6000x4000, noLimits, want{Rect{0, 0, 6000, 4000}, true, 3000, 2000, false}},
		{"v3 pct", V3, "full/pct:50/0/default.jpg", img6000x4000, noLimits, want{Rect{0, 0, 6000, 4000}, true, 3000, 2000, false}},
		{"v3 pct rounds each side", V3, "full/pct:25/0/default.jpg", img7001x5003, noLimits, want{Rect{0, 0, 7001, 5003}, true, 1750, 1251, false}},
		{"w, rounds the height", V3, "full/100,/0/default.jpg", img7001x5003, noLimits, want{Rect{0, 0, 7001, 5003}, true, 100, 71, false}},
		{",h rounds the width", V2, "full/,100/0/default.jpg", img7001x5003, noLimits, want{Rect{0, 0, 7001, 5003}, true, 140, 100, false}},
		{"w, rounds halves up", V3, "full/2,/0/default.jpg", ImageInfo{4, 3}, noLimits, want{Rect{0, 0, 4, 3}, true, 2, 2, false}},
		{"spec !w,h", V3, "full/!225,100/0/default.jpg", img300x200, noLimits, want{Rect{0, 0, 300, 200}, true, 150, 100, false}},
		{"spec ^!w,h", V3, "full/^!360,360/0/default.jpg", img300x200, noLimits, want{Rect{0, 0, 300, 200}, true, 360, 240, true}},
		{"v3 !w,h larger than the region", V3, "full/!360,360/0/default.jpg", img300x200, noLimits, want{Rect{0, 0, 300, 200}, true, 300, 200, false}},
		{"v2 !w,h upscales", V2, "full/!360,360/0/default.jpg", img300x200, noLimits, want{Rect{0, 0, 300, 200}, true, 360, 240, true}},
		{"spec w,h distorts", V3, "full/225,100/0/default.jpg", img300x200, noLimits, want{Rect{0, 0, 300, 200}, true, 225, 100, false}},
		{"v3 ^w,h", V3, "full/^360,360/0/default.jpg", img300x200, noLimits, want{Rect{0, 0, 300, 200}, true, 360, 360, true}},
		{"v3 ^w,h upscaling one side", V3, "full/^400,100/0/default.jpg", img300x200, noLimits, want{Rect{0, 0, 300, 200}, true, 400, 100, true}},
		{"v3 ^ without upscaling", V3, "full/^100,/0/default.jpg", img6000x4000, noLimits, want{Rect{0, 0, 6000, 4000}, true, 100, 67, false}},
		{"v3 ^w,", V3, "full/^9000,/0/default.jpg", img6000x4000, noLimits, want{Rect{0, 0, 6000, 4000}, true, 9000, 6000, true}},
		{"v3 ^,h", V3, "full/^,6000/0/default.jpg", img6000x4000, noLimits, want{Rect{0, 0, 6000, 4000}, true, 9000, 6000, true}},
		{"v3 ^pct", V3, "full/^pct:150/0/default.jpg", img6000x4000, noLimits, want{Rect{0, 0, 6000, 4000}, true, 9000, 6000, true}},
		{"v2 w, upscales", V2, "full/9000,/0/default.jpg", img6000x4000, noLimits, want{Rect{0, 0, 6000, 4000}, true, 9000, 6000, true}},
		{"v2 pct upscales", V2, "full/pct:150/0/default.jpg", img6000x4000, noLimits, want{Rect{0, 0, 6000, 4000}, true, 9000, 6000, true}},
		{"v2 w,h upscales", V2, "0,0,10,10/20,30/0/default.jpg", img6000x4000, noLimits, want{Rect{0, 0, 10, 10}, false, 20, 30, true}},
		{"v3 ^max without limits", V3, "full/^max/0/default.jpg", img300x200, noLimits, want{Rect{0, 0, 300, 200}, true, 300, 200, false}},

		// Limits.
		{"spec max with maxWidth", V3, "full/max/0/default.jpg", img300x200, Limits{MaxWidth: 200}, want{Rect{0, 0, 300, 200}, true, 200, 133, false}},
		{"spec ^max with maxWidth", V3, "full/^max/0/default.jpg", img300x200, Limits{MaxWidth: 360}, want{Rect{0, 0, 300, 200}, true, 360, 240, true}},
		{"^max shrinks too", V3, "full/^max/0/default.jpg", img300x200, Limits{MaxWidth: 200}, want{Rect{0, 0, 300, 200}, true, 200, 133, false}},
		{"max with maxArea", V3, "full/max/0/default.jpg", img6000x4000, Limits{MaxArea: 1_000_000}, want{Rect{0, 0, 6000, 4000}, true, 1224, 816, false}},
		{"max with maxHeight, portrait", V3, "full/max/0/default.jpg", ImageInfo{4000, 6000}, Limits{MaxHeight: 3000}, want{Rect{0, 0, 4000, 6000}, true, 2000, 3000, false}},
		{"max within limits", V3, "full/max/0/default.jpg", img6000x4000, Limits{MaxWidth: 6000, MaxHeight: 4000, MaxArea: 24_000_000}, want{Rect{0, 0, 6000, 4000}, true, 6000, 4000, false}},
		{"max of a region", V3, "0,0,5000,100/max/0/default.jpg", img6000x4000, Limits{MaxWidth: 2500}, want{Rect{0, 0, 5000, 100}, false, 2500, 50, false}},
		{"v2 full shrinks like max", V2, "full/full/0/default.jpg", img6000x4000, Limits{MaxWidth: 5000}, want{Rect{0, 0, 6000, 4000}, true, 5000, 3333, false}},
		{"v2 max", V2, "full/max/0/default.jpg", img6000x4000, Limits{MaxWidth: 5000}, want{Rect{0, 0, 6000, 4000}, true, 5000, 3333, false}},
		{"v3 !w,h fits the limits", V3, "full/!5000,5000/0/default.jpg", img6000x4000, Limits{MaxWidth: 4000}, want{Rect{0, 0, 6000, 4000}, true, 4000, 2667, false}},
		{"v2 !w,h upscales to the limits", V2, "full/!9000,9000/0/default.jpg", img6000x4000, Limits{MaxWidth: 7500}, want{Rect{0, 0, 6000, 4000}, true, 7500, 5000, true}},
		{"v3 ^!w,h upscales to the limits", V3, "full/^!9000,9000/0/default.jpg", img6000x4000, Limits{MaxWidth: 7500}, want{Rect{0, 0, 6000, 4000}, true, 7500, 5000, true}},
		{"explicit size at the limit", V3, "full/5000,/0/default.jpg", img6000x4000, Limits{MaxWidth: 5000, MaxHeight: 3333, MaxArea: 5000 * 3333}, want{Rect{0, 0, 6000, 4000}, true, 5000, 3333, false}},
		{"negative limits are no limits", V3, "full/max/0/default.jpg", img6000x4000, Limits{MaxWidth: -1, MaxHeight: -1, MaxArea: -1}, want{Rect{0, 0, 6000, 4000}, true, 6000, 4000, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustParse(t, tt.v, tt.path)
			res, err := r.Resolve(tt.info, tt.lim)
			if err != nil {
				t.Fatalf("Resolve(%v, %+v): %v", tt.info, tt.lim, err)
			}
			got := want{res.Region, res.Full, res.Width, res.Height, res.Upscaled}
			if got != tt.want {
				t.Errorf("%v %s on %dx%d %+v\n got %+v\nwant %+v", tt.v, tt.path, tt.info.Width, tt.info.Height, tt.lim, got, tt.want)
			}
			if res.Version != tt.v || res.Quality != r.Quality || res.Format != r.Format || res.Rotation != r.Rotation {
				t.Errorf("Resolve did not carry version, quality, format and rotation over: %+v from %+v", res, r)
			}
			if !fits(int64(res.Width), int64(res.Height), tt.lim) {
				t.Errorf("output %dx%d breaks %+v", res.Width, res.Height, tt.lim)
			}
		})
	}
}

func TestResolveRotation360IsZero(t *testing.T) {
	for _, tc := range []struct {
		path string
		want Rotation
	}{
		{"full/max/360/default.jpg", Rotation{}},
		{"full/max/!360/default.jpg", Rotation{Mirror: true}},
		{"full/max/359.5/default.jpg", Rotation{Degrees: 359.5}},
	} {
		res, err := mustParse(t, V3, tc.path).Resolve(img300x200, noLimits)
		if err != nil {
			t.Fatal(err)
		}
		if res.Rotation != tc.want {
			t.Errorf("%s: rotation %+v, want %+v", tc.path, res.Rotation, tc.want)
		}
	}
}

func TestResolveMaxFields(t *testing.T) {
	tests := []struct {
		name                 string
		v                    Version
		path                 string
		info                 ImageInfo
		lim                  Limits
		maxW, maxH, upW, upH int
	}{
		{"no limits", V3, "full/pct:10/0/default.jpg", img6000x4000, noLimits, 6000, 4000, 6000, 4000},
		{"width limit", V3, "full/pct:10/0/default.jpg", img6000x4000, Limits{MaxWidth: 3000}, 3000, 2000, 3000, 2000},
		{"limits above the region", V2, "0,0,100,50/pct:10/0/default.jpg", img6000x4000, Limits{MaxWidth: 1000, MaxHeight: 1000}, 100, 50, 1000, 500},
		{"area limit above the region", V3, "0,0,100,50/pct:10/0/default.jpg", img6000x4000, Limits{MaxArea: 20000}, 100, 50, 200, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := mustParse(t, tt.v, tt.path).Resolve(tt.info, tt.lim)
			if err != nil {
				t.Fatal(err)
			}
			if res.MaxW != tt.maxW || res.MaxH != tt.maxH || res.UpMaxW != tt.upW || res.UpMaxH != tt.upH {
				t.Errorf("max %dx%d ^max %dx%d, want %dx%d and %dx%d",
					res.MaxW, res.MaxH, res.UpMaxW, res.UpMaxH, tt.maxW, tt.maxH, tt.upW, tt.upH)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	const zero = "; it must be at least 1 pixel in each dimension"
	const maxHint = `; "max" gives the largest size allowed`
	tests := []struct {
		name string
		v    Version
		path string
		info ImageInfo
		lim  Limits
		want string
	}{
		// Regions.
		{"wholly right of the image", V3, "9000,0,10,10/max/0/default.jpg", img6000x4000, noLimits,
			`region "9000,0,10,10": region is entirely outside the 6000×4000 image`},
		{"starting at the right edge", V2, "6000,0,1,1/full/0/default.jpg", img6000x4000, noLimits,
			`region "6000,0,1,1": region is entirely outside the 6000×4000 image`},
		{"wholly below the image", V3, "0,4000,10,10/max/0/default.jpg", img6000x4000, noLimits,
			`region "0,4000,10,10": region is entirely outside the 6000×4000 image`},
		{"pct starting at 100", V3, "pct:100,0,10,10/max/0/default.jpg", img6000x4000, noLimits,
			`region "pct:100,0,10,10": region is entirely outside the 6000×4000 image`},
		{"pct starting at 100 down", V2, "pct:0,100,10,10/full/0/default.jpg", img6000x4000, noLimits,
			`region "pct:0,100,10,10": region is entirely outside the 6000×4000 image`},

		// 3.0 upscaling without "^".
		{"w, wider than the image", V3, "full/9000,/0/default.jpg", img6000x4000, noLimits,
			`size "9000,": width 9000 is wider than the 6000×4000 region; prefix the size with "^" ("^9000,") to allow upscaling`},
		{",h taller than the image", V3, "full/,5000/0/default.jpg", img6000x4000, noLimits,
			`size ",5000": height 5000 is taller than the 6000×4000 region; prefix the size with "^" ("^,5000") to allow upscaling`},
		{"w,h wider than the image", V3, "full/7000,100/0/default.jpg", img6000x4000, noLimits,
			`size "7000,100": 7000×100 is larger than the 6000×4000 region; prefix the size with "^" ("^7000,100") to allow upscaling`},
		{"w,h taller than the region", V3, "0,0,512,512/256,513/0/default.jpg", img6000x4000, noLimits,
			`size "256,513": 256×513 is larger than the 512×512 region; prefix the size with "^" ("^256,513") to allow upscaling`},
		{"w, wider than a cropped region", V3, "5000,0,2000,2000/1001,/0/default.jpg", img6000x4000, noLimits,
			`size "1001,": width 1001 is wider than the 1000×2000 region; prefix the size with "^" ("^1001,") to allow upscaling`},

		// Zero-sized output.
		{"w, leaves no height", V3, "full/100,/0/default.jpg", ImageInfo{7001, 1}, noLimits,
			`size "100,": the output would be 100×0 pixels for the 7001×1 region` + zero},
		{"v2 w, leaves no height", V2, "full/1,/0/default.jpg", ImageInfo{7001, 10}, noLimits,
			`size "1,": the output would be 1×0 pixels for the 7001×10 region` + zero},
		{",h leaves no width", V3, "full/,1/0/default.jpg", ImageInfo{1, 7001}, noLimits,
			`size ",1": the output would be 0×1 pixels for the 1×7001 region` + zero},
		{"pct rounds to nothing", V3, "full/pct:0.5/0/default.jpg", ImageInfo{50, 50}, noLimits,
			`size "pct:0.5": the output would be 0×0 pixels for the 50×50 region` + zero},
		{"!w,h leaves no height", V3, "full/!100,100/0/default.jpg", ImageInfo{7001, 10}, noLimits,
			`size "!100,100": the output would be 100×0 pixels for the 7001×10 region` + zero},

		// Limits.
		{"explicit width over maxWidth", V3, "full/^5000,/0/default.jpg", img6000x4000, Limits{MaxWidth: 4000},
			`size "^5000,": the output would be 5000×3333 pixels, wider than the server's maximum width of 4000` + maxHint},
		{"explicit height over maxHeight", V3, "full/,3000/0/default.jpg", img6000x4000, Limits{MaxHeight: 2000},
			`size ",3000": the output would be 4500×3000 pixels, taller than the server's maximum height of 2000` + maxHint},
		{"explicit size over maxArea", V3, "full/2000,2000/0/default.jpg", img6000x4000, Limits{MaxArea: 1_000_000},
			`size "2000,2000": the output would be 2000×2000 pixels, more than the server's maximum area of 1000000 pixels` + maxHint},
		{"v2 width over maxWidth", V2, "full/5000,/0/default.jpg", img6000x4000, Limits{MaxWidth: 4000},
			`size "5000,": the output would be 5000×3333 pixels, wider than the server's maximum width of 4000` + maxHint},
		{"v2 pct over maxArea", V2, "full/pct:150/0/default.jpg", img6000x4000, Limits{MaxArea: 24_000_000},
			`size "pct:150": the output would be 9000×6000 pixels, more than the server's maximum area of 24000000 pixels` + maxHint},
		{"v2 pct beyond any image", V2, "full/pct:100000000/0/default.jpg", img6000x4000, noLimits,
			`size "pct:100000000": the output would be larger than 1073741824 pixels on a side`},
		{"v3 ^w, making the height huge", V3, "0,0,1,4000/^1000000,/0/default.jpg", img6000x4000, noLimits,
			`size "^1000000,": the output would be larger than 1073741824 pixels on a side`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := mustParse(t, tt.v, tt.path).Resolve(tt.info, tt.lim)
			if err == nil {
				t.Fatalf("Resolve = %+v, want error %s", res, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *Error", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}

// TestResolveBadInput covers requests that did not come from Parse.
func TestResolveBadInput(t *testing.T) {
	tile := mustParse(t, V3, "0,0,10,10/max/0/default.jpg")
	tests := []struct {
		name string
		r    Request
		info ImageInfo
		want string
	}{
		{"info request", Request{Version: V3, Kind: KindInfo, ID: "abc"}, img6000x4000,
			`path "abc": not an image request: there is no region or size to resolve`},
		{"empty image", tile, ImageInfo{}, `identifier "id": the image reports unusable dimensions 0×0`},
		{"huge image", tile, ImageInfo{MaxDimension + 1, 1}, `identifier "id": the image reports unusable dimensions 1073741825×1`},
		{"bad version", func() Request { r := tile; r.Version = 1; return r }(), img6000x4000,
			`path "id": unsupported IIIF Image API version 1`},
		{"negative region", func() Request { r := tile; r.Region.X = -1; return r }(), img6000x4000,
			`region "-1,0,10,10": x must be a whole number of pixels between 0 and 1073741824`},
		{"fractional region", func() Request { r := tile; r.Region.W = 1.5; return r }(), img6000x4000,
			`region "0,0,1.5,10": width must be a whole number of pixels between 0 and 1073741824`},
		{"zero-width region", func() Request { r := tile; r.Region.W = 0; return r }(), img6000x4000,
			`region "0,0,0,10": width must be > 0`},
		{"unknown region kind", func() Request { r := tile; r.Region.Kind = 9; return r }(), img6000x4000,
			`region "0,0,10,10": expected "full", "square", "x,y,w,h" or "pct:x,y,w,h"`},
		{"zero size", func() Request { r := tile; r.Size = Size{Kind: SizeExact}; return r }(), img6000x4000,
			`size "0,0": width and height must be between 1 and 1073741824`},
		{"unknown size kind", func() Request { r := tile; r.Size.Kind = 9; return r }(), img6000x4000,
			`size "unknown": ` + sizeForms(V3)},
		{"rotation out of range", func() Request { r := tile; r.Rotation.Degrees = 400; return r }(), img6000x4000,
			`rotation "400": degrees must be between 0 and 360`},
		{"unknown quality", func() Request { r := tile; r.Quality = 9; return r }(), img6000x4000,
			`quality "unknown": expected "default", "color", "gray" or "bitonal"`},
		{"unknown format", func() Request { r := tile; r.Format = 9; return r }(), img6000x4000,
			`format "": expected "jpg", "png", "webp", "gif" or "tif"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.r.Resolve(tt.info, noLimits)
			if err == nil {
				t.Fatalf("Resolve succeeded, want %s", tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *Error", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}

func TestFitLimits(t *testing.T) {
	tests := []struct {
		name   string
		rw, rh int
		lim    Limits
		up     bool
		w, h   int
	}{
		{"no limits", 6000, 4000, noLimits, false, 6000, 4000},
		{"no limits up", 6000, 4000, noLimits, true, 6000, 4000},
		{"within limits", 6000, 4000, Limits{MaxWidth: 8000}, false, 6000, 4000},
		{"within limits up", 6000, 4000, Limits{MaxWidth: 8000}, true, 8000, 5333},
		{"width", 6000, 4000, Limits{MaxWidth: 3000}, false, 3000, 2000},
		{"height", 6000, 4000, Limits{MaxHeight: 1000}, false, 1500, 1000},
		{"width and height, height binds", 6000, 4000, Limits{MaxWidth: 3000, MaxHeight: 1000}, false, 1500, 1000},
		{"area", 6000, 4000, Limits{MaxArea: 1_000_000}, false, 1224, 816},
		{"area up", 60, 40, Limits{MaxArea: 1_000_000}, true, 1224, 816},
		{"area square", 1000, 1000, Limits{MaxArea: 10_000}, false, 100, 100},
		{"portrait width", 4000, 6000, Limits{MaxWidth: 1000}, false, 1000, 1500},
		{"extreme landscape keeps one row", 7000, 1, Limits{MaxWidth: 100}, false, 100, 1},
		{"extreme portrait keeps one column", 1, 7000, Limits{MaxArea: 100}, false, 1, 100},
		{"one pixel", 1, 1, Limits{MaxWidth: 1, MaxHeight: 1, MaxArea: 1}, true, 1, 1},
		{"up to the dimension cap", 1, 1, Limits{MaxArea: 1 << 62}, true, MaxDimension, MaxDimension},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, h := fitLimits(tt.rw, tt.rh, tt.lim, tt.up, 0)
			if w != tt.w || h != tt.h {
				t.Errorf("fitLimits(%d, %d, %+v, %v) = %dx%d, want %dx%d", tt.rw, tt.rh, tt.lim, tt.up, w, h, tt.w, tt.h)
			}
		})
	}
}

// TestFitLimitsProperties checks fitLimits on random regions and limits: the
// result is at least 1×1, within the limits, no larger than the region
// without up, keeps the aspect ratio up to rounding, and (for width and
// height limits) is within a pixel of the ideal scale.
func TestFitLimitsProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dim := func() int {
		if rng.IntN(4) == 0 {
			return 1 + rng.IntN(10)
		}
		return 1 + rng.IntN(20000)
	}
	for range 20000 {
		rw, rh := dim(), dim()
		var lim Limits
		if rng.IntN(2) == 0 {
			lim.MaxWidth = dim()
		}
		if rng.IntN(2) == 0 {
			lim.MaxHeight = dim()
		}
		if rng.IntN(3) == 0 {
			lim.MaxArea = int64(dim()) * int64(dim())
		}
		up := rng.IntN(2) == 0
		w, h := fitLimits(rw, rh, lim, up, 0)
		bad := func(why string) {
			t.Fatalf("fitLimits(%d, %d, %+v, %v) = %dx%d: %s", rw, rh, lim, up, w, h, why)
		}
		if w < 1 || h < 1 {
			bad("empty")
		}
		if !fits(int64(w), int64(h), lim) {
			bad("breaks the limits")
		}
		if !up && (w > rw || h > rh) {
			bad("upscales")
		}
		long, short, d, o := rw, rh, w, h
		if rh > rw {
			long, short, d, o = rh, rw, h, w
		}
		if o != max(1, int(scaleRound(short, d, long))) {
			bad("the short side is not the long side scaled")
		}
		// Without an area limit the scale reached is within a pixel of the
		// ideal one. (Rounding the short side lets a longer d "fit", but
		// that would distort: fitLimits does not go there.)
		if lim.MaxArea == 0 {
			s := math.Inf(1)
			if !up {
				s = 1
			}
			if lim.MaxWidth > 0 {
				s = min(s, float64(lim.MaxWidth)/float64(rw))
			}
			if lim.MaxHeight > 0 {
				s = min(s, float64(lim.MaxHeight)/float64(rh))
			}
			if !math.IsInf(s, 1) && float64(d) < min(math.Floor(float64(long)*s), MaxDimension)-1 {
				bad("smaller than the limits allow")
			}
		}
	}
}

func TestResolveAllocs(t *testing.T) {
	r := mustParse(t, V3, "1024,2048,512,512/256,/0/default.jpg")
	lim := Limits{MaxWidth: 4096, MaxHeight: 4096, MaxArea: 16 << 20}
	n := testing.AllocsPerRun(100, func() {
		if _, err := r.Resolve(img7001x5003, lim); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("Resolve allocates %v times, want 0", n)
	}
}

package rules

import (
	"errors"
	"strings"
	"testing"
	"unsafe"
)

// img builds the Request Parse should return for an image path.
func img(v Version, id string, g Region, s Size, r Rotation, q Quality, f Format) Request {
	return Request{Version: v, Kind: KindImage, ID: id, Region: g, Size: s, Rotation: r, Quality: q, Format: f}
}

var (
	rgFull   = Region{Kind: RegionFull}
	rgSquare = Region{Kind: RegionSquare}
	szMax    = Size{Kind: SizeMax}
	szUpMax  = Size{Kind: SizeMax, Upscale: true}
	rot0     = Rotation{}
)

func px(x, y, w, h float64) Region  { return Region{Kind: RegionPixels, X: x, Y: y, W: w, H: h} }
func pct(x, y, w, h float64) Region { return Region{Kind: RegionPercent, X: x, Y: y, W: w, H: h} }

func TestParseOK(t *testing.T) {
	tests := []struct {
		name string
		v    Version
		path string
		want Request
	}{
		// Shapes.
		{"v3 tile", V3, "some-id/1024,2048,512,512/256,/0/default.jpg",
			img(V3, "some-id", px(1024, 2048, 512, 512), Size{Kind: SizeWidth, W: 256}, rot0, QualityDefault, FormatJPG)},
		{"v2 tile", V2, "some-id/1024,2048,512,512/256,/0/default.jpg",
			img(V2, "some-id", px(1024, 2048, 512, 512), Size{Kind: SizeWidth, W: 256}, rot0, QualityDefault, FormatJPG)},
		{"v3 info", V3, "abc/info.json", Request{Version: V3, Kind: KindInfo, ID: "abc"}},
		{"v2 info", V2, "abc/info.json", Request{Version: V2, Kind: KindInfo, ID: "abc"}},
		{"v3 base", V3, "abc", Request{Version: V3, Kind: KindBase, ID: "abc"}},
		{"v3 base with slash", V3, "abc/", Request{Version: V3, Kind: KindBase, ID: "abc"}},
		{"v2 base", V2, "abc", Request{Version: V2, Kind: KindBase, ID: "abc"}},
		{"info.json alone is an identifier", V3, "info.json", Request{Version: V3, Kind: KindBase, ID: "info.json"}},

		// Identifiers.
		{"escaped slashes", V3, "ark%3A%2F1%2Fb/0,0,256,256/256,/!90/gray.png",
			img(V3, "ark:/1/b", px(0, 0, 256, 256), Size{Kind: SizeWidth, W: 256}, Rotation{Mirror: true, Degrees: 90}, QualityGray, FormatPNG)},
		{"a%2Fb is one identifier", V3, "a%2Fb/info.json", Request{Version: V3, Kind: KindInfo, ID: "a/b"}},
		{"lower-case hex", V2, "a%2fb/info.json", Request{Version: V2, Kind: KindInfo, ID: "a/b"}},
		{"escaped UTF-8", V3, "%E2%9C%93/info.json", Request{Version: V3, Kind: KindInfo, ID: "✓"}},
		{"raw UTF-8", V3, "✓/info.json", Request{Version: V3, Kind: KindInfo, ID: "✓"}},
		{"escaped percent", V3, "100%25/info.json", Request{Version: V3, Kind: KindInfo, ID: "100%"}},
		{"plus stays plus", V3, "a+b/info.json", Request{Version: V3, Kind: KindInfo, ID: "a+b"}},
		{"escaped base", V2, "a%2Fb/", Request{Version: V2, Kind: KindBase, ID: "a/b"}},
		{"urn with commas and colons", V3, "urn:foo:a123,456/full/max/0/default.jpg",
			img(V3, "urn:foo:a123,456", rgFull, szMax, rot0, QualityDefault, FormatJPG)},

		// Regions.
		{"v3 square", V3, "a/square/max/0/default.jpg", img(V3, "a", rgSquare, szMax, rot0, QualityDefault, FormatJPG)},
		{"v2 square", V2, "a/square/max/0/default.jpg", img(V2, "a", rgSquare, szMax, rot0, QualityDefault, FormatJPG)},
		{"pct region", V3, "a/pct:41.6,7.5,40,70/max/0/default.jpg",
			img(V3, "a", pct(41.6, 7.5, 40, 70), szMax, rot0, QualityDefault, FormatJPG)},
		{"pct region whole", V2, "a/pct:0,0,100,100/full/0/default.jpg",
			img(V2, "a", pct(0, 0, 100, 100), szMax, rot0, QualityDefault, FormatJPG)},
		{"pct region past the edge", V3, "a/pct:41.6,7.5,66.6,100/max/0/default.jpg",
			img(V3, "a", pct(41.6, 7.5, 66.6, 100), szMax, rot0, QualityDefault, FormatJPG)},
		{"pct region tiny", V3, "a/pct:0.5,.5,0.001,5./max/0/default.jpg",
			img(V3, "a", pct(0.5, 0.5, 0.001, 5), szMax, rot0, QualityDefault, FormatJPG)},
		{"pixel region leading zeros", V3, "a/007,0,1,1/max/0/default.jpg",
			img(V3, "a", px(7, 0, 1, 1), szMax, rot0, QualityDefault, FormatJPG)},
		{"pixel region at the limit", V3, "a/0,0,1073741824,1/max/0/default.jpg",
			img(V3, "a", px(0, 0, MaxDimension, 1), szMax, rot0, QualityDefault, FormatJPG)},
		{"escaped commas", V3, "a/0%2C0%2C10%2C10/max/0/default.jpg",
			img(V3, "a", px(0, 0, 10, 10), szMax, rot0, QualityDefault, FormatJPG)},

		// 3.0 sizes.
		{"v3 ^max", V3, "a/full/^max/0/default.jpg", img(V3, "a", rgFull, szUpMax, rot0, QualityDefault, FormatJPG)},
		{"v3 ^max escaped", V3, "a/full/%5Emax/0/default.jpg", img(V3, "a", rgFull, szUpMax, rot0, QualityDefault, FormatJPG)},
		{"v3 w,", V3, "a/full/150,/0/default.jpg", img(V3, "a", rgFull, Size{Kind: SizeWidth, W: 150}, rot0, QualityDefault, FormatJPG)},
		{"v3 ^w,", V3, "a/full/^360,/0/default.jpg", img(V3, "a", rgFull, Size{Kind: SizeWidth, W: 360, Upscale: true}, rot0, QualityDefault, FormatJPG)},
		{"v3 ,h", V3, "a/full/,150/0/default.jpg", img(V3, "a", rgFull, Size{Kind: SizeHeight, H: 150}, rot0, QualityDefault, FormatJPG)},
		{"v3 ^,h", V3, "a/full/^,240/0/default.jpg", img(V3, "a", rgFull, Size{Kind: SizeHeight, H: 240, Upscale: true}, rot0, QualityDefault, FormatJPG)},
		{"v3 pct:n", V3, "a/full/pct:50/0/default.jpg", img(V3, "a", rgFull, Size{Kind: SizePct, Pct: 50}, rot0, QualityDefault, FormatJPG)},
		{"v3 pct:100", V3, "a/full/pct:100/0/default.jpg", img(V3, "a", rgFull, Size{Kind: SizePct, Pct: 100}, rot0, QualityDefault, FormatJPG)},
		{"v3 ^pct:n", V3, "a/full/^pct:120.5/0/default.jpg", img(V3, "a", rgFull, Size{Kind: SizePct, Pct: 120.5, Upscale: true}, rot0, QualityDefault, FormatJPG)},
		{"v3 w,h", V3, "a/full/225,100/0/default.jpg", img(V3, "a", rgFull, Size{Kind: SizeExact, W: 225, H: 100}, rot0, QualityDefault, FormatJPG)},
		{"v3 ^w,h", V3, "a/full/^360,360/0/default.jpg", img(V3, "a", rgFull, Size{Kind: SizeExact, W: 360, H: 360, Upscale: true}, rot0, QualityDefault, FormatJPG)},
		{"v3 !w,h", V3, "a/full/!225,100/0/default.jpg", img(V3, "a", rgFull, Size{Kind: SizeBestFit, W: 225, H: 100}, rot0, QualityDefault, FormatJPG)},
		{"v3 ^!w,h", V3, "a/full/^!360,360/0/default.jpg", img(V3, "a", rgFull, Size{Kind: SizeBestFit, W: 360, H: 360, Upscale: true}, rot0, QualityDefault, FormatJPG)},

		// 2.1 sizes.
		{"v2 full", V2, "a/full/full/0/default.jpg", img(V2, "a", rgFull, szMax, rot0, QualityDefault, FormatJPG)},
		{"v2 max", V2, "a/full/max/0/default.jpg", img(V2, "a", rgFull, szMax, rot0, QualityDefault, FormatJPG)},
		{"v2 w,", V2, "a/full/150,/0/default.jpg", img(V2, "a", rgFull, Size{Kind: SizeWidth, W: 150}, rot0, QualityDefault, FormatJPG)},
		{"v2 ,h", V2, "a/full/,150/0/default.jpg", img(V2, "a", rgFull, Size{Kind: SizeHeight, H: 150}, rot0, QualityDefault, FormatJPG)},
		{"v2 pct over 100", V2, "a/full/pct:150/0/default.jpg", img(V2, "a", rgFull, Size{Kind: SizePct, Pct: 150}, rot0, QualityDefault, FormatJPG)},
		{"v2 w,h", V2, "a/full/225,100/0/default.jpg", img(V2, "a", rgFull, Size{Kind: SizeExact, W: 225, H: 100}, rot0, QualityDefault, FormatJPG)},
		{"v2 !w,h", V2, "a/full/!225,100/0/default.jpg", img(V2, "a", rgFull, Size{Kind: SizeBestFit, W: 225, H: 100}, rot0, QualityDefault, FormatJPG)},

		// Rotations.
		{"rotation 360", V3, "a/full/max/360/default.jpg", img(V3, "a", rgFull, szMax, Rotation{Degrees: 360}, QualityDefault, FormatJPG)},
		{"rotation mirror 0", V3, "a/full/max/!0/default.jpg", img(V3, "a", rgFull, szMax, Rotation{Mirror: true}, QualityDefault, FormatJPG)},
		{"rotation decimal", V2, "a/full/max/22.5/default.png", img(V2, "a", rgFull, szMax, Rotation{Degrees: 22.5}, QualityDefault, FormatPNG)},
		{"rotation trailing zeros", V3, "a/full/max/!22.500/default.png", img(V3, "a", rgFull, szMax, Rotation{Mirror: true, Degrees: 22.5}, QualityDefault, FormatPNG)},
		{"rotation no leading zero", V3, "a/full/max/.5/default.jpg", img(V3, "a", rgFull, szMax, Rotation{Degrees: 0.5}, QualityDefault, FormatJPG)},
		{"rotation trailing dot", V3, "a/full/max/90./default.jpg", img(V3, "a", rgFull, szMax, Rotation{Degrees: 90}, QualityDefault, FormatJPG)},
		{"rotation many digits", V3, "a/full/max/12.3456789012345678901234/default.jpg",
			img(V3, "a", rgFull, szMax, Rotation{Degrees: 12.3456789012345678901234}, QualityDefault, FormatJPG)},
		{"rotation escaped mirror", V3, "a/full/max/%2190/default.jpg", img(V3, "a", rgFull, szMax, Rotation{Mirror: true, Degrees: 90}, QualityDefault, FormatJPG)},

		// Qualities and formats.
		{"color webp", V3, "a/full/max/0/color.webp", img(V3, "a", rgFull, szMax, rot0, QualityColor, FormatWebP)},
		{"gray gif", V2, "a/full/max/0/gray.gif", img(V2, "a", rgFull, szMax, rot0, QualityGray, FormatGIF)},
		{"bitonal tif", V3, "a/full/max/0/bitonal.tif", img(V3, "a", rgFull, szMax, rot0, QualityBitonal, FormatTIF)},
		{"v2 color png", V2, "a/full/max/0/color.png", img(V2, "a", rgFull, szMax, rot0, QualityColor, FormatPNG)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.v, tt.path)
			if err != nil {
				t.Fatalf("Parse(%v, %q): %v", tt.v, tt.path, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%v, %q)\n got %+v\nwant %+v", tt.v, tt.path, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const slash = `; a "/" inside an identifier must be sent as %2F`
	const shape = `expected {identifier}/{region}/{size}/{rotation}/{quality}.{format}, {identifier}/info.json or {identifier}, but the path has `
	const regionForms = `expected "full", "square", "x,y,w,h" or "pct:x,y,w,h"`
	const sizes3 = `expected "max", "w,", ",h", "pct:n", "w,h" or "!w,h", each optionally prefixed with "^" to allow upscaling`
	const sizes2 = `expected "full", "max", "w,", ",h", "pct:n", "w,h" or "!w,h"`
	const rotation = `expected degrees from 0 to 360 written with digits and an optional "." (e.g. "90" or "22.5"), optionally after "!" to mirror`
	const qualities = `expected "default", "color", "gray" or "bitonal"`
	const formats = `expected "jpg", "png", "webp", "gif" or "tif"`
	tests := []struct {
		name string
		v    Version
		path string
		want string
	}{
		// Version and shape.
		{"unknown version", Version(4), "abc", `path "abc": unsupported IIIF Image API version 4; expected 2.1 or 3.0`},
		{"three segments", V3, "a/b/c", `path "a/b/c": ` + shape + "3 segments" + slash},
		{"four segments", V3, "abc/full/max/0", `path "abc/full/max/0": ` + shape + "4 segments" + slash},
		{"unescaped slash in id", V3, "ark:/1/b/full/max/0/default.jpg",
			`path "ark:/1/b/full/max/0/default.jpg": ` + shape + "7 segments" + slash},
		{"two segments not info.json", V2, "a/b",
			`path "a/b": expected {identifier}/info.json (or {identifier}/{region}/{size}/{rotation}/{quality}.{format})` + slash},
		{"trailing slash after info.json", V3, "a/info.json/", `path "a/info.json/": ` + shape + "3 segments" + slash},
		{"double slash", V3, "a//", `path "a//": ` + shape + "3 segments" + slash},

		// Identifiers.
		{"empty path", V3, "", `identifier "": identifier is empty`},
		{"leading slash", V3, "/info.json", `identifier "": identifier is empty`},
		{"only a slash", V2, "/", `identifier "": identifier is empty`},
		{"empty id in image path", V3, "/full/max/0/default.jpg", `identifier "": identifier is empty`},
		{"malformed escape", V3, "a%zz/info.json",
			`identifier "a%zz": malformed percent-escape "%zz": expected "%" followed by two hex digits, e.g. %2F for "/"`},
		{"truncated escape", V3, "a%2/info.json",
			`identifier "a%2": malformed percent-escape "%2": expected "%" followed by two hex digits, e.g. %2F for "/"`},
		{"lone percent", V2, "a%", `identifier "a%": malformed percent-escape "%": expected "%" followed by two hex digits, e.g. %2F for "/"`},
		{"escaped NUL", V3, "a%00b/info.json", `identifier "a%00b": identifier must not contain a NUL byte (%00)`},
		{"raw NUL", V3, "a\x00b/info.json", `identifier "a\x00b": identifier must not contain a NUL byte (%00)`},
		{"escaped non-UTF-8", V3, "%ff/info.json", `identifier "%ff": identifier must be UTF-8 once percent-decoded`},
		{"raw non-UTF-8", V2, "\xff", `identifier "\xff": identifier must be UTF-8 once percent-decoded`},

		// Regions.
		{"empty region", V3, "a//max/0/default.jpg", `region "": ` + regionForms},
		{"three numbers", V3, "a/0,0,256/max/0/default.jpg", `region "0,0,256": ` + regionForms},
		{"five numbers", V3, "a/0,0,1,1,1/max/0/default.jpg", `region "0,0,1,1,1": ` + regionForms},
		{"capitalised keyword", V3, "a/Full/max/0/default.jpg", `region "Full": ` + regionForms},
		{"zero width", V3, "a/0,0,0,10/max/0/default.jpg", `region "0,0,0,10": width must be > 0`},
		{"zero height", V2, "a/0,0,10,0/full/0/default.jpg", `region "0,0,10,0": height must be > 0`},
		{"negative x", V3, "a/-1,0,10,10/max/0/default.jpg", `region "-1,0,10,10": x must be a whole number of pixels, not "-1"`},
		{"decimal y", V3, "a/0,1.5,10,10/max/0/default.jpg", `region "0,1.5,10,10": y must be a whole number of pixels, not "1.5"`},
		{"empty width", V3, "a/0,0,,10/max/0/default.jpg", `region "0,0,,10": width must be a whole number of pixels, not ""`},
		{"huge x", V3, "a/1073741825,0,1,1/max/0/default.jpg", `region "1073741825,0,1,1": x 1073741825 is too large (the limit is 1073741824)`},
		{"escaped region", V3, "a/0%2C0%2C0%2C1/max/0/default.jpg", `region "0,0,0,1": width must be > 0`},
		{"malformed escape in region", V3, "a/0%2X0/max/0/default.jpg",
			`region "0%2X0": malformed percent-escape "%2X": expected "%" followed by two hex digits, e.g. %2F for "/"`},
		{"pct x over 100", V3, "a/pct:101,0,1,1/max/0/default.jpg", `region "pct:101,0,1,1": x must be between 0 and 100`},
		{"pct y over 100", V2, "a/pct:0,100.5,1,1/full/0/default.jpg", `region "pct:0,100.5,1,1": y must be between 0 and 100`},
		{"pct zero width", V3, "a/pct:0,0,0,1/max/0/default.jpg", `region "pct:0,0,0,1": width must be > 0`},
		{"pct zero height", V3, "a/pct:0,0,1,0.0/max/0/default.jpg", `region "pct:0,0,1,0.0": height must be > 0`},
		{"pct negative", V3, "a/pct:-1,0,1,1/max/0/default.jpg",
			`region "pct:-1,0,1,1": x must be a percentage written with digits and an optional ".", not "-1"`},
		{"pct exponent", V3, "a/pct:0,0,1e2,1/max/0/default.jpg",
			`region "pct:0,0,1e2,1": width must be a percentage written with digits and an optional ".", not "1e2"`},
		{"pct two dots", V3, "a/pct:0,0,1.2.3,1/max/0/default.jpg",
			`region "pct:0,0,1.2.3,1": width must be a percentage written with digits and an optional ".", not "1.2.3"`},
		{"pct only a dot", V3, "a/pct:0,0,.,1/max/0/default.jpg",
			`region "pct:0,0,.,1": width must be a percentage written with digits and an optional ".", not "."`},
		{"pct alone", V3, "a/pct:/max/0/default.jpg", `region "pct:": ` + regionForms},
		{"pct overflow", V3, "a/pct:0,0,1" + repeat('9', 400) + ",1/max/0/default.jpg",
			`region "pct:0,0,1` + repeat('9', 400) + `,1": width 1` + repeat('9', 400) + ` is too large`},

		// 3.0 sizes.
		{"v3 full", V3, "a/full/full/0/default.jpg", `size "full": "full" is not a IIIF 3.0 size; use "max"`},
		{"v3 ^full", V3, "a/full/^full/0/default.jpg", `size "^full": "full" is not a IIIF 3.0 size; use "^max"`},
		{"zero width", V3, "a/full/0,/0/default.jpg", `size "0,": width must be > 0`},
		{"zero height", V3, "a/full/,0/0/default.jpg", `size ",0": height must be > 0`},
		{"zero width of w,h", V3, "a/full/0,10/0/default.jpg", `size "0,10": width must be > 0`},
		{"zero height of !w,h", V3, "a/full/!10,0/0/default.jpg", `size "!10,0": height must be > 0`},
		{"comma alone", V3, "a/full/,/0/default.jpg", `size ",": ` + sizes3},
		{"empty size", V3, "a/full//0/default.jpg", `size "": ` + sizes3},
		{"caret alone", V3, "a/full/^/0/default.jpg", `size "^": ` + sizes3},
		{"double caret", V3, "a/full/^^max/0/default.jpg", `size "^^max": ` + sizes3},
		{"bang then caret", V3, "a/full/!^10,10/0/default.jpg", `size "!^10,10": width must be a whole number of pixels, not "^10"`},
		{"three numbers", V3, "a/full/10,10,10/0/default.jpg", `size "10,10,10": ` + sizes3},
		{"word", V3, "a/full/big/0/default.jpg", `size "big": ` + sizes3},
		{"!w, without h", V3, "a/full/!10,/0/default.jpg", `size "!10,": "!w,h" needs both a width and a height`},
		{"!,h without w", V3, "a/full/!,10/0/default.jpg", `size "!,10": "!w,h" needs both a width and a height`},
		{"decimal width", V3, "a/full/1.5,/0/default.jpg", `size "1.5,": width must be a whole number of pixels, not "1.5"`},
		{"negative height", V3, "a/full/,-5/0/default.jpg", `size ",-5": height must be a whole number of pixels, not "-5"`},
		{"huge width", V3, "a/full/^2000000000,/0/default.jpg", `size "^2000000000,": width 2000000000 is too large (the limit is 1073741824)`},
		{"pct zero", V3, "a/full/pct:0/0/default.jpg", `size "pct:0": the percentage must be > 0`},
		{"pct empty", V3, "a/full/pct:/0/default.jpg", `size "pct:": expected "pct:n" with n a percentage written with digits and an optional "."`},
		{"pct negative", V3, "a/full/pct:-5/0/default.jpg", `size "pct:-5": expected "pct:n" with n a percentage written with digits and an optional "."`},
		{"pct over 100", V3, "a/full/pct:120/0/default.jpg",
			`size "pct:120": the percentage must be <= 100 unless the size starts with "^" (send "^pct:120" to upscale)`},
		{"pct just over 100", V3, "a/full/pct:100.001/0/default.jpg",
			`size "pct:100.001": the percentage must be <= 100 unless the size starts with "^" (send "^pct:100.001" to upscale)`},

		// 2.1 sizes.
		{"v2 ^max", V2, "a/full/^max/0/default.jpg", `size "^max": the "^" prefix is IIIF 3.0 syntax; IIIF 2.1 upscales without it, so send "max"`},
		{"v2 ^w,", V2, "a/full/^360,/0/default.jpg", `size "^360,": the "^" prefix is IIIF 3.0 syntax; IIIF 2.1 upscales without it, so send "360,"`},
		{"v2 escaped ^pct", V2, "a/full/%5Epct:120/0/default.jpg",
			`size "^pct:120": the "^" prefix is IIIF 3.0 syntax; IIIF 2.1 upscales without it, so send "pct:120"`},
		{"v2 word", V2, "a/full/biggest/0/default.jpg", `size "biggest": ` + sizes2},
		{"v2 zero width", V2, "a/full/0,/0/default.jpg", `size "0,": width must be > 0`},

		// Rotations.
		{"negative", V3, "a/full/max/-90/default.jpg", `rotation "-90": ` + rotation},
		{"plus sign", V3, "a/full/max/+90/default.jpg", `rotation "+90": ` + rotation},
		{"over 360", V3, "a/full/max/361/default.jpg", `rotation "361": degrees must be between 0 and 360`},
		{"just over 360", V2, "a/full/max/!360.0001/default.jpg", `rotation "!360.0001": degrees must be between 0 and 360`},
		{"exponent", V3, "a/full/max/1e2/default.jpg", `rotation "1e2": ` + rotation},
		{"empty", V3, "a/full/max//default.jpg", `rotation "": ` + rotation},
		{"bang alone", V3, "a/full/max/!/default.jpg", `rotation "!": ` + rotation},
		{"double bang", V3, "a/full/max/!!90/default.jpg", `rotation "!!90": ` + rotation},
		{"unit", V3, "a/full/max/90deg/default.jpg", `rotation "90deg": ` + rotation},
		{"two dots", V3, "a/full/max/1.2.3/default.jpg", `rotation "1.2.3": ` + rotation},
		{"dot", V3, "a/full/max/./default.jpg", `rotation ".": ` + rotation},
		{"overflow", V3, "a/full/max/9" + repeat('9', 400) + "/default.jpg", `rotation "9` + repeat('9', 400) + `": degrees must be between 0 and 360`},

		// Qualities and formats.
		{"grey", V3, "a/full/max/0/grey.jpg", `quality "grey": ` + qualities + `; the spelling is "gray"`},
		{"native", V2, "a/full/max/0/native.jpg", `quality "native": ` + qualities + `; "native" is IIIF 1.x, use "default"`},
		{"capitalised quality", V3, "a/full/max/0/Default.jpg", `quality "Default": ` + qualities},
		{"empty quality", V3, "a/full/max/0/.jpg", `quality "": ` + qualities},
		{"no extension", V3, "a/full/max/0/default", `format "default": expected {quality}.{format}, e.g. "default.jpg"`},
		{"jpeg", V3, "a/full/max/0/default.jpeg", `format "jpeg": ` + formats + `; the extension is "jpg"`},
		{"tiff", V2, "a/full/max/0/default.tiff", `format "tiff": ` + formats + `; the extension is "tif"`},
		{"jp2", V3, "a/full/max/0/default.jp2", `format "jp2": "jp2" is not supported by this server; ` + formats},
		{"pdf", V2, "a/full/max/0/default.pdf", `format "pdf": "pdf" is not supported by this server; ` + formats},
		{"upper-case extension", V3, "a/full/max/0/default.JPG", `format "JPG": ` + formats},
		{"empty extension", V3, "a/full/max/0/default.", `format "": ` + formats},
		{"two extensions", V3, "a/full/max/0/default.jpg.png", `quality "default.jpg": ` + qualities},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.v, tt.path)
			if err == nil {
				t.Fatalf("Parse(%v, %q) = %+v, want error %s", tt.v, tt.path, got, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse(%v, %q) error %T is not an *Error", tt.v, tt.path, err)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse(%v, %q) error\n got %s\nwant %s", tt.v, tt.path, err, tt.want)
			}
			if got != (Request{}) {
				t.Errorf("Parse(%v, %q) returned %+v with its error, want the zero Request", tt.v, tt.path, got)
			}
		})
	}
}

func repeat(c byte, n int) string { return strings.Repeat(string(c), n) }

func TestErrorFormat(t *testing.T) {
	e := &Error{Segment: "size", Value: "0,", Reason: "width must be > 0"}
	if got, want := e.Error(), `size "0,": width must be > 0`; got != want {
		t.Errorf("Error() = %s, want %s", got, want)
	}
}

// TestParseIDAliasesInput documents the ownership rule on Request.ID: without
// escapes the identifier shares the input's bytes; with escapes it is a copy.
func TestParseIDAliasesInput(t *testing.T) {
	path := "abc/full/max/0/default.jpg"
	r, err := Parse(V3, path)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "abc" || unsafe.StringData(r.ID) != unsafe.StringData(path) {
		t.Errorf("ID %q does not alias the input", r.ID)
	}
	path = "a%2Fb/full/max/0/default.jpg"
	if r, err = Parse(V3, path); err != nil {
		t.Fatal(err)
	}
	if r.ID != "a/b" || unsafe.StringData(r.ID) == unsafe.StringData(path) {
		t.Errorf("ID %q aliases the input", r.ID)
	}
}

func TestParseAllocs(t *testing.T) {
	for _, tc := range []struct {
		v    Version
		path string
	}{
		{V3, "some-id/1024,2048,512,512/256,/0/default.jpg"},
		{V2, "some-id/1024,2048,512,512/256,/0/default.jpg"},
		{V3, "some-id/full/^!512,512/!22.5/gray.png"},
		{V3, "some-id/pct:10.5,20,30,40/pct:50/0/default.webp"},
		{V3, "some-id/info.json"},
		{V2, "some-id"},
	} {
		n := testing.AllocsPerRun(100, func() {
			if _, err := Parse(tc.v, tc.path); err != nil {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Errorf("Parse(%v, %q) allocates %v times, want 0", tc.v, tc.path, n)
		}
	}
}

func TestVersionString(t *testing.T) {
	for v, want := range map[Version]string{V2: "2.1", V3: "3.0", 0: "unknown", 4: "unknown"} {
		if got := v.String(); got != want {
			t.Errorf("Version(%d).String() = %q, want %q", v, got, want)
		}
	}
}

func TestQualityString(t *testing.T) {
	for q, want := range map[Quality]string{
		QualityDefault: "default", QualityColor: "color", QualityGray: "gray", QualityBitonal: "bitonal", 9: "unknown",
	} {
		if got := q.String(); got != want {
			t.Errorf("Quality(%d).String() = %q, want %q", q, got, want)
		}
	}
}

func TestFormatExtMIME(t *testing.T) {
	for f, want := range map[Format][2]string{
		FormatJPG:  {"jpg", "image/jpeg"},
		FormatPNG:  {"png", "image/png"},
		FormatWebP: {"webp", "image/webp"},
		FormatGIF:  {"gif", "image/gif"},
		FormatTIF:  {"tif", "image/tiff"},
		9:          {"", "application/octet-stream"},
	} {
		if got := f.Ext(); got != want[0] {
			t.Errorf("Format(%d).Ext() = %q, want %q", f, got, want[0])
		}
		if got := f.MIME(); got != want[1] {
			t.Errorf("Format(%d).MIME() = %q, want %q", f, got, want[1])
		}
	}
}

// TestEveryFormatAndQualityParses ties the helpers to the grammar: each
// extension Ext returns parses back to its Format, each String to its Quality.
func TestEveryFormatAndQualityParses(t *testing.T) {
	for f := FormatJPG; f <= FormatTIF; f++ {
		for q := QualityDefault; q <= QualityBitonal; q++ {
			for _, v := range []Version{V2, V3} {
				r, err := Parse(v, "a/full/max/0/"+q.String()+"."+f.Ext())
				if err != nil {
					t.Fatal(err)
				}
				if r.Format != f || r.Quality != q {
					t.Errorf("%v %s.%s parsed as quality %v format %v", v, q, f.Ext(), r.Quality, r.Format)
				}
			}
		}
	}
}

func TestAppendEscapedID(t *testing.T) {
	tests := []struct{ id, want string }{
		{"abc", "abc"},
		{"ark:/12025/654xz321", "ark:%2F12025%2F654xz321"},
		{"urn:foo:a123,456", "urn:foo:a123,456"},
		{"http://example.com/?54#a", "http:%2F%2Fexample.com%2F%3F54%23a"},
		{"100%", "100%25"},
		{"a b", "a%20b"},
		{"✓", "%E2%9C%93"},
		{"[x]@y", "%5Bx%5D%40y"},
		{".", "%2E"},
		{"..", "%2E%2E"},
		{"a.b", "a.b"},
	}
	for _, tt := range tests {
		got := string(AppendEscapedID(nil, tt.id))
		if got != tt.want {
			t.Errorf("AppendEscapedID(%q) = %q, want %q", tt.id, got, tt.want)
		}
		r, err := Parse(V3, got+"/info.json")
		if err != nil {
			t.Errorf("Parse(%q): %v", got+"/info.json", err)
		} else if r.ID != tt.id {
			t.Errorf("Parse(%q).ID = %q, want %q", got+"/info.json", r.ID, tt.id)
		}
	}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = AppendEscapedID(buf[:0], "ark:/12025/654xz321") }); n != 0 {
		t.Errorf("AppendEscapedID allocates %v times, want 0", n)
	}
}

package rules

import (
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	img := ImageInfo{Width: 6000, Height: 4000}
	custom := Classifier{TileMaxSize: 512, TileFormats: []Format{FormatJPG, FormatWebP},
		ThumbnailMaxSize: 300, ThumbnailFormats: []Format{FormatJPG}}
	tests := []struct {
		name string
		c    Classifier
		v    Version
		path string
		want Tier
	}{
		{"tile", Classifier{}, V3, "x/0,0,512,512/256,/0/default.jpg", TierTile},
		{"tile color quality", Classifier{}, V3, "x/512,0,512,512/512,512/0/color.jpg", TierTile},
		{"tile at the size limit", Classifier{}, V3, "x/0,0,2048,2048/1024,/0/default.jpg", TierTile},
		{"tile by percent", Classifier{}, V2, "x/pct:0,0,10,10/300,/0/default.jpg", TierTile},
		{"v2 tile", Classifier{}, V2, "x/0,0,1024,1024/256,/0/default.jpg", TierTile},
		{"tile too big", Classifier{}, V3, "x/0,0,2048,2048/1025,/0/default.jpg", TierOther},
		{"tile rotated", Classifier{}, V3, "x/0,0,512,512/256,/90/default.jpg", TierOther},
		{"tile mirrored", Classifier{}, V3, "x/0,0,512,512/256,/!0/default.jpg", TierOther},
		{"tile gray", Classifier{}, V3, "x/0,0,512,512/256,/0/gray.jpg", TierOther},
		{"tile png", Classifier{}, V3, "x/0,0,512,512/256,/0/default.png", TierOther},
		{"pixel region covering the image is a thumbnail", Classifier{}, V3, "x/0,0,6000,4000/600,/0/default.jpg", TierThumbnail},
		{"thumbnail", Classifier{}, V3, "x/full/400,/0/default.jpg", TierThumbnail},
		{"square thumbnail png", Classifier{}, V3, "x/square/200,200/0/default.png", TierThumbnail},
		{"thumbnail rotated", Classifier{}, V3, "x/full/400,/90/default.webp", TierThumbnail},
		{"thumbnail at the limit", Classifier{}, V3, "x/full/1000,/0/default.jpg", TierThumbnail},
		{"thumbnail too big", Classifier{}, V3, "x/full/1001,/0/default.jpg", TierOther},
		{"thumbnail as tif", Classifier{}, V3, "x/full/400,/0/default.tif", TierOther},
		{"full max", Classifier{}, V3, "x/full/max/0/default.jpg", TierOther},
		{"custom tile limit", custom, V3, "x/0,0,1024,1024/600,/0/default.jpg", TierOther},
		{"custom tile format", custom, V3, "x/0,0,1024,1024/256,/0/default.webp", TierTile},
		{"custom thumbnail limit", custom, V3, "x/full/301,/0/default.jpg", TierOther},
		{"custom thumbnail format", custom, V3, "x/full/300,/0/default.png", TierOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := Parse(tt.v, tt.path)
			if err != nil {
				t.Fatal(err)
			}
			res, err := req.Resolve(img, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.c.Classify(req, res); got != tt.want {
				t.Errorf("Classify(%s) = %s, want %s", tt.path, got, tt.want)
			}
			if got, why := tt.c.Explain(req, res); got != tt.want || !strings.HasPrefix(why, tt.want.String()+": ") {
				t.Errorf("Explain(%s) = %s, %q; want %s", tt.path, got, why, tt.want)
			}
		})
	}
	info, _ := Parse(V3, "x/info.json")
	if got := (Classifier{}).Classify(info, Resolved{}); got != TierInfo {
		t.Errorf("info.json classified %s", got)
	}
	for tier := range NumTiers {
		if back, ok := ParseTier(tier.String()); !ok || back != tier {
			t.Errorf("ParseTier(%s) = %v, %v", tier, back, ok)
		}
	}
	for _, ext := range []string{"jpg", "png", "webp", "gif", "tif"} {
		if f, ok := ParseFormat(ext); !ok || f.Ext() != ext {
			t.Errorf("ParseFormat(%s) = %v %v", ext, f, ok)
		}
	}
	if _, ok := ParseFormat("bmp"); ok {
		t.Error("ParseFormat(bmp) succeeded")
	}
}

// TestExplainSaysWhy: the explanation names the rule applied and every
// condition of the earlier rules that failed, with the settings in force.
func TestExplainSaysWhy(t *testing.T) {
	img := ImageInfo{Width: 6000, Height: 4000}
	for _, tc := range []struct{ path, want string }{
		{"x/0,0,512,512/256,/0/default.jpg",
			"tile: a pixel region of part of the image, 256×256 within TileMaxSize 1024, unrotated, default quality, jpg in TileFormats"},
		{"x/full/400,/90/default.png",
			"thumbnail: the whole image or its square, 400×267 within ThumbnailMaxSize 1000, png in ThumbnailFormats; " +
				"not a tile (not a pixel region of part of the image; rotated 90; png is not in jpg)"},
		{"x/full/1024,/0/default.jpg",
			"other: not a tile (not a pixel region of part of the image); not a thumbnail (1024×683 is over ThumbnailMaxSize 1000)"},
		{"x/0,0,512,512/256,/!0/gray.tif",
			"other: not a tile (rotated !0; gray quality; tif is not in jpg); " +
				"not a thumbnail (not the whole image or its square; tif is not in jpg, png, webp)"},
	} {
		req, err := Parse(V3, tc.path)
		if err != nil {
			t.Fatal(err)
		}
		res, err := req.Resolve(img, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if _, got := (Classifier{}).Explain(req, res); got != tc.want {
			t.Errorf("Explain(%s) =\n  %s\nwant\n  %s", tc.path, got, tc.want)
		}
	}
}

package rules

import (
	"strings"
	"testing"
)

func TestAppendNormalised(t *testing.T) {
	f := func(v Version, path, want string) {
		t.Helper()
		req, err := Parse(v, "id/"+path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if got := string(req.AppendNormalised(nil)); got != want {
			t.Errorf("%s %s: %q, want %q", v, path, got, want)
		}
		// The normalised form is a request of its own, normalised to itself.
		again, err := Parse(v, "id/"+want)
		if err != nil {
			t.Fatalf("%s: normalised form %q does not parse: %v", path, want, err)
		}
		if got := string(again.AppendNormalised(nil)); got != want {
			t.Errorf("%s: %q normalises to %q", path, want, got)
		}
	}
	f(V3, "full/max/0/default.jpg", "full/max/0/default.jpg")
	f(V2, "full/full/0/default.jpg", "full/max/0/default.jpg")
	f(V2, "full/max/360/default.jpg", "full/max/0/default.jpg")
	f(V3, "square/^200,/!90.50/gray.png", "square/^200,/!90.5/gray.png")
	f(V3, "pct:10.0,0,50.50,100/pct:50/0/color.webp", "pct:10,0,50.5,100/pct:50/0/color.webp")
	f(V2, "0,0,512,512/256,/0/default.jpg", "0,0,512,512/256,/0/default.jpg")
	f(V2, "full/!300,300/0/bitonal.gif", "full/!300,300/0/bitonal.gif")
	f(V3, "full/,300/0/default.tif", "full/,300/0/default.tif")
}

func TestBoundClassifiesWithoutTheSize(t *testing.T) {
	var c Classifier
	f := func(path string, lim Limits, tier Tier, w, h int) {
		t.Helper()
		req, err := Parse(V3, "id/"+path)
		if err != nil {
			t.Fatal(err)
		}
		res, err := req.Bound(lim)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if got := c.Classify(req, res); got != tier || res.Width != w || res.Height != h {
			t.Errorf("%s: %s %d×%d, want %s %d×%d", path, got, res.Width, res.Height, tier, w, h)
		}
	}
	u := unknownSide
	f("0,0,512,512/256,/0/default.jpg", Limits{}, TierTile, 256, 256)
	f("0,0,512,256/256,/0/default.jpg", Limits{}, TierTile, 256, 128)
	f("0,0,512,512/max/0/default.jpg", Limits{}, TierTile, 512, 512)
	f("0,0,4000,4000/max/0/default.jpg", Limits{}, TierOther, 4000, 4000)
	f("full/200,/0/default.jpg", Limits{}, TierThumbnail, 200, 200)
	f("square/,150/0/default.png", Limits{}, TierThumbnail, 150, 150)
	f("full/!300,300/0/default.jpg", Limits{}, TierThumbnail, 300, 300)
	f("full/max/0/default.jpg", Limits{}, TierOther, u, u)
	f("full/pct:10/0/default.jpg", Limits{}, TierOther, u, u)
	f("full/200,/90/default.jpg", Limits{}, TierThumbnail, 200, 200)

	bad := func(path string, lim Limits, want string) {
		t.Helper()
		req, err := Parse(V3, "id/"+path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := req.Bound(lim); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %q", path, err, want)
		}
	}
	bad("0,0,100,100/200,/0/default.jpg", Limits{}, "size")
	bad("full/3000,10/0/default.jpg", Limits{MaxWidth: 2000}, "wider")
	bad("full/3000,/0/default.jpg", Limits{MaxWidth: 2000}, "wider")
	bad("square/,3000/0/default.jpg", Limits{MaxHeight: 2000}, "taller")
	bad("full/100,100/0/default.jpg", Limits{MaxArea: 5000}, "area")
}

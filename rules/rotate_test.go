package rules

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// The default limits of the command (RAIS's ImageMaxArea and friends).
var defaultLimits = Limits{MaxArea: 104857600, MaxWidth: 20480, MaxHeight: 20480}

// TestRotatedOutputsStayWithinTheLimits: the limits bound the image sent, so
// "max" shrinks until the rotated box fits, and an explicit size whose
// rotated box does not fit is a 400 naming the size and the rotation.
func TestRotatedOutputsStayWithinTheLimits(t *testing.T) {
	scan := ImageInfo{Width: 20480, Height: 11520}
	tests := []struct {
		name, path string
		lim        Limits
		w, h       int    // the output before rotation; 0 for an error
		err        string // a part of the error
	}{
		// As found: this was 15085×15085, 2.2 × the area limit.
		// The box of a 45° turn is (w+h)/√2 square: 10240² is the area limit.
		{"max at 45°", "full/max/45/default.tif", defaultLimits, 9268, 5213, ""},
		{"^max at 45°", "full/^max/45/default.png", defaultLimits, 9268, 5213, ""},
		{"max at 0° is the plain limit", "full/max/0/default.tif", defaultLimits, 13653, 7680, ""},
		{"max at 90° swaps the bounds", "full/max/90/default.jpg", Limits{MaxWidth: 4000, MaxHeight: 8000}, 7111, 4000, ""},
		{"max at 180° is as at 0°", "full/max/180/default.jpg", Limits{MaxWidth: 4000}, 4000, 2250, ""},
		// w·cos 30° + h·sin 30° <= 5000
		{"!w,h at 30°", "full/!20000,20000/30/default.jpg", Limits{MaxWidth: 5000}, 4358, 2451, ""},
		{"explicit size fits unrotated, not at 45°", "full/10000,/45/default.jpg", defaultLimits, 0, 0,
			`size "10000,": rotated by 45°, the output would be 11049×11049 pixels, more than the server's maximum area of 104857600 pixels`},
		{"explicit size at 90° against a width limit", "full/,8000/!90/default.jpg", Limits{MaxWidth: 4000}, 0, 0,
			`size ",8000": rotated by 90°, the output would be 8000×14222 pixels, wider than the server's maximum width of 4000`},
		{"explicit size at 90° that fits only unrotated", "full/,3000/90/default.jpg", Limits{MaxHeight: 4000}, 0, 0,
			`size ",3000": rotated by 90°, the output would be 3000×5333 pixels, taller than the server's maximum height of 4000`},
		{"explicit size at 270° that fits only rotated", "full/,3000/270/default.jpg", Limits{MaxWidth: 4000}, 5333, 3000, ""},
		{"nothing fits a 1-pixel limit at 45°", "0,0,1,1/max/45/default.jpg", Limits{MaxWidth: 1}, 0, 0,
			`size "max": rotated by 45°, the output would be 2×2 pixels, wider than the server's maximum width of 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := mustParse(t, V3, tt.path).Resolve(scan, tt.lim)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Resolve(%s) = %+v, %v; want an error with %q", tt.path, res, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%s): %v", tt.path, err)
			}
			if res.Width != tt.w || res.Height != tt.h {
				t.Errorf("Resolve(%s) = %d×%d, want %d×%d", tt.path, res.Width, res.Height, tt.w, tt.h)
			}
			bw, bh := rotatedBox(int64(res.Width), int64(res.Height), res.Rotation.Degrees)
			if !fits(bw, bh, tt.lim) {
				t.Errorf("rotated output %d×%d breaks %+v", bw, bh, tt.lim)
			}
		})
	}
}

// TestFitLimitsRotatedProperties: for random regions, limits and angles the
// rotated box of fitLimits' result is within the limits (whenever a 1×1
// output fits at all), and without up it never upscales.
func TestFitLimitsRotatedProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	dim := func() int { return 1 + rng.IntN(20000) }
	for range 20000 {
		rw, rh := dim(), dim()
		lim := Limits{MaxWidth: dim(), MaxHeight: dim()}
		if rng.IntN(2) == 0 {
			lim.MaxArea = int64(dim()) * int64(dim())
		}
		deg := []float64{0, 90, 180, 270, 45, 22.5, 0.001, 359.9}[rng.IntN(8)]
		if rng.IntN(2) == 0 {
			deg = rng.Float64() * 360
		}
		up := rng.IntN(2) == 0
		w, h := fitLimits(rw, rh, lim, up, deg)
		if bw, bh := rotatedBox(1, 1, deg); !fits(bw, bh, lim) {
			continue
		}
		bw, bh := rotatedBox(int64(w), int64(h), deg)
		if !fits(bw, bh, lim) {
			t.Fatalf("fitLimits(%d, %d, %+v, %v, %v) = %d×%d, rotated %d×%d: breaks the limits", rw, rh, lim, up, deg, w, h, bw, bh)
		}
		if !up && (w > rw || h > rh) {
			t.Fatalf("fitLimits(%d, %d, %+v, %v, %v) = %d×%d upscales", rw, rh, lim, up, deg, w, h)
		}
	}
}

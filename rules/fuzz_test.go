package rules

import (
	"errors"
	"testing"
)

// fuzzImages and fuzzLimits are what FuzzParse resolves against: an odd-sized
// image larger than the limits, and a tiny one where rounding reaches zero.
var (
	fuzzImages = []ImageInfo{{Width: 7001, Height: 5003}, {Width: 3, Height: 2}}
	fuzzLimits = []Limits{{}, {MaxWidth: 5000, MaxHeight: 4500, MaxArea: 16_000_000}}
)

// FuzzParse checks, for any path under either version (even vb: 2.1, odd:
// 3.0), that Parse never panics and fails only with an *Error, that a parsed
// identifier survives AppendEscapedID, and that whenever a request resolves
// its output is at least 1×1, within the limits, and its canonical form is a
// fixed point: parsed and resolved again it gives the same Resolved, the same
// canonical form and the same key.
func FuzzParse(f *testing.F) {
	f.Add(uint8(3), "some-id/1024,2048,512,512/256,/0/default.jpg")
	f.Add(uint8(2), "some-id/1024,2048,512,512/256,/0/default.jpg")
	f.Fuzz(func(t *testing.T, vb uint8, path string) {
		v := V3
		if vb%2 == 0 {
			v = V2
		}
		r, err := Parse(v, path)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse(%v, %q) error %T is not an *Error", v, path, err)
			}
			if r != (Request{}) {
				t.Fatalf("Parse(%v, %q) returned %+v with an error", v, path, r)
			}
			return
		}
		if r.Version != v || r.ID == "" {
			t.Fatalf("Parse(%v, %q) = %+v", v, path, r)
		}
		id := string(AppendEscapedID(nil, r.ID))
		back, err := Parse(v, id+"/info.json")
		if err != nil || back.ID != r.ID {
			t.Fatalf("identifier %q escaped as %q parses back as %q, %v", r.ID, id, back.ID, err)
		}
		if r.Kind != KindImage {
			return
		}
		checkNormalised(t, r, id)
		for _, info := range fuzzImages {
			for _, lim := range fuzzLimits {
				checkResolve(t, r, id, info, lim)
			}
		}
	})
}

func checkResolve(t *testing.T, r Request, escapedID string, info ImageInfo, lim Limits) {
	res, err := r.Resolve(info, lim)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Resolve(%+v) error %T is not an *Error", r, err)
		}
		return
	}
	g := res.Region
	if g.W < 1 || g.H < 1 || g.X < 0 || g.Y < 0 || g.X+g.W > info.Width || g.Y+g.H > info.Height {
		t.Fatalf("%+v on %+v: region %+v is not inside the image", r, info, g)
	}
	if res.Full != (g == Rect{0, 0, info.Width, info.Height}) {
		t.Fatalf("%+v on %+v: Full is %v for %+v", r, info, res.Full, g)
	}
	if res.Width < 1 || res.Height < 1 {
		t.Fatalf("%+v on %+v: output %dx%d", r, info, res.Width, res.Height)
	}
	// The limits bound the image sent: the output once rotated.
	if bw, bh := rotatedBox(int64(res.Width), int64(res.Height), res.Rotation.Degrees); !fits(bw, bh, lim) {
		t.Fatalf("%+v on %+v: output %dx%d, rotated %dx%d, breaks %+v", r, info, res.Width, res.Height, bw, bh, lim)
	}
	if res.Upscaled != (res.Width > g.W || res.Height > g.H) {
		t.Fatalf("%+v on %+v: Upscaled is %v for %dx%d from %+v", r, info, res.Upscaled, res.Width, res.Height, g)
	}
	if r.Version == V3 && !r.Size.Upscale && res.Upscaled {
		t.Fatalf("%+v on %+v: 3.0 upscaled to %dx%d without ^", r, info, res.Width, res.Height)
	}

	canonical := res.Canonical()
	key := string(res.AppendKey(nil))
	r2, err := Parse(r.Version, escapedID+"/"+canonical)
	if err != nil {
		t.Fatalf("%+v on %+v: canonical %q does not parse: %v", r, info, canonical, err)
	}
	res2, err := r2.Resolve(info, lim)
	if err != nil {
		t.Fatalf("%+v on %+v: canonical %q does not resolve: %v", r, info, canonical, err)
	}
	if res2 != res {
		t.Fatalf("%+v on %+v: canonical %q resolves to\n%+v\nnot\n%+v", r, info, canonical, res2, res)
	}
	if c2 := res2.Canonical(); c2 != canonical {
		t.Fatalf("%+v on %+v: canonical %q becomes %q", r, info, canonical, c2)
	}
	if k2 := string(res2.AppendKey(nil)); k2 != key {
		t.Fatalf("%+v on %+v: key %q becomes %q", r, info, key, k2)
	}
}

// TestCanonicalFixedPoint runs FuzzParse's resolve checks over a grid of
// every region and size form, both versions, odd images and limits, so the
// properties hold in every `go test` run and not only while fuzzing.
func TestCanonicalFixedPoint(t *testing.T) {
	regions := []string{"full", "square", "pct:10,20,30,40", "pct:99.9,0,5,5", "pct:0,0,100,100",
		"100,50,300,200", "0,0,1,1", "6990,5000,100,100", "0,0,3,1000"}
	sizes := []string{"max", "^max", "full", "1,", "^1,", ",1", "100,", "^100,", ",100", "^9000,", "pct:1",
		"pct:33.3", "^pct:250", "7,5", "^9000,10", "!100,100", "^!100,100", "!9000,9000", "^!9000,9000", ",500"}
	images := []ImageInfo{{7001, 5003}, {5003, 7001}, {3, 2}, {1, 1}, {1, 7001}}
	limits := []Limits{{}, {MaxWidth: 500}, {MaxHeight: 500}, {MaxArea: 250_000}, {MaxWidth: 5000, MaxHeight: 4500, MaxArea: 16_000_000}}
	resolved := 0
	for _, v := range []Version{V2, V3} {
		for _, g := range regions {
			for _, s := range sizes {
				r, err := Parse(v, "id/"+g+"/"+s+"/!22.5/default.jpg")
				if err != nil {
					continue // "full" in 3.0, "^" in 2.1
				}
				for _, info := range images {
					for _, lim := range limits {
						checkResolve(t, r, "id", info, lim)
						if _, err := r.Resolve(info, lim); err == nil {
							resolved++
						}
					}
				}
			}
		}
	}
	if resolved < 3000 {
		t.Errorf("only %d grid requests resolved: the grid no longer tests much", resolved)
	}
}

// checkNormalised: the normalised form parses, in the request's version, to
// a request with the same normalised form, and Bound fails only with an
// *Error, its known output sides at least 1.
func checkNormalised(t *testing.T, r Request, escapedID string) {
	n := string(r.AppendNormalised(nil))
	again, err := Parse(r.Version, escapedID+"/"+n)
	if err != nil {
		t.Fatalf("%+v: normalised form %q does not parse: %v", r, n, err)
	}
	if m := string(again.AppendNormalised(nil)); m != n {
		t.Fatalf("%+v: normalised form %q normalises to %q", r, n, m)
	}
	for _, lim := range fuzzLimits {
		res, err := r.Bound(lim)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Bound(%+v) error %T is not an *Error", r, err)
			}
			continue
		}
		if res.Width < 1 || res.Height < 1 {
			t.Fatalf("Bound(%+v) = %dx%d", r, res.Width, res.Height)
		}
	}
}

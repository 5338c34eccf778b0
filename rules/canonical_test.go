package rules

import (
	"testing"
)

// resolve parses "id/"+path under v and resolves it, or fails the test.
func resolve(t testing.TB, v Version, path string, info ImageInfo, lim Limits) Resolved {
	t.Helper()
	res, err := mustParse(t, v, path).Resolve(info, lim)
	if err != nil {
		t.Fatalf("%v %s: %v", v, path, err)
	}
	return res
}

func TestCanonical(t *testing.T) {
	tests := []struct {
		name      string
		v         Version
		path      string
		info      ImageInfo
		lim       Limits
		canonical string
		key       string
	}{
		// 3.0 (§4.8).
		{"v3 full max", V3, "full/max/0/default.jpg", img6000x4000, noLimits,
			"full/max/0/default.jpg", "0,0,6000,4000/6000,4000/0/color.jpg"},
		{"v3 package doc example", V3, "0,0,512,512/256,/0/default.jpg", img6000x4000, noLimits,
			"0,0,512,512/256,256/0/default.jpg", "0,0,512,512/256,256/0/color.jpg"},
		{"v3 tile", V3, "1024,2048,512,512/256,/0/default.jpg", img6000x4000, noLimits,
			"1024,2048,512,512/256,256/0/default.jpg", "1024,2048,512,512/256,256/0/color.jpg"},
		{"v3 cropped region", V3, "5000,3000,2000,2000/500,/0/default.jpg", img6000x4000, noLimits,
			"5000,3000,1000,1000/500,500/0/default.jpg", "5000,3000,1000,1000/500,500/0/color.jpg"},
		{"v3 cropped region at max", V3, "5000,3000,2000,2000/max/0/default.jpg", img6000x4000, noLimits,
			"5000,3000,1000,1000/max/0/default.jpg", "5000,3000,1000,1000/1000,1000/0/color.jpg"},
		{"v3 square", V3, "square/max/0/default.jpg", img6000x4000, noLimits,
			"1000,0,4000,4000/max/0/default.jpg", "1000,0,4000,4000/4000,4000/0/color.jpg"},
		{"v3 pct region", V3, "pct:41.6,7.5,40,70/max/0/default.jpg", img300x200, noLimits,
			"125,15,120,140/max/0/default.jpg", "125,15,120,140/120,140/0/color.jpg"},
		{"v3 max under a limit", V3, "full/max/0/default.jpg", img6000x4000, Limits{MaxWidth: 5000},
			"full/max/0/default.jpg", "0,0,6000,4000/5000,3333/0/color.jpg"},
		{"v3 ^max upscaled", V3, "full/^max/0/default.jpg", img300x200, Limits{MaxWidth: 360},
			"full/^max/0/default.jpg", "0,0,300,200/360,240/0/color.jpg"},
		{"v3 ^w, upscaled", V3, "full/^9000,/0/default.jpg", img6000x4000, noLimits,
			"full/^9000,6000/0/default.jpg", "0,0,6000,4000/9000,6000/0/color.jpg"},
		{"v3 ^w,h upscaling one side", V3, "full/^400,100/0/default.jpg", img300x200, noLimits,
			"full/^400,100/0/default.jpg", "0,0,300,200/400,100/0/color.jpg"},
		{"v3 distorted", V3, "full/225,100/0/default.jpg", img300x200, noLimits,
			"full/225,100/0/default.jpg", "0,0,300,200/225,100/0/color.jpg"},
		{"v3 best fit", V3, "full/!225,100/0/default.jpg", img300x200, noLimits,
			"full/150,100/0/default.jpg", "0,0,300,200/150,100/0/color.jpg"},
		{"v3 pct size", V3, "full/pct:25/0/default.jpg", img7001x5003, noLimits,
			"full/1750,1251/0/default.jpg", "0,0,7001,5003/1750,1251/0/color.jpg"},
		{"v3 rotation trailing zeros", V3, "full/max/!22.500/gray.png", img300x200, noLimits,
			"full/max/!22.5/gray.png", "0,0,300,200/300,200/!22.5/gray.png"},
		{"v3 rotation 90.0", V3, "full/max/90.0/bitonal.tif", img300x200, noLimits,
			"full/max/90/bitonal.tif", "0,0,300,200/300,200/90/bitonal.tif"},
		{"v3 rotation below 1", V3, "full/max/.5/color.webp", img300x200, noLimits,
			"full/max/0.5/color.webp", "0,0,300,200/300,200/0.5/color.webp"},
		{"v3 rotation 360", V3, "full/max/360/default.gif", img300x200, noLimits,
			"full/max/0/default.gif", "0,0,300,200/300,200/0/color.gif"},
		{"v3 rotation !360", V3, "full/max/!360/default.jpg", img300x200, noLimits,
			"full/max/!0/default.jpg", "0,0,300,200/300,200/!0/color.jpg"},

		// 2.1 (§4.7).
		{"v2 full full", V2, "full/full/0/default.jpg", img6000x4000, noLimits,
			"full/full/0/default.jpg", "0,0,6000,4000/6000,4000/0/color.jpg"},
		{"v2 max without limits is full", V2, "full/max/0/default.jpg", img6000x4000, noLimits,
			"full/full/0/default.jpg", "0,0,6000,4000/6000,4000/0/color.jpg"},
		{"v2 max under a limit is w,", V2, "full/max/0/default.jpg", img6000x4000, Limits{MaxWidth: 5000},
			"full/5000,/0/default.jpg", "0,0,6000,4000/5000,3333/0/color.jpg"},
		{"v2 tile", V2, "1024,2048,512,512/256,/0/default.jpg", img6000x4000, noLimits,
			"1024,2048,512,512/256,/0/default.jpg", "1024,2048,512,512/256,256/0/color.jpg"},
		{"v2 ,h", V2, "full/,2000/0/default.jpg", img6000x4000, noLimits,
			"full/3000,/0/default.jpg", "0,0,6000,4000/3000,2000/0/color.jpg"},
		{"v2 pct", V2, "full/pct:50/0/default.jpg", img6000x4000, noLimits,
			"full/3000,/0/default.jpg", "0,0,6000,4000/3000,2000/0/color.jpg"},
		{"v2 best fit", V2, "full/!3000,3000/0/default.jpg", img6000x4000, noLimits,
			"full/3000,/0/default.jpg", "0,0,6000,4000/3000,2000/0/color.jpg"},
		{"v2 distorted", V2, "full/225,100/0/default.jpg", img300x200, noLimits,
			"full/225,100/0/default.jpg", "0,0,300,200/225,100/0/color.jpg"},
		{"v2 aspect-keeping w,h", V2, "full/150,100/0/default.jpg", img300x200, noLimits,
			"full/150,/0/default.jpg", "0,0,300,200/150,100/0/color.jpg"},
		{"v2 upscaled", V2, "full/9000,/0/default.jpg", img6000x4000, noLimits,
			"full/9000,/0/default.jpg", "0,0,6000,4000/9000,6000/0/color.jpg"},
		// ,500 of a 3×1000 region gives width 2, and "2," would give height
		// 667: the canonical form has to spell out both.
		{"v2 ,h that w, cannot reproduce", V2, "0,0,3,1000/,500/0/default.jpg", img6000x4000, noLimits,
			"0,0,3,1000/2,500/0/default.jpg", "0,0,3,1000/2,500/0/color.jpg"},
		{"v2 square of a square image", V2, "square/full/0/default.jpg", ImageInfo{5000, 5000}, noLimits,
			"full/full/0/default.jpg", "0,0,5000,5000/5000,5000/0/color.jpg"},
		{"v2 square", V2, "square/full/0/default.jpg", ImageInfo{4000, 6000}, noLimits,
			"0,1000,4000,4000/full/0/default.jpg", "0,1000,4000,4000/4000,4000/0/color.jpg"},
		{"v2 rotation", V2, "full/full/!0022.50/gray.png", img300x200, noLimits,
			"full/full/!22.5/gray.png", "0,0,300,200/300,200/!22.5/gray.png"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := resolve(t, tt.v, tt.path, tt.info, tt.lim)
			if got := res.Canonical(); got != tt.canonical {
				t.Errorf("Canonical() = %q, want %q", got, tt.canonical)
			}
			if got := string(res.AppendCanonical([]byte("id/"))); got != "id/"+tt.canonical {
				t.Errorf("AppendCanonical(\"id/\") = %q, want %q", got, "id/"+tt.canonical)
			}
			if got := string(res.AppendKey(nil)); got != tt.key {
				t.Errorf("AppendKey() = %q, want %q", got, tt.key)
			}
			// The canonical form is itself a request for the same image.
			again := resolve(t, tt.v, tt.canonical, tt.info, tt.lim)
			if again != res {
				t.Errorf("canonical %q resolves to\n%+v\nnot\n%+v", tt.canonical, again, res)
			}
		})
	}
}

// TestCanonicalEquivalents lists spellings of one request: each group must
// share one canonical form and one key.
func TestCanonicalEquivalents(t *testing.T) {
	tests := []struct {
		name  string
		v     Version
		info  ImageInfo
		lim   Limits
		paths []string
	}{
		{"v3 whole image", V3, img7001x5003, noLimits, []string{
			"full/max/0/default.jpg",
			"pct:0,0,100,100/max/0/default.jpg",
			"0,0,7001,5003/max/0/default.jpg",
			"0,0,9999,9999/max/0/default.jpg",
			"full/^max/0/default.jpg", // no limits: nothing to upscale to
			"full/7001,/0/default.jpg",
			"full/,5003/0/default.jpg",
			"full/7001,5003/0/default.jpg",
			"full/^7001,5003/0/default.jpg",
			"full/pct:100/0/default.jpg",
			"full/!8000,8000/0/default.jpg", // 3.0 !w,h stops at the region
			"full/max/360/default.jpg",
			"full/max/0.0/default.jpg",
		}},
		{"v3 max under limits", V3, img7001x5003, Limits{MaxWidth: 4000}, []string{
			"full/max/0/default.jpg",
			"full/^max/0/default.jpg", // limits below the region: no upscaling
			"full/4000,/0/default.jpg",
			"full/!4000,4000/0/default.jpg",
			"full/!9000,9000/0/default.jpg",
			"pct:0,0,100,100/max/0/default.jpg",
		}},
		{"v3 !w,h and w, coincide", V3, img7001x5003, noLimits, []string{
			"full/!700,700/0/default.jpg",
			"full/700,/0/default.jpg",
			"full/,500/0/default.jpg",
			"full/700,500/0/default.jpg",
			"full/^700,500/0/default.jpg",
			"pct:0,0,100,100/700,/0/default.jpg",
		}},
		{"v3 ^max and ^w,h at the limit", V3, img300x200, Limits{MaxWidth: 360}, []string{
			"full/^max/0/default.jpg",
			"full/^360,/0/default.jpg",
			"full/^360,240/0/default.jpg",
			"full/^!360,1000/0/default.jpg",
			"full/^pct:120/0/default.jpg",
		}},
		{"v3 tile", V3, img6000x4000, noLimits, []string{
			"1024,2048,512,512/256,/0/default.jpg",
			"1024,2048,512,512/,256/0/default.jpg",
			"1024,2048,512,512/pct:50/0/default.jpg",
			"1024,2048,512,512/!256,256/0/default.jpg",
			"1024,2048,512,512/256,256/0/default.jpg",
			"1024,2048,512,512/^256,256/0/default.jpg",
		}},
		{"v3 edge tile", V3, img6000x4000, noLimits, []string{
			"5632,3584,512,512/184,/0/default.jpg",
			"5632,3584,368,416/184,/0/default.jpg",
			"5632,3584,368,416/184,208/0/default.jpg",
			"5632,3584,368,416/pct:50/0/default.jpg",
		}},
		{"v2 whole image", V2, img7001x5003, noLimits, []string{
			"full/full/0/default.jpg",
			"full/max/0/default.jpg",
			"pct:0,0,100,100/full/0/default.jpg",
			"0,0,7001,5003/7001,/0/default.jpg",
			"0,0,7001,5003/7001,5003/0/default.jpg",
			"full/pct:100/0/default.jpg",
			"full/!7001,9000/0/default.jpg",
			"full/full/360/default.jpg",
		}},
		{"v2 full and max under limits", V2, img7001x5003, Limits{MaxWidth: 4000}, []string{
			"full/full/0/default.jpg",
			"full/max/0/default.jpg",
			"full/4000,/0/default.jpg",
			"full/!4000,4000/0/default.jpg",
		}},
		{"v2 !w,h and w, coincide", V2, img7001x5003, noLimits, []string{
			"full/!700,700/0/default.jpg",
			"full/700,/0/default.jpg",
			"full/,500/0/default.jpg",
			"full/700,500/0/default.jpg",
		}},
		{"v2 square of a square image", V2, ImageInfo{5000, 5000}, noLimits, []string{
			"square/full/0/default.jpg",
			"full/full/0/default.jpg",
			"full/5000,/0/default.jpg",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := resolve(t, tt.v, tt.paths[0], tt.info, tt.lim)
			wantC, wantK := first.Canonical(), string(first.AppendKey(nil))
			for _, p := range tt.paths[1:] {
				res := resolve(t, tt.v, p, tt.info, tt.lim)
				if got := res.Canonical(); got != wantC {
					t.Errorf("%s: canonical %q, want %q (from %s)", p, got, wantC, tt.paths[0])
				}
				if got := string(res.AppendKey(nil)); got != wantK {
					t.Errorf("%s: key %q, want %q (from %s)", p, got, wantK, tt.paths[0])
				}
			}
		})
	}
}

// TestKey: "color" and "default" share a key but not
// a canonical form, the same request under 2.1 and 3.0 shares a key, and
// anything that changes the pixels changes the key.
func TestKey(t *testing.T) {
	key := func(v Version, path string) string {
		return string(resolve(t, v, path, img6000x4000, noLimits).AppendKey(nil))
	}
	canon := func(v Version, path string) string {
		return resolve(t, v, path, img6000x4000, noLimits).Canonical()
	}
	if a, b := key(V3, "full/max/0/default.jpg"), key(V3, "full/max/0/color.jpg"); a != b {
		t.Errorf("default and color keys differ: %q, %q", a, b)
	}
	if a, b := canon(V3, "full/max/0/default.jpg"), canon(V3, "full/max/0/color.jpg"); a == b {
		t.Errorf("default and color share the canonical form %q", a)
	}
	if a, b := key(V2, "full/full/0/default.jpg"), key(V3, "full/max/0/default.jpg"); a != b {
		t.Errorf("2.1 full/full and 3.0 full/max keys differ: %q, %q", a, b)
	}
	if a, b := canon(V2, "full/full/0/default.jpg"), canon(V3, "full/max/0/default.jpg"); a == b {
		t.Errorf("2.1 and 3.0 share the canonical form %q", a)
	}
	if a, b := key(V2, "0,0,512,512/256,/0/default.jpg"), key(V3, "0,0,512,512/^256,256/0/color.jpg"); a != b {
		t.Errorf("2.1 and 3.0 tile keys differ: %q, %q", a, b)
	}
	base := key(V3, "0,0,512,512/256,/0/default.jpg")
	for _, p := range []string{
		"0,0,512,512/256,/0/gray.jpg",
		"0,0,512,512/256,/0/bitonal.jpg",
		"0,0,512,512/256,/0/default.png",
		"0,0,512,512/256,/!0/default.jpg",
		"0,0,512,512/256,/90/default.jpg",
		"0,0,512,512/256,255/0/default.jpg",
		"0,0,512,511/256,/0/default.jpg",
		"1,0,512,512/256,/0/default.jpg",
	} {
		if k := key(V3, p); k == base {
			t.Errorf("%s has the key of 0,0,512,512/256,/0/default.jpg: %q", p, k)
		}
	}
}

func TestCanonicalAllocs(t *testing.T) {
	for _, tc := range []struct {
		v    Version
		path string
		lim  Limits
	}{
		{V3, "1024,2048,512,512/256,/0/default.jpg", noLimits},
		{V2, "1024,2048,512,512/256,/0/default.jpg", noLimits},
		{V3, "full/^max/!22.5/gray.png", Limits{MaxWidth: 9000}},
		{V2, "full/225,100/359.999/bitonal.tif", noLimits},
	} {
		res := resolve(t, tc.v, tc.path, img6000x4000, tc.lim)
		buf := make([]byte, 0, 128)
		n := testing.AllocsPerRun(100, func() {
			buf = res.AppendCanonical(buf[:0])
			buf = res.AppendKey(buf)
		})
		if n != 0 {
			t.Errorf("%v %s: AppendCanonical and AppendKey allocate %v times, want 0", tc.v, tc.path, n)
		}
	}
	var total int
	n := testing.AllocsPerRun(100, func() {
		total += len(V3.String()) + len(QualityGray.String()) + len(FormatPNG.Ext()) + len(FormatPNG.MIME())
	})
	if n != 0 {
		t.Errorf("the String, Ext and MIME helpers allocate %v times, want 0", n)
	}
}

// TestCanonicalBuiltByHand covers a Resolved that did not come from Resolve:
// 360 degrees is still written as 0.
func TestCanonicalBuiltByHand(t *testing.T) {
	res := Resolved{
		Version: V3, Region: Rect{0, 0, 10, 10}, Full: true, Width: 10, Height: 10,
		Rotation: Rotation{Mirror: true, Degrees: 360}, Quality: QualityGray, Format: FormatPNG,
		MaxW: 10, MaxH: 10, UpMaxW: 10, UpMaxH: 10,
	}
	if got, want := res.Canonical(), "full/max/!0/gray.png"; got != want {
		t.Errorf("Canonical() = %q, want %q", got, want)
	}
	if got, want := string(res.AppendKey(nil)), "0,0,10,10/10,10/!0/gray.png"; got != want {
		t.Errorf("AppendKey() = %q, want %q", got, want)
	}
}

package workload

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/iiif-proxy/iiif-proxy/internal/iiif"
)

func img(id string, v iiif.Version, w, h int) iiif.Image {
	return iiif.Image{ID: id, Version: v, Width: w, Height: h,
		Tiles: []iiif.TileSpec{{Width: 256, Height: 256, ScaleFactors: []int{1, 2, 4}}}}
}

func next(t *testing.T, g Generator, n int) []Request {
	t.Helper()
	out := make([]Request, n)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

func TestViewerOpens(t *testing.T) {
	// A session opens with info.json, then every tile of the fitted view:
	// at 300 × 200 the 1000 × 700 image shows at scale 2, 2 × 2 tiles.
	for _, tc := range []struct {
		base  string
		v     iiif.Version
		sizes []string
	}{
		{"http://h/iiif/3", iiif.V3, []string{"256,256", "244,256", "256,94", "244,94"}},
		{"http://h/iiif/2", iiif.V2, []string{"256,", "244,", "256,", "244,"}},
	} {
		c := Corpus{Base: tc.base, Images: []iiif.Image{img("box 1/a.tif", tc.v, 1000, 700)}}
		g, err := Spec{Name: Viewer, Viewport: iiif.Viewport{Width: 300, Height: 200}}.New(c, 0)
		if err != nil {
			t.Fatal(err)
		}
		p := tc.base + "/box%201%2Fa.tif/"
		want := []Request{{p + "info.json", TierInfo}}
		for i, r := range []string{"0,0,512,512", "512,0,488,512", "0,512,512,188", "512,512,488,188"} {
			want = append(want, Request{p + r + "/" + tc.sizes[i] + "/0/default.jpg", TierTile})
		}
		if got := next(t, g, len(want)); !slices.Equal(got, want) {
			t.Errorf("%v:\ngot  %v\nwant %v", tc.v, got, want)
		}
	}
}

// pyramidURLs is every tile URL of im.
func pyramidURLs(im iiif.Image) map[string]bool {
	all := map[string]bool{}
	for _, l := range im.Levels() {
		for r := range l.Rows {
			for c := range l.Cols {
				all[im.TileURL(l, c, r)] = true
			}
		}
	}
	return all
}

func TestViewerWalk(t *testing.T) {
	ims := []iiif.Image{img("a", iiif.V3, 1000, 700), img("b", iiif.V3, 30000, 20000), img("c", iiif.V3, 300, 5000)}
	c := Corpus{Base: "http://h", Images: ims}
	s := Spec{Name: Viewer, Walk: 15, Seed: 7}.WithDefaults()
	g, err := s.New(c, 3)
	if err != nil {
		t.Fatal(err)
	}
	v := g.(*viewer)
	valid := map[string]map[string]bool{}
	for i, im := range ims {
		valid[c.Prefix(i)] = pyramidURLs(im)
	}
	sessions, seen := 0, map[string]bool{}
	zooms := map[float64]bool{}
	for range 20000 {
		r := v.Next()
		prefix, rest, _ := strings.Cut(strings.TrimPrefix(r.URL, "http://h/"), "/")
		prefix = "http://h/" + prefix + "/"
		if rest == "info.json" {
			sessions++
			clear(seen)
			continue
		}
		if !valid[prefix][rest] {
			t.Fatalf("%s is not a tile of the pyramid", r.URL)
		}
		if seen[r.URL] {
			t.Fatalf("%s requested twice in one session", r.URL)
		}
		seen[r.URL] = true
		if v.view.Zoom < v.fit*(1-1e-9) || v.view.Zoom > math.Max(v.fit, MaxZoom)*(1+1e-9) {
			t.Fatalf("zoom %v outside [%v, %v]", v.view.Zoom, v.fit, MaxZoom)
		}
		zooms[math.Round(v.view.Zoom*1e6)] = true
	}
	if sessions < 10 || len(zooms) < 5 {
		t.Errorf("%d sessions and %d distinct zooms in 20000 requests: the walk hardly moves", sessions, len(zooms))
	}
	// Deterministic per (seed, user); users differ.
	a, _ := s.New(c, 1)
	b, _ := s.New(c, 1)
	d, _ := s.New(c, 2)
	ra, rb, rd := next(t, a, 500), next(t, b, 500), next(t, d, 500)
	if !slices.Equal(ra, rb) {
		t.Error("same seed and user gave different streams")
	}
	if slices.Equal(ra, rd) {
		t.Error("two users gave the same stream")
	}
}

func TestThumbsPages(t *testing.T) {
	var ims []iiif.Image
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		ims = append(ims, img(id, iiif.V2, 4000, 3000))
	}
	g, err := Spec{Name: Thumbs, PageSize: 2, ThumbWidth: 150}.New(Corpus{Base: "http://h", Images: ims}, 0)
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]bool{}
	for range 100 {
		p := next(t, g, 2)
		if !strings.HasSuffix(p[0].URL, "/full/150,/0/default.jpg") || p[0].Tier != TierThumbnail {
			t.Fatalf("thumbnail URL %v", p[0])
		}
		pages[p[0].URL[9:10]+p[1].URL[9:10]] = true
	}
	// Pages of two over five images: ab, cd, and e followed by a (wrapping).
	if !pages["ab"] || !pages["cd"] || !pages["ea"] || len(pages) != 3 {
		t.Errorf("pages %v, want ab, cd, ea", pages)
	}
}

func TestZipfSkew(t *testing.T) {
	for _, s := range []float64{0, 0.8, 1, 1.5} {
		z := NewZipf(100, s)
		rng := rand.New(rand.NewPCG(1, 2))
		var counts [100]int
		const n = 200000
		for range n {
			counts[z.Rank(rng)]++
		}
		// P(k) ∝ 1/k^s: rank 1 over rank 2 is 2^s, rank 1 over rank 10 is 10^s.
		for _, k := range []int{2, 10} {
			want := math.Pow(float64(k), s)
			got := float64(counts[0]) / float64(counts[k-1])
			if math.Abs(got-want)/want > 0.1 {
				t.Errorf("s=%v: rank 1 / rank %d = %.2f, want %.2f", s, k, got, want)
			}
		}
		h := 0.0
		for k := 1; k <= 100; k++ {
			h += 1 / math.Pow(float64(k), s)
		}
		if got, want := float64(counts[0])/n, 1/h; math.Abs(got-want) > 0.1*want {
			t.Errorf("s=%v: P(rank 1) = %.4f, want %.4f", s, got, want)
		}
	}
}

func TestMixWeightsAndSkew(t *testing.T) {
	var ims []iiif.Image
	for i := range 50 {
		ims = append(ims, img(string(rune('A'+i)), iiif.V3, 5000, 4000))
	}
	c := Corpus{Base: "http://h", Images: ims}
	s := Spec{Name: Mix, Skew: 1, Weights: Weights{Tile: 60, Thumbnail: 30, Info: 10}, Seed: 3}
	const n = 60000
	tiers := map[string]int{}
	byImage := map[string]int{}
	for u := range 3 {
		g, err := s.New(c, u)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range next(t, g, n/3) {
			tiers[r.Tier]++
			if r.Tier != TierTile {
				byImage[r.URL[len("http://h/"):len("http://h/")+1]]++
			}
		}
	}
	for tier, w := range map[string]float64{TierTile: 0.6, TierThumbnail: 0.3, TierInfo: 0.1} {
		if got := float64(tiers[tier]) / n; math.Abs(got-w) > 0.02 {
			t.Errorf("%s share %.3f, want %.2f", tier, got, w)
		}
	}
	// Thumbnails and info follow the popularity order shared by all users:
	// the top image gets 1/H(50) ≈ 22% of them, the 2nd half of that.
	counts := slices.Sorted(func(yield func(int) bool) {
		for _, v := range byImage {
			if !yield(v) {
				return
			}
		}
	})
	slices.Reverse(counts)
	other := tiers[TierThumbnail] + tiers[TierInfo]
	if top := float64(counts[0]) / float64(other); top < 0.18 || top > 0.27 {
		t.Errorf("top image share %.3f, want about 0.22", top)
	}
	if r := float64(counts[0]) / float64(counts[1]); r < 1.6 || r > 2.5 {
		t.Errorf("top / second = %.2f, want about 2", r)
	}
}

func TestStampedeURL(t *testing.T) {
	c := Corpus{Base: "http://h", Images: []iiif.Image{img("a", iiif.V3, 4000, 300), img("b", iiif.V2, 600, 600)}}
	for _, tc := range []struct {
		s    Spot
		want string
	}{
		{Spot{0, 0, 0}, "http://h/a/0,0,512,300/256,150/0/default.jpg"},
		{Spot{0, 0.5, 0.99}, "http://h/a/1744,0,512,300/256,150/0/default.jpg"},
		{Spot{1, 0.999, 0.5}, "http://h/b/88,44,512,512/256,/0/default.jpg"},
	} {
		if got := c.StampedeURL(tc.s).URL; got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.s, got, tc.want)
		}
	}
}

func TestParseWeights(t *testing.T) {
	w, err := ParseWeights("tile=1, info=2")
	if err != nil || w != (Weights{Tile: 1, Info: 2}) {
		t.Errorf("ParseWeights = %v, %v", w, err)
	}
	for _, bad := range []string{"", "tile=0", "tile=-1", "tiles=1", "tile"} {
		if _, err := ParseWeights(bad); err == nil {
			t.Errorf("ParseWeights(%q) succeeded", bad)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	err := Spec{Name: "nope", Skew: -1}.Validate()
	if err == nil {
		t.Fatal("bad spec validated")
	}
	for _, want := range []string{"workload", "viewport", "walk", "skew", "weights"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := (Spec{Name: Viewer}).New(Corpus{}, 0); err == nil {
		t.Error("empty corpus accepted")
	}
}

func TestPopularDivesToPointsOfInterest(t *testing.T) {
	full := func(id string, w, h int) iiif.Image {
		return iiif.Image{ID: id, Version: iiif.V3, Width: w, Height: h,
			Tiles: []iiif.TileSpec{{Width: 256, Height: 256, ScaleFactors: []int{1, 2, 4, 8, 16, 32, 64, 128}}}}
	}
	ims := []iiif.Image{full("a", 20000, 15000), full("b", 12000, 9000), full("c", 8000, 8000)}
	c := Corpus{Base: "http://h", Images: ims}
	s := Spec{Walk: 10, Skew: 1, Seed: 5}
	g, err := s.NewPopular(c, 0, Popular{Points: 4})
	if err != nil {
		t.Fatal(err)
	}
	v := g.(*viewer)
	sessions := map[string]int{}
	goals := map[iiif.View]int{}
	reached := 0
	// goalTile is the URL of the tile at the centre of the session's point
	// of interest, at the level a viewer draws its zoom with.
	goalTile := ""
	seen := map[string]bool{}
	for range 200000 {
		r := v.Next()
		if !strings.HasSuffix(r.URL, "/info.json") {
			seen[r.URL] = true
			continue
		}
		if seen[goalTile] {
			reached++
		}
		clear(seen)
		sessions[r.URL]++
		goals[v.goal]++
		lv := v.im.Levels()
		l := lv[iiif.LevelFor(lv, v.goal.Zoom)]
		goalTile = r.URL[:len(r.URL)-len("info.json")] + v.im.TileURL(l,
			int(v.goal.X)/(l.TileWidth*l.Scale), int(v.goal.Y)/(l.TileHeight*l.Scale))
	}
	if seen[goalTile] {
		reached++
	}
	n := 0
	for _, k := range sessions {
		n += k
	}
	if n < 1000 || reached < n-1 { // the last session may not have got there

		t.Fatalf("%d sessions, %d reached their point of interest", n, reached)
	}
	// Zipf(1) over 3 images: 6/11 of sessions on the top one; over 4 points
	// 12/25 of the sessions on an image go to its top point.
	top := slices.Max(slices.Collect(func(yield func(int) bool) {
		for _, k := range sessions {
			yield(k)
		}
	}))
	if share := float64(top) / float64(n); math.Abs(share-6.0/11) > 0.05 {
		t.Errorf("top image share %.3f, want %.3f", share, 6.0/11)
	}
	if len(goals) > 12 {
		t.Errorf("%d distinct goals, want at most 3 images × 4 points", len(goals))
	}
	topGoal := slices.Max(slices.Collect(func(yield func(int) bool) {
		for _, k := range goals {
			yield(k)
		}
	}))
	if share, want := float64(topGoal)/float64(n), 6.0/11*12/25; math.Abs(share-want) > 0.05 {
		t.Errorf("top point share %.3f, want %.3f", share, want)
	}
	// Users share the popularity order and the points, not the stream.
	g2, _ := s.NewPopular(c, 1, Popular{Points: 4})
	g3, _ := s.NewPopular(c, 1, Popular{Points: 4})
	a, b := next(t, g2, 300), next(t, g3, 300)
	if !slices.Equal(a, b) {
		t.Error("same seed and user gave different streams")
	}
	if v2 := g2.(*viewer); v2.dive(0) == (Point{}) {
		t.Error("no point of interest")
	}
}

package trace

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/bench/harness/workload"
	"github.com/iiif-proxy/iiif-proxy/internal/iiif"
)

func images() []iiif.Image {
	sf := []int{1, 2, 4, 8, 16, 32}
	return []iiif.Image{
		{ID: "a", Version: iiif.V3, Width: 6000, Height: 4000, Tiles: []iiif.TileSpec{{Width: 256, Height: 256, ScaleFactors: sf}}},
		{ID: "box 1/b.tif", Version: iiif.V3, Width: 3000, Height: 5000, Tiles: []iiif.TileSpec{{Width: 256, Height: 256, ScaleFactors: sf}}},
		{ID: "c", Version: iiif.V2, Width: 2000, Height: 2000, Tiles: []iiif.TileSpec{{Width: 512, Height: 512, ScaleFactors: sf[:3]}}},
	}
}

// allTiles is every tile path of ims, as the trace names them.
func allTiles(ims []iiif.Image) map[string]bool {
	c := workload.Corpus{Images: ims}
	out := map[string]bool{}
	for i, im := range ims {
		for _, l := range im.Levels() {
			for r := range l.Rows {
				for col := range l.Cols {
					out[c.Prefix(i)[1:]+im.TileURL(l, col, r)] = true
				}
			}
		}
	}
	return out
}

func TestGenerateDeterministic(t *testing.T) {
	o := GenOptions{Requests: 3000, Users: 4, Viewer: workload.Spec{Seed: 9, Skew: 1, Viewport: iiif.Viewport{Width: 800, Height: 600}}}
	a, err := Generate(images(), o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(images(), o)
	if len(a) != 3000 || !slices.Equal(a, b) {
		t.Fatalf("%d requests; same options gave a different trace", len(a))
	}
	o.Viewer.Seed = 10
	if c, _ := Generate(images(), o); slices.Equal(a, c) {
		t.Error("another seed gave the same trace")
	}
	tiles := allTiles(images())
	users := map[string]bool{}
	for _, q := range a {
		if !tiles[q.Path] && !strings.HasSuffix(q.Path, "/info.json") {
			t.Fatalf("%s is neither a tile of the pyramids nor info.json", q.Path)
		}
		u, _, _ := strings.Cut(q.Session, ".")
		users[u] = true
	}
	if len(users) != 4 {
		t.Errorf("sessions of %d users, want 4", len(users))
	}
	if a[0].Path != "a/info.json" && a[0].Path != "box%201%2Fb.tif/info.json" && a[0].Path != "c/info.json" {
		t.Errorf("first request %q, want a session's info.json", a[0].Path)
	}
}

func TestGenerateCrawl(t *testing.T) {
	tiles := allTiles(images())
	o := GenOptions{Requests: 4 * len(tiles), Crawl: 0.5, Viewer: workload.Spec{Seed: 3}}
	reqs, err := Generate(images(), o)
	if err != nil {
		t.Fatal(err)
	}
	crawled := map[string]int{}
	first := -1
	for i, q := range reqs {
		if q.Session != "crawl" {
			continue
		}
		if first < 0 {
			first = i
		}
		if !tiles[q.Path] {
			t.Fatalf("crawler sent %s, not a tile", q.Path)
		}
		crawled[q.Path]++
	}
	// Every tile once, then the crawler stops.
	if len(crawled) != len(tiles) {
		t.Errorf("crawler sent %d distinct tiles of %d", len(crawled), len(tiles))
	}
	for p, n := range crawled {
		if n != 1 {
			t.Errorf("crawler sent %s %d times", p, n)
		}
	}
	// Interleaved at about half the requests while it lasts.
	if first > 10 || reqs[len(reqs)-1].Session == "crawl" {
		t.Errorf("crawl starts at request %d and is still going at the end", first)
	}
	if _, err := Generate(images(), GenOptions{Requests: 10, Crawl: 1}); err == nil {
		t.Error("crawl share 1 accepted")
	}
}

func TestWriteRead(t *testing.T) {
	reqs := []Request{{"a/info.json", "u0.1"}, {"a/0,0,512,512/256,256/0/default.jpg", "u0.1"}, {"b/info.json", ""}}
	var buf bytes.Buffer
	if err := Write(&buf, []string{"iiif-bench trace: x=1"}, reqs); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "# iiif-bench trace: x=1\na/info.json\tu0.1\n") {
		t.Errorf("written:\n%s", buf.String())
	}
	got, err := Read(&buf)
	if err != nil || !slices.Equal(got, reqs) {
		t.Errorf("Read = %v, %v", got, err)
	}
	for _, bad := range []string{"/a/info.json\n", "a b\n", "a\tb\tc\n"} {
		if _, err := Read(strings.NewReader("ok/info.json\n" + bad)); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("Read(%q): %v, want an error naming line 2", bad, err)
		}
	}
}

func TestRecordsAndSummary(t *testing.T) {
	recs := []Record{
		{Path: "a/0,0,512,512/256,256/0/default.jpg", Session: "u0.1", Status: 200, Cache: "MISS", Tier: "tile", Bytes: 5000, Latency: 3 * time.Millisecond},
		{Path: "a/0,0,512,512/256,256/0/default.jpg", Session: "u1.1", Status: 200, Cache: "HIT", Tier: "tile", Bytes: 5000},
		{Path: "a/512,0,512,512/256,256/0/default.jpg", Status: 200, Cache: "COLLAPSED", Tier: "tile", Bytes: 3000},
		{Path: "a/full/94,63/0/default.jpg", Status: 200, Cache: "MISS", Tier: "thumbnail", Bytes: 1000},
		{Path: "a/info.json", Status: 200, Cache: "REVALIDATED", Bytes: 400}, // no tier: by shape
		{Path: "a/9,9,9,9/9,9/0/default.jpg", Status: 404, Cache: "MISS", Tier: "tile", Bytes: 20},
		{Path: "b/info.json", Err: "timeout"},
		{Path: "c/info.json", Status: 200, Bytes: 400}, // no X-Cache
	}
	var buf bytes.Buffer
	if err := WriteRecords(&buf, recs); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRecords(&buf)
	if err != nil || !slices.Equal(got, recs) {
		t.Fatalf("ReadRecords = %v, %v", got, err)
	}
	sum := Summarize(recs)
	want := []TierSummary{
		{Tier: "all", Requests: 6, Hits: 3, Collapsed: 1, Bytes: 14420, HitBytes: 8400, Errors: 1, Non2xx: 1, NoCache: 1},
		{Tier: "tile", Requests: 4, Hits: 2, Collapsed: 1, Bytes: 13020, HitBytes: 8000, Non2xx: 1},
		{Tier: "thumbnail", Requests: 1, Bytes: 1000},
		{Tier: "info", Requests: 1, Hits: 1, Bytes: 400, HitBytes: 400, Errors: 1, NoCache: 1},
	}
	if !slices.Equal(sum, want) {
		t.Errorf("Summarize:\n got %+v\nwant %+v", sum, want)
	}
	if r := sum[1].HitRatio(); r != 0.5 {
		t.Errorf("tile hit ratio %v, want 0.5", r)
	}
}

func TestNewSim(t *testing.T) {
	reqs := []Request{
		{Path: "a/info.json"},
		{Path: "a/0,0,512,512/256,256/0/default.jpg"},
		{Path: "a/0,0,512,512/256,/0/default.jpg"},
		{Path: "a/0,0,512,512/256,256/0/default.jpg"},
		{Path: "a/0,0,1024,512/256,/0/default.jpg"},
		{Path: "a/full/94,63/0/default.jpg"},
	}
	// Sizes by the model: 0.1 bytes a pixel.
	s, err := NewSim(reqs, nil, "tile", SizeModel{BytesPerPixel: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Keys, []int32{0, 1, 0, 2}) || !slices.Equal(s.Sizes, []int64{6554, 6554, 3277}) || s.Modelled != 3 {
		t.Errorf("model: keys %v sizes %v modelled %d", s.Keys, s.Sizes, s.Modelled)
	}
	// Sizes and tiers from a replay: the server put the 256,/ spelling in
	// "other", and sized the first tile.
	recs := []Record{{Path: "a/0,0,512,512/256,256/0/default.jpg", Status: 200, Tier: "tile", Bytes: 4900},
		{Path: "a/0,0,512,512/256,/0/default.jpg", Status: 200, Tier: "other", Bytes: 4000}}
	s, _ = NewSim(reqs, recs, "tile", SizeModel{BytesPerPixel: 0.1})
	if !slices.Equal(s.Keys, []int32{0, 0, 1}) || !slices.Equal(s.Sizes, []int64{4900, 3277}) || s.Modelled != 1 {
		t.Errorf("records: keys %v sizes %v modelled %d", s.Keys, s.Sizes, s.Modelled)
	}
	if s, _ := NewSim(reqs, nil, "all", SizeModel{}); len(s.Keys) != 6 || s.Sizes[0] != 1000 {
		t.Errorf("all tiers: %d requests, info.json %d bytes", len(s.Keys), s.Sizes[0])
	}
}

func TestBudget(t *testing.T) {
	for in, want := range map[string]int64{"20%": 2000, "7.5MB": 7_500_000, "512KiB": 512 << 10, "100": 100, "0.5%": 50} {
		if got, err := Budget(in, 10000); err != nil || got != want {
			t.Errorf("Budget(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x%", "-1MB", "5 parsecs", "MB"} {
		if _, err := Budget(bad, 10000); err == nil {
			t.Errorf("Budget(%q) accepted", bad)
		}
	}
}

func TestShapeTier(t *testing.T) {
	for p, want := range map[string]string{"a/info.json": "info", "a/full/200,/0/default.jpg": "thumbnail",
		"a/square/200,200/0/default.jpg": "thumbnail", "a/0,0,256,256/256,256/0/default.jpg": "tile"} {
		if got := ShapeTier(p); got != want {
			t.Errorf("ShapeTier(%q) = %s, want %s", p, got, want)
		}
	}
}

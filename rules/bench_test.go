package rules

import "testing"

// tile is the URL shape a deep-zoom viewer requests most often, the same
// under 2.1 and 3.0.
const tile = "some-id/1024,2048,512,512/256,/0/default.jpg"

var sinkRequest Request

func BenchmarkParseTileV3(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		r, err := Parse(V3, tile)
		if err != nil {
			b.Fatal(err)
		}
		sinkRequest = r
	}
}

func BenchmarkParseTileV2(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		r, err := Parse(V2, tile)
		if err != nil {
			b.Fatal(err)
		}
		sinkRequest = r
	}
}

// BenchmarkResolveCanonical is the rest of the hot path once a tile URL is
// parsed: resolve against the image, then build the canonical form and the
// cache key into a reused buffer.
func BenchmarkResolveCanonical(b *testing.B) {
	r, err := Parse(V3, tile)
	if err != nil {
		b.Fatal(err)
	}
	info := ImageInfo{Width: 7001, Height: 5003}
	lim := Limits{MaxWidth: 4096, MaxHeight: 4096, MaxArea: 16 << 20}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		res, err := r.Resolve(info, lim)
		if err != nil {
			b.Fatal(err)
		}
		buf = res.AppendCanonical(buf[:0])
		buf = res.AppendKey(buf)
	}
}

package vips

import "testing"

// thumbs are whole-image thumbnails of the sizes catalogue pages, search
// results and viewers' navigators ask for (bench/wrk/thumbs.lua).
var thumbs = []string{"x/full/150,/0/default.jpg", "x/full/200,/0/default.jpg", "x/full/300,/0/default.jpg",
	"x/full/400,/0/default.jpg", "x/full/500,/0/default.jpg", "x/full/700,/0/default.jpg"}

func BenchmarkThumbsUntagged(b *testing.B) { benchReal(b, "real-plain.tif", thumbs) }

func BenchmarkThumbsAdobeRGB(b *testing.B) { benchReal(b, "real-adobe.tif", thumbs) }

func BenchmarkThumbs700Untagged(b *testing.B) {
	benchReal(b, "real-plain.tif", []string{"x/full/700,/0/default.jpg"})
}

func BenchmarkThumbs150Untagged(b *testing.B) {
	benchReal(b, "real-plain.tif", []string{"x/full/150,/0/default.jpg"})
}

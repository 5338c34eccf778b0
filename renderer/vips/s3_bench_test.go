package vips

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/internal/s3test"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/sources"
)

// BenchmarkS3FirstTile is the time to the first tile of the 236-megapixel
// pyramidal TIFF of the bench corpus (20480 × 11520, JPEG tiles) read from
// S3 (MinIO on loopback) by a renderer that has just started: info.json
// (Info) then one full-resolution tile from the middle (passed through as
// stored). "cold": an empty source cache; "warm": the source cache an
// earlier run left (its blocks, reloaded from disk: one conditional
// request, answered 304); "whole": an empty source cache, the object
// downloaded whole before rendering (what RAIS and Loris do); "local": the
// same file from a directory. fetched-B/op is what came from the store,
// requests/op the requests sent (each a round trip to a real store).
func BenchmarkS3FirstTile(b *testing.B) {
	file := filepath.Join(corpus(b), "scan-pyramid.tif")
	fi, err := os.Stat(file)
	if err != nil {
		b.Fatal(err)
	}
	srv := s3test.Start(b)
	bucket := srv.Bucket("bench-first-tile")
	srv.Put(bucket, "corpus/scan-pyramid.tif", file)
	b.Logf("object: %d bytes", fi.Size())
	warmDir := b.TempDir()
	cfg := func(dir string) Config {
		return Config{TilePassthrough: true, S3: &sources.Config{URL: "s3://" + bucket + "/corpus", Endpoint: srv.Endpoint,
			DisableSSL: true, ForcePathStyle: true, Region: s3test.Region, AccessKey: s3test.AccessKey,
			SecretKey: s3test.SecretKey, Dir: dir, Timeout: 5 * time.Second}}
	}
	first := func(b *testing.B, dir string, whole bool) (fetched, requests uint64) {
		c := cfg(dir)
		if dir == "local" {
			c = Config{TilePassthrough: true, TilePath: corpus(b)}
		}
		v, err := New(c)
		if err != nil {
			b.Fatal(err)
		}
		defer v.Close()
		if whole {
			obj, err := v.s3.Stat(context.Background(), "scan-pyramid.tif")
			if err != nil {
				b.Fatal(err)
			}
			rf, _ := v.s3.Open(obj)
			f, err := rf.Whole(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			f.Close()
			rf.Close()
		}
		src, err := v.Info(context.Background(), "scan-pyramid.tif")
		if err != nil {
			b.Fatal(err)
		}
		req, _ := rules.Parse(rules.V3, "x/10240,5632,256,256/256,256/0/default.jpg")
		res, err := req.Resolve(rules.ImageInfo{Width: src.Width, Height: src.Height}, v.Limits())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Render(context.Background(), src, res); err != nil {
			b.Fatal(err)
		}
		if v.s3 == nil {
			return 0, 0
		}
		st := v.Stats().Sources
		return st.FetchedBytes, st.Stats + st.Gets
	}
	first(b, warmDir, false) // fills the warm cache
	for _, tc := range []struct {
		name        string
		cold, whole bool
	}{{"cold", true, false}, {"warm", false, false}, {"whole", true, true}, {"local", false, false}} {
		b.Run(tc.name, func(b *testing.B) {
			var fetched, requests uint64
			n := 0
			for b.Loop() {
				dir := warmDir
				if tc.name == "local" {
					dir = "local"
				}
				if tc.cold {
					b.StopTimer()
					dir = filepath.Join(b.TempDir(), "src")
					b.StartTimer()
				}
				f, r := first(b, dir, tc.whole)
				fetched, requests = fetched+f, requests+r
				n++
			}
			b.ReportMetric(float64(fetched)/float64(n), "fetched-B/op")
			b.ReportMetric(float64(requests)/float64(n), "requests/op")
			b.ReportMetric(float64(fi.Size()), "object-B")
		})
	}
}

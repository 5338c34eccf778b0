package vips

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/internal/s3test"
	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/sources"
)

// s3Fixture starts MinIO with every fixture file under "pre/" and returns
// a renderer reading them from there, and the server.
func s3Fixture(t *testing.T, mod func(*Config)) (*Vips, *s3test.Server, string) {
	t.Helper()
	srv := s3test.Start(t)
	b := srv.Bucket("")
	for _, id := range ids {
		srv.Put(b, "pre/"+id, filepath.Join(fixtureDir, id))
	}
	cfg := Config{S3: &sources.Config{URL: "s3://" + b + "/pre", Endpoint: srv.Endpoint, DisableSSL: true,
		ForcePathStyle: true, Region: s3test.Region, AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey,
		Dir: t.TempDir(), Timeout: 2 * time.Second, BreakerFailures: 2, BreakerCooldown: 200 * time.Millisecond},
		TilePassthrough: true}
	if mod != nil {
		mod(&cfg)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v, srv, b
}

// renderBytes renders path (a IIIF path after the identifier) of id.
func renderBytes(t *testing.T, v *Vips, id, path string) ([]byte, error) {
	t.Helper()
	src, err := v.Info(context.Background(), id)
	if err != nil {
		return nil, err
	}
	req, err := rules.Parse(rules.V3, "x/"+path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := req.Resolve(rules.ImageInfo{Width: src.Width, Height: src.Height}, v.Limits())
	if err != nil {
		t.Fatal(err)
	}
	img, err := v.Render(context.Background(), src, res)
	return img.Body, err
}

// TestS3EveryLayoutRendersAsFromFiles: every source format read from S3
// is described and rendered exactly as the same file read locally:
// info, tiles (pass-through included), thumbnails, other formats.
func TestS3EveryLayoutRendersAsFromFiles(t *testing.T) {
	v, _, _ := s3Fixture(t, nil)
	local := newVips(t, Config{TilePassthrough: true})
	paths := []string{
		"0,0,256,256/256,256/0/default.jpg",                                   // one stored tile: pass-through
		fmt.Sprintf("%d,%d,%d,%d/100,/0/default.png", cell, cell, cell, cell), // a region
		"full/200,/0/default.jpg",                                             // a thumbnail
		"square/!150,150/90/gray.webp",                                        // rotated, gray
	}
	for name, id := range ids {
		t.Run(name, func(t *testing.T) {
			rs, err := v.Info(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			ls, err := local.Info(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			s, l := rs.Detail.(*source), ls.Detail.(*source)
			if s.Width != l.Width || s.Height != l.Height || len(s.Levels) != len(l.Levels) || s.TileWidth != l.TileWidth ||
				fmt.Sprint(s.ScaleFactors) != fmt.Sprint(l.ScaleFactors) || s.Format != l.Format {
				t.Fatalf("S3 description %+v differs from the file's %+v", s.Source, l.Source)
			}
			if !bytes.HasPrefix([]byte(rs.Identity), []byte("s3:")) {
				t.Errorf("identity %q is not an S3 object's", rs.Identity)
			}
			for _, p := range paths {
				got, err := renderBytes(t, v, id, p)
				if err != nil {
					t.Fatalf("%s from S3: %v", p, err)
				}
				want, err := renderBytes(t, local, id, p)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s from S3: %d bytes differ from the file's render (%d bytes)", p, len(got), len(want))
				}
			}
		})
	}
	st := v.Stats()
	if st.Sources == nil || st.Sources.Breaker != "closed" || st.Passthrough == 0 {
		t.Fatalf("stats: %+v %+v", st, st.Sources)
	}
}

// TestS3PyramidTileCostsHeaderAndTile: info.json and the first tile of a
// large pyramidal TIFF cost a small part of the file; flat sources are
// fetched whole.
func TestS3PyramidTileCostsHeaderAndTile(t *testing.T) {
	dir := t.TempDir()
	file, err := Generate(filepath.Join(dir, "scan"), Scan, PyramidTIFF, 6000, 4000, 7)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(file)
	v, srv, b := s3Fixture(t, nil)
	srv.Put(b, "pre/scan.tif", file)
	fetched := func() uint64 { return v.Stats().Sources.FetchedBytes }
	before := fetched()
	rs, err := v.Info(context.Background(), "scan.tif")
	if err != nil {
		t.Fatal(err)
	}
	info := fetched() - before
	if _, err := renderBytes(t, v, "scan.tif", "2048,2048,256,256/256,256/0/default.jpg"); err != nil {
		t.Fatal(err)
	}
	tile := fetched() - before - info
	// A 1/8 view: the small levels only.
	if _, err := renderBytes(t, v, "scan.tif", "full/750,/0/default.jpg"); err != nil {
		t.Fatal(err)
	}
	total := fetched() - before
	t.Logf("file %d bytes; info.json fetched %d, first tile %d more, a 1/8 view: %d in all", fi.Size(), info, tile, total)
	if info > uint64(fi.Size())/20 || info+tile > uint64(fi.Size())/10 || total > uint64(fi.Size())/4 {
		t.Fatalf("fetched %d (info) + %d (tile), %d in all, of a %d-byte file", info, tile, total, fi.Size())
	}
	if rs.Detail.(*source).seq {
		t.Fatal("a tiled TIFF is read sequentially")
	}
	if st := v.Stats().Sources; st.Whole != 0 {
		t.Fatalf("a ranged source was made whole: %+v", st)
	}
	// A flat JPEG is fetched whole to render (info alone needed its header).
	before = fetched()
	if _, err := v.Info(context.Background(), ids["jpeg"]); err != nil {
		t.Fatal(err)
	}
	jfi, _ := os.Stat(filepath.Join(fixtureDir, ids["jpeg"]))
	if got := fetched() - before; got >= uint64(jfi.Size()) && jfi.Size() > 64<<10 {
		t.Fatalf("info of a flat JPEG fetched %d of %d bytes", got, jfi.Size())
	}
	if _, err := renderBytes(t, v, ids["jpeg"], "full/100,/0/default.jpg"); err != nil {
		t.Fatal(err)
	}
	if st := v.Stats().Sources; st.Whole != 1 {
		t.Fatalf("flat JPEG not whole after a render: %+v", st)
	}
}

// TestS3OverwrittenObjectIsRenderedAnew: a new version of an object gets a
// new identity, and the renderer never serves the old pixels for it.
func TestS3OverwrittenObjectIsRenderedAnew(t *testing.T) {
	v, srv, b := s3Fixture(t, nil)
	id := ids["pyramid"]
	path := fmt.Sprintf("%d,%d,%d,%d/100,/0/default.png", 0, 0, cell, cell)
	old, err := v.Info(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	first, err := renderBytes(t, v, id, path)
	if err != nil {
		t.Fatal(err)
	}
	// Overwrite with another image of the same size and layout.
	other, err := Generate(filepath.Join(t.TempDir(), "other"), Scan, PyramidTIFF, PatternCols*cell, PatternRows*cell, 3)
	if err != nil {
		t.Fatal(err)
	}
	srv.Put(b, "pre/"+id, other)
	rs, err := v.Info(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Identity == old.Identity {
		t.Fatalf("identity unchanged after overwrite: %s", rs.Identity)
	}
	req, _ := rules.Parse(rules.V3, "x/"+path)
	res, _ := req.Resolve(rules.ImageInfo{Width: old.Width, Height: old.Height}, v.Limits())
	if _, err := v.Render(context.Background(), old, res); !errors.Is(err, ErrSourceChanged) {
		t.Fatalf("render of the old description: %v, want ErrSourceChanged", err)
	}
	second, err := renderBytes(t, v, id, path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first, second) {
		t.Fatal("the overwritten object rendered the old pixels")
	}
	d := decode(t, second)
	if near(d.at(t, 50, 50), colorOf(0, 0), 40) {
		t.Fatal("new render still shows the pattern")
	}
}

// TestS3SourceCacheEvictsUnderASmallBudget: with a budget smaller than the
// sources together, the least recently used go and renders stay right.
func TestS3SourceCacheEvictsUnderASmallBudget(t *testing.T) {
	// Room for two or three of the four flat sources (each is fetched
	// whole to render), never for all four.
	var largest, total int64
	for _, n := range []string{"jpeg", "png", "webp", "strip"} {
		fi, _ := os.Stat(filepath.Join(fixtureDir, ids[n]))
		largest, total = max(largest, fi.Size()), total+fi.Size()
	}
	budget := max(total*2/3, largest+1)
	if budget >= total {
		t.Fatalf("fixture sizes leave no budget to test: largest %d of %d", largest, total)
	}
	v, _, _ := s3Fixture(t, func(c *Config) { c.S3.MaxBytes = budget })
	for round := range 2 {
		for _, n := range []string{"jpeg", "png", "webp", "strip"} {
			_, d := render(t, v, ids[n], "x/full/400,/0/default.png")
			d.wantCell(t, 150, 150, 1, 1)
			if st := v.Stats().Sources; st.Bytes > budget {
				t.Fatalf("round %d, %s: %d bytes cached, budget %d", round, n, st.Bytes, budget)
			}
		}
	}
	if st := v.Stats().Sources; st.Evicted < 4 {
		t.Fatalf("evicted %d: %+v", st.Evicted, st)
	}
}

// TestS3StoreDown: with the store stopped, sources cached locally keep
// rendering, others fail fast as unavailable (never as undecodable), the
// breaker opens; restarted, everything works again.
func TestS3StoreDown(t *testing.T) {
	v, srv, _ := s3Fixture(t, nil)
	cached, ranged, never := ids["jpeg"], ids["bigpyr"], ids["png"]
	if _, err := renderBytes(t, v, cached, "full/100,/0/default.jpg"); err != nil {
		t.Fatal(err)
	}
	// One tile of the pyramid: its header and that tile are cached; and a
	// region that is no stored tile, which leaves the full-resolution level
	// open (shared by later renders).
	if _, err := renderBytes(t, v, ranged, "0,0,256,256/256,256/0/default.jpg"); err != nil {
		t.Fatal(err)
	}
	if _, err := renderBytes(t, v, ranged, "100,100,256,256/256,256/0/default.jpg"); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if _, err := renderBytes(t, v, cached, "full/120,/0/default.jpg"); err != nil {
		t.Fatalf("cached source while the store is down: %v", err)
	}
	if _, err := renderBytes(t, v, ranged, "0,0,256,256/256,256/0/default.jpg"); err != nil {
		t.Fatalf("cached tile while the store is down: %v", err)
	}
	var ue *renderer.UnavailableError
	// A tile whose bytes are not cached: unavailable, not undecodable.
	if _, err := renderBytes(t, v, ranged, "4096,4096,512,512/256,256/0/default.jpg"); !errors.As(err, &ue) {
		t.Fatalf("uncached tile while down: %v, want UnavailableError", err)
	}
	// The same through the level left open by an earlier render.
	if _, err := renderBytes(t, v, ranged, "4100,4100,256,256/256,256/0/default.jpg"); !errors.As(err, &ue) {
		t.Fatalf("uncached region of an open level while down: %v, want UnavailableError", err)
	}
	if _, err := renderBytes(t, v, never, "full/100,/0/default.jpg"); !errors.As(err, &ue) {
		t.Fatalf("uncached source while down: %v, want UnavailableError", err)
	}
	for range 3 {
		start := time.Now()
		_, err := v.Info(context.Background(), never)
		if !errors.As(err, &ue) {
			t.Fatalf("uncached source while down: %v", err)
		}
		if v.Stats().Sources.Breaker == "open" && time.Since(start) > 500*time.Millisecond {
			t.Fatalf("an open breaker took %s to fail", time.Since(start))
		}
	}
	if st := v.Stats().Sources; st.BreakerOpens == 0 || st.Refused == 0 {
		t.Fatalf("breaker never opened: %+v", st)
	}
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := renderBytes(t, v, never, "full/100,/0/default.jpg")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := renderBytes(t, v, ranged, "4096,4096,512,512/256,256/0/default.jpg"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

// TestS3ConcurrentRequestsFetchOnce: many concurrent first requests for one
// flat original (fetched whole) and for one tile of a pyramid (by ranges)
// download each byte once.
func TestS3ConcurrentRequestsFetchOnce(t *testing.T) {
	v, _, _ := s3Fixture(t, nil)
	plain := ids["bigplain"]
	fi, _ := os.Stat(filepath.Join(fixtureDir, plain))
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 16 {
		wg.Go(func() {
			if _, err := renderBytes(t, v, plain, "full/300,/0/default.jpg"); err != nil {
				errs <- err
			}
		})
		wg.Go(func() {
			if _, err := renderBytes(t, v, ids["bigpyr"], "2048,2048,256,256/256,256/0/default.jpg"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	pyr, _ := os.Stat(filepath.Join(fixtureDir, ids["bigpyr"]))
	st := v.Stats().Sources
	// Each object's bytes at most once: the whole plain JPEG, and part of
	// the pyramid.
	if st.FetchedBytes > uint64(fi.Size()+pyr.Size()) || st.Whole != 1 {
		t.Fatalf("fetched %d bytes for objects of %d and %d: %+v", st.FetchedBytes, fi.Size(), pyr.Size(), st)
	}
	t.Logf("%d GETs, %d stats, %d bytes", st.Gets, st.Stats, st.FetchedBytes)
}

// TestS3AutomaticPyramid: a large flat original on S3 gets its automatic
// pyramid, built in the child process from the whole local copy, and is
// then served from it.
func TestS3AutomaticPyramid(t *testing.T) {
	v, _, _ := s3Fixture(t, func(c *Config) {
		c.PyramidDir = filepath.Join(t.TempDir(), "pyramid")
		c.PyramidMinPixels = 1 << 20
	})
	id := ids["bigplain"]
	if _, err := v.Info(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	v.pyr.wg.Wait()
	if s := v.Stats().Pyramids; s.Succeeded != 1 || s.Files != 1 {
		t.Fatalf("pyramids: %+v", s)
	}
	if st := v.Stats().Sources; st.Whole != 1 {
		t.Fatalf("the flat original was not made whole for the build: %+v", st)
	}
	_, d := render(t, v, id, fmt.Sprintf("x/%d,%d,256,256/256,256/0/default.jpg", 8*cell, 8*cell))
	d.wantCell(t, 128, 128, 1, 1)
	if s := v.Stats().Pyramids; s.Served != 1 {
		t.Fatalf("not served from the pyramid: %+v", s)
	}
}

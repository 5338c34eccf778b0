package vips

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// resolve parses a V3 path and resolves it for src without limits.
func resolve(t *testing.T, src *renderer.Source, path string) rules.Resolved {
	t.Helper()
	req, err := rules.Parse(rules.V3, path)
	must(t, err)
	res, err := req.Resolve(rules.ImageInfo{Width: src.Width, Height: src.Height}, rules.Limits{})
	must(t, err)
	return res
}

// damaged writes broken copies of the fixtures into a new directory:
// "trunc-X" keeps the first part of fixture X, "corrupt-X" overwrites its
// middle with noise, the header intact.
func damaged(t *testing.T) (dir string, names []string) {
	t.Helper()
	dir = t.TempDir()
	for _, fx := range []struct {
		fixture string
		cut     func(n int) int // bytes kept of n
	}{
		{"jpeg", func(n int) int { return n / 3 }},
		{"strip", func(n int) int { return n / 2 }},
		{"pyramid", func(n int) int { return n / 2 }},
		{"png", func(n int) int { return n / 2 }},
		{"jp2", func(int) int { return 1500 }}, // as found: head -c 1500
	} {
		full, err := os.ReadFile(filepath.Join(fixtureDir, ids[fx.fixture]))
		must(t, err)
		ext := filepath.Ext(ids[fx.fixture])
		trunc := "trunc-" + fx.fixture + ext
		must(t, os.WriteFile(filepath.Join(dir, trunc), full[:fx.cut(len(full))], 0o644))
		bad := append([]byte(nil), full...)
		for i := len(bad) / 4; i < len(bad)*3/4; i++ {
			bad[i] = byte(i*131 + 7)
		}
		corrupt := "corrupt-" + fx.fixture + ext
		must(t, os.WriteFile(filepath.Join(dir, corrupt), bad, 0o644))
		names = append(names, trunc, corrupt)
	}
	return dir, names
}

// TestBrokenSourcesFailEveryTime requests each truncated or corrupt file
// three times, the way a cache-less proxy would: every answer must be a
// SourceError, never an image, and the open-handle cache must not keep what
// failed (a reused JPEG 2000 handle used to render black the second time).
func TestBrokenSourcesFailEveryTime(t *testing.T) {
	dir, names := damaged(t)
	v := newVips(t, Config{TilePath: dir})
	for _, id := range names {
		t.Run(id, func(t *testing.T) {
			for i := range 3 {
				src, err := v.Info(context.Background(), id)
				var se *SourceError
				if err != nil {
					if !errors.As(err, &se) {
						t.Fatalf("request %d: Info = %v, want a SourceError", i+1, err)
					}
					continue
				}
				// The whole image: a region that lies wholly before the
				// damage may render, from the pixels that are there.
				for _, path := range []string{"x/full/256,/0/default.jpg", "x/full/max/0/default.png"} {
					img, err := v.Render(context.Background(), src, resolve(t, src, path))
					if !errors.As(err, &se) {
						t.Fatalf("request %d: Render(%s) = %d bytes, %v; want a SourceError", i+1, path, len(img.Body), err)
					}
				}
			}
			if n := v.open_.Len(); n != 0 {
				t.Errorf("%d handles of broken files kept open", n)
			}
		})
	}
}

// TestSourcesOverMaxSourcePixelsAreRefusedBeforeDecoding: an untiled source
// read at a level above the limit is refused without a worker or a decode;
// a JPEG shrink-on-load level under it and a tiled pyramid are not.
func TestSourcesOverMaxSourcePixelsAreRefusedBeforeDecoding(t *testing.T) {
	v := newVips(t, Config{MaxSourcePixels: 1_000_000}) // the fixtures are 1200×900
	for _, tc := range []struct {
		fixture, path string
		refused       bool
	}{
		{"png", "x/full/max/0/default.png", true},
		{"png", "x/0,0,64,64/64,/0/default.jpg", true}, // any region: the decode is whole
		{"strip", "x/full/150,/0/default.jpg", true},
		{"jpeg", "x/full/max/0/default.jpg", true},
		{"jpeg", "x/full/300,/0/default.jpg", false}, // shrink-on-load 1/2: 600×450
		{"pyramid", "x/full/max/0/default.jpg", false},
		{"jp2", "x/full/max/0/default.jpg", false}, // tiled, 512×512
	} {
		src, err := v.Info(context.Background(), ids[tc.fixture])
		must(t, err)
		before := v.Stats()
		_, err = v.Render(context.Background(), src, resolve(t, src, tc.path))
		var tl *SourceTooLargeError
		switch {
		case tc.refused && !errors.As(err, &tl):
			t.Errorf("%s %s: %v, want a SourceTooLargeError", tc.fixture, tc.path, err)
		case tc.refused && v.Stats().Renders+v.Stats().Failures != before.Renders+before.Failures:
			t.Errorf("%s %s: refused after decoding", tc.fixture, tc.path)
		case !tc.refused && err != nil:
			t.Errorf("%s %s: %v, want a render", tc.fixture, tc.path, err)
		}
	}
}

// TestAbandonedRenderIsKilled cancels a render that would take many seconds
// (a 300-megapixel PNG) as soon as it holds the only worker: it must return
// the context's error, count as cancelled, free its worker, and leave the
// shared open handle usable.
func TestAbandonedRenderIsKilled(t *testing.T) {
	for _, fixture := range []string{"bigplain", "bigpyr"} { // sequential, and a shared handle
		t.Run(fixture, func(t *testing.T) {
			v := newVips(t, Config{Concurrency: 1})
			started := make(chan struct{}, 1)
			testHookRendering = func() { started <- struct{}{} }
			t.Cleanup(func() { testHookRendering = nil })
			src, err := v.Info(context.Background(), ids[fixture])
			must(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := v.Render(ctx, src, resolve(t, src, "x/full/^20000,/0/default.png"))
				done <- err
			}()
			<-started
			// Let libvips get into the evaluation (not required: a kill
			// that comes first stops it at its first region).
			time.Sleep(300 * time.Millisecond)
			t0 := time.Now()
			cancel()
			select {
			case err := <-done:
				t.Logf("returned %v after the cancel", time.Since(t0))
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Render = %v, want context.Canceled", err)
				}
			case <-time.After(30 * time.Second): // the whole render takes minutes on 2 cores
				t.Fatal("the cancelled render is still running: the pipeline was not killed")
			}
			if s := v.Stats(); s.Cancelled != 1 || s.InFlight != 0 || s.Failures != 0 {
				t.Errorf("stats %+v, want one cancelled render and none in flight", s)
			}
			select {
			case v.slots <- struct{}{}: // the worker is free
				<-v.slots
			default:
				t.Fatal("the cancelled render still holds its worker")
			}
			render(t, v, ids[fixture], "x/0,0,256,256/256,/0/default.jpg") // the handle still works
		})
	}
}

// sameSizeReplacement writes two different uncompressed TIFFs of the same
// size and byte length (the shorter padded: TIFF readers ignore what no
// offset points to) and returns their bytes.
func sameSizeReplacement(t *testing.T) (a, b []byte) {
	t.Helper()
	dir := t.TempDir()
	na, err := Generate(filepath.Join(dir, "a"), Pattern, "tif", 80, 60, 1)
	must(t, err)
	nb, err := Generate(filepath.Join(dir, "b"), Scan, "tif", 80, 60, 1)
	must(t, err)
	a, err = os.ReadFile(na)
	must(t, err)
	b, err = os.ReadFile(nb)
	must(t, err)
	for len(a) < len(b) {
		a = append(a, 0)
	}
	for len(b) < len(a) {
		b = append(b, 0)
	}
	return a, b
}

// TestReplacedFileWithSameSizeAndMtimeIsANewIdentity rewrites a source in
// place (same inode) with other pixels of the same length and puts its
// modification time back, as cp -p or rsync -a do: the identity must change
// (through ctime), a render planned on the old description must refuse, and
// the new description must render the new pixels.
func TestReplacedFileWithSameSizeAndMtimeIsANewIdentity(t *testing.T) {
	a, b := sameSizeReplacement(t)
	dir := t.TempDir()
	name := filepath.Join(dir, "img.tif")
	must(t, os.WriteFile(name, a, 0o644))
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC)
	must(t, os.Chtimes(name, mtime, mtime))
	v := newVips(t, Config{TilePath: dir})
	old, err := v.Info(context.Background(), "img.tif")
	must(t, err)
	was := old.Detail.(*source).Identity
	_, d := render(t, v, "img.tif", "x/0,0,20,20/20,/0/default.png")
	if p := d.at(t, 10, 10); !near(p, colorOf(0, 0), 10) {
		t.Fatalf("before: pixel %v, want the pattern's red", p)
	}

	must(t, os.WriteFile(name, b, 0o644)) // O_TRUNC: same inode
	must(t, os.Chtimes(name, mtime, mtime))
	fi, err := os.Stat(name)
	must(t, err)
	now := IdentityOf(fi)
	if now.Ino != was.Ino || now.Size != was.Size || now.ModNs != was.ModNs {
		t.Fatalf("the replacement should keep inode, size and mtime: %+v, was %+v", now, was)
	}
	if now == was || now.String() == old.Identity {
		t.Fatalf("identity %v unchanged after the file was replaced", now)
	}
	if _, err := v.Render(context.Background(), old, resolve(t, old, "x/full/max/0/default.png")); !errors.Is(err, ErrSourceChanged) {
		t.Errorf("Render with the old description = %v, want ErrSourceChanged", err)
	}
	img, d := render(t, v, "img.tif", "x/0,0,20,20/20,/0/default.png")
	if img.Identity != now.String() {
		t.Errorf("rendered identity %v, want %v", img.Identity, now)
	}
	if p := d.at(t, 10, 10); near(p, colorOf(0, 0), 60) {
		t.Errorf("after: pixel %v is still the old red", p)
	}
}

// TestEveryImageCarriesItsSourceIdentity, passed-through tiles included: the
// proxy stores it with the entry and revalidates against it.
func TestEveryImageCarriesItsSourceIdentity(t *testing.T) {
	v := newVips(t, Config{TilePassthrough: true})
	for _, path := range []string{"x/0,0,256,256/256,256/0/default.jpg", "x/full/100,/0/default.png"} {
		src, err := v.Info(context.Background(), ids["pyramid"])
		must(t, err)
		before := v.Stats().Passthrough
		img, err := v.Render(context.Background(), src, resolve(t, src, path))
		must(t, err)
		if img.Identity != src.Identity || img.Identity == "" {
			t.Errorf("%s (passthrough: %v): identity %+v, want %+v", path, v.Stats().Passthrough > before, img.Identity, src.Identity)
		}
	}
}

// TestRotatedRendersStayWithinTheLimits renders "max" at awkward angles under
// tight limits: what libvips sends must fit them (rules computes the rotated
// box rounded up; libvips rounds it to the nearest pixel).
func TestRotatedRendersStayWithinTheLimits(t *testing.T) {
	lim := rules.Limits{MaxArea: 300_000, MaxWidth: 700, MaxHeight: 600}
	v := newVips(t, Config{Limits: lim})
	for _, deg := range []string{"1", "22.5", "45", "89.999", "!135.5", "300", "90", "270"} {
		_, d := render(t, v, ids["png"], "x/full/max/"+deg+"/default.png")
		if d.w > lim.MaxWidth || d.h > lim.MaxHeight || int64(d.w)*int64(d.h) > lim.MaxArea {
			t.Errorf("full/max/%s: sent %d×%d, beyond %+v", deg, d.w, d.h, lim)
		}
	}
}

// TestLibvipsOperationCacheStaysEmpty: Startup turns libvips' operation
// cache off; renders must leave nothing in it (it caches loads by file name
// and would hold their memory and file descriptors).
func TestLibvipsOperationCacheStaysEmpty(t *testing.T) {
	v := newVips(t, Config{})
	for _, fixture := range []string{"pyramid", "jpeg", "png", "jp2"} {
		render(t, v, ids[fixture], "x/full/300,/22.5/default.png")
	}
	if n := opCacheSize(); n != 0 {
		t.Errorf("%d operations in libvips' cache, want 0", n)
	}
}

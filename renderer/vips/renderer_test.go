package vips

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// The fixture: the test pattern, PatternCols × PatternRows cells of cell px.
const cell = 300

var (
	fixtureDir string
	// layouts maps a fixture identifier to how it was written.
	layouts = map[string]string{
		"pyramid":  PyramidTIFF,
		"subifd":   SubIFDTIFF,
		"strip":    StripTIFF,
		"jpeg":     PlainJPEG,
		"jp2":      JP2,
		"png":      PNG,
		"webp":     WebP,
		"bigpyr":   PyramidTIFF, // 8 × the pattern: deep enough for a 1/8 level
		"bigplain": PlainJPEG,
	}
	ids = map[string]string{} // fixture name → identifier (file name)
)

func TestMain(m *testing.M) {
	MaybeBuildPyramid() // this binary is also the pyramid builder (builder.go)
	if err := Startup(Options{Concurrency: 2}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "renderer-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fixtureDir = dir
	for name, layout := range layouts {
		w, h := PatternCols*cell, PatternRows*cell
		if name == "bigpyr" || name == "bigplain" {
			w, h = w*8, h*8
		}
		file, err := Generate(filepath.Join(dir, name), Pattern, layout, w, h, 1)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ids[name] = filepath.Base(file)
	}
	code := m.Run()
	os.RemoveAll(dir)
	Shutdown()
	os.Exit(code)
}

func newVips(t testing.TB, cfg Config) *Vips {
	t.Helper()
	if cfg.TilePath == "" {
		cfg.TilePath = fixtureDir
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// decoded is a rendered image, decoded for inspection.
type decoded struct {
	img  *vips.ImageRef
	w, h int
}

func decode(t *testing.T, body []byte) decoded {
	t.Helper()
	img, err := vips.NewImageFromBuffer(body)
	if err != nil {
		t.Fatalf("output does not decode: %v", err)
	}
	t.Cleanup(img.Close)
	return decoded{img, img.Width(), img.Height()}
}

// at returns the pixel at (x, y) as RGBA (gray expanded, alpha 255 if none).
func (d decoded) at(t *testing.T, x, y int) [4]float64 {
	t.Helper()
	p, err := d.img.GetPoint(x, y)
	if err != nil {
		t.Fatal(err)
	}
	switch len(p) {
	case 1:
		return [4]float64{p[0], p[0], p[0], 255}
	case 2:
		return [4]float64{p[0], p[0], p[0], p[1]}
	case 3:
		return [4]float64{p[0], p[1], p[2], 255}
	}
	return [4]float64{p[0], p[1], p[2], p[3]}
}

func near(p [4]float64, c [3]uint8, tol float64) bool {
	for i := range 3 {
		if math.Abs(p[i]-float64(c[i])) > tol {
			return false
		}
	}
	return true
}

func colorOf(col, row int) [3]uint8 { return PatternColors[row*PatternCols+col] }

// wantCell asserts that output pixel (x, y) shows pattern cell (col, row).
func (d decoded) wantCell(t *testing.T, x, y, col, row int) {
	t.Helper()
	p := d.at(t, x, y)
	if want := colorOf(col, row); !near(p, want, 40) {
		t.Errorf("pixel (%d,%d) = %v, want cell (%d,%d) colour %v", x, y, p[:3], col, row, want)
	}
}

func render(t *testing.T, v *Vips, id, path string) (Image, decoded) {
	t.Helper()
	src, err := v.Info(context.Background(), id)
	if err != nil {
		t.Fatalf("Info(%s): %v", id, err)
	}
	req, err := rules.Parse(rules.V3, path)
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	res, err := req.Resolve(rules.ImageInfo{Width: src.Width, Height: src.Height}, v.Limits())
	if err != nil {
		t.Fatalf("Resolve(%s): %v", path, err)
	}
	img, err := v.Render(context.Background(), src, res)
	if err != nil {
		t.Fatalf("Render(%s): %v", path, err)
	}
	if img.MIME != res.Format.MIME() {
		t.Errorf("MIME = %q, want %q", img.MIME, res.Format.MIME())
	}
	d := decode(t, img.Body)
	if res.Rotation.Degrees == 0 && (d.w != res.Width || d.h != res.Height) {
		t.Errorf("%s: output %d×%d, want %d×%d", path, d.w, d.h, res.Width, res.Height)
	}
	return img, d
}

func TestInfoDescribesEveryLayout(t *testing.T) {
	v := newVips(t, Config{})
	W, H := PatternCols*cell, PatternRows*cell
	tests := []struct {
		name           string
		w, h           int
		levels         int
		tileW, tileH   int
		tiled          bool
		firstFactors   []int
		fitsOneTileAtF int
	}{
		{"pyramid", W, H, 4, 256, 256, true, []int{1, 2, 4, 8}, 8},
		{"subifd", W, H, 4, 256, 256, true, []int{1, 2, 4, 8}, 8},
		{"strip", W, H, 1, 1024, 1024, false, []int{1, 2}, 2},
		{"jpeg", W, H, 4, 1024, 1024, false, []int{1, 2}, 2},
		{"jp2", W, H, 4, 512, 512, true, []int{1, 2, 4}, 4},
		{"png", W, H, 1, 1024, 1024, false, []int{1, 2}, 2},
		{"bigpyr", 8 * W, 8 * H, 7, 256, 256, true, []int{1, 2, 4, 8, 16, 32, 64}, 64},
		{"bigplain", 8 * W, 8 * H, 4, 1024, 1024, false, []int{1, 2, 4, 8, 16}, 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := v.Info(context.Background(), ids[tt.name])
			if err != nil {
				t.Fatal(err)
			}
			s := rs.Detail.(*source)
			if s.Width != tt.w || s.Height != tt.h {
				t.Errorf("size %d×%d, want %d×%d", s.Width, s.Height, tt.w, tt.h)
			}
			if len(s.Levels) != tt.levels {
				t.Errorf("%d levels %v, want %d", len(s.Levels), s.Levels, tt.levels)
			}
			if s.TileWidth != tt.tileW || s.TileHeight != tt.tileH || s.Tiled != tt.tiled {
				t.Errorf("tiles %d×%d tiled=%v, want %d×%d tiled=%v", s.TileWidth, s.TileHeight, s.Tiled, tt.tileW, tt.tileH, tt.tiled)
			}
			for i, f := range tt.firstFactors {
				if i >= len(s.ScaleFactors) || s.ScaleFactors[i] != f {
					t.Fatalf("scaleFactors %v, want prefix %v", s.ScaleFactors, tt.firstFactors)
				}
			}
			last := s.ScaleFactors[len(s.ScaleFactors)-1]
			if last != tt.fitsOneTileAtF {
				t.Errorf("last scale factor %d, want %d (the first where the image fits one tile)", last, tt.fitsOneTileAtF)
			}
			sizes := v.Sizes(rs)
			if len(sizes) == 0 || sizes[len(sizes)-1].Width > s.Width || sizes[0].Width > sizes[len(sizes)-1].Width {
				t.Errorf("sizes %v not ascending within the image", sizes)
			}
		})
	}
}

func TestRenderRegionFromEveryLayout(t *testing.T) {
	v := newVips(t, Config{})
	for name := range layouts {
		if name == "bigpyr" || name == "bigplain" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			// Cell (1,1) exactly, downscaled: every sampled pixel is its colour.
			_, d := render(t, v, ids[name], fmt.Sprintf("x/%d,%d,%d,%d/100,/0/default.png", cell, cell, cell, cell))
			for _, xy := range [][2]int{{5, 5}, {50, 50}, {94, 94}, {94, 5}} {
				d.wantCell(t, xy[0], xy[1], 1, 1)
			}
			// The whole image small: every cell's centre.
			_, d = render(t, v, ids[name], "x/full/400,/0/default.png")
			for r := range PatternRows {
				for c := range PatternCols {
					d.wantCell(t, c*100+50, r*100+50, c, r)
				}
			}
		})
	}
}

func TestRenderFromPyramidLevels(t *testing.T) {
	v := newVips(t, Config{})
	big := 8 * cell // a cell in the big fixtures
	for _, name := range []string{"bigpyr", "bigplain"} {
		t.Run(name, func(t *testing.T) {
			// A 256 tile at 1/8 covering cells (1,0)-(2,1): read from the 1/8 level.
			_, d := render(t, v, ids[name], fmt.Sprintf("x/%d,%d,2048,2048/256,256/0/default.jpg", big/2, big/2))
			// Output px = (big/2 + 8*x) source px; cell boundary at big → x = 150.
			d.wantCell(t, 20, 20, 0, 0)
			d.wantCell(t, 200, 20, 1, 0)
			d.wantCell(t, 20, 200, 0, 1)
			d.wantCell(t, 200, 200, 1, 1)
			// A full-resolution tile on a cell corner.
			_, d = render(t, v, ids[name], fmt.Sprintf("x/%d,%d,256,256/256,/0/default.jpg", 2*big-128, big-128))
			d.wantCell(t, 10, 10, 1, 0)
			d.wantCell(t, 245, 10, 2, 0)
			d.wantCell(t, 10, 245, 1, 1)
			d.wantCell(t, 245, 245, 2, 1)
		})
	}
}

func TestRenderRotationMirrorQuality(t *testing.T) {
	v := newVips(t, Config{})
	id := ids["pyramid"]
	// Output 400×300 for the full image: cells are 100 px.
	t.Run("rotate 90", func(t *testing.T) {
		_, d := render(t, v, id, "x/full/400,/90/default.png")
		if d.w != 300 || d.h != 400 {
			t.Fatalf("rotated size %d×%d, want 300×400", d.w, d.h)
		}
		// Clockwise: the source's bottom-left cell is now top-left.
		d.wantCell(t, 50, 50, 0, PatternRows-1)
		d.wantCell(t, 250, 50, 0, 0)
		d.wantCell(t, 250, 350, PatternCols-1, 0)
	})
	t.Run("rotate 180", func(t *testing.T) {
		_, d := render(t, v, id, "x/full/400,/180/default.png")
		d.wantCell(t, 50, 50, PatternCols-1, PatternRows-1)
	})
	t.Run("rotate 270", func(t *testing.T) {
		_, d := render(t, v, id, "x/full/400,/270/default.png")
		d.wantCell(t, 50, 50, PatternCols-1, 0)
	})
	t.Run("mirror", func(t *testing.T) {
		_, d := render(t, v, id, "x/full/400,/!0/default.png")
		d.wantCell(t, 50, 50, PatternCols-1, 0)
		d.wantCell(t, 350, 250, 0, PatternRows-1)
	})
	t.Run("mirror then rotate 90", func(t *testing.T) {
		_, d := render(t, v, id, "x/full/400,/!90/default.png")
		// Mirror puts (3,r) at left; rotating 90 puts the mirrored bottom-left, source cell (3,2), top-left.
		d.wantCell(t, 50, 50, PatternCols-1, PatternRows-1)
	})
	t.Run("arbitrary rotation fills png with transparency", func(t *testing.T) {
		_, d := render(t, v, id, "x/full/400,/45/default.png")
		want := int(math.Round((400 + 300) / math.Sqrt2))
		if math.Abs(float64(d.w-want)) > 2 || math.Abs(float64(d.h-want)) > 2 {
			t.Errorf("45° output %d×%d, want about %d×%d", d.w, d.h, want, want)
		}
		if p := d.at(t, 1, 1); p[3] != 0 {
			t.Errorf("corner %v, want transparent", p)
		}
		if p := d.at(t, d.w/2, d.h/2); p[3] != 255 {
			t.Errorf("centre %v, want opaque", p)
		}
	})
	t.Run("arbitrary rotation fills jpg with white", func(t *testing.T) {
		_, d := render(t, v, id, "x/full/400,/22.5/default.jpg")
		if p := d.at(t, 1, 1); !near(p, [3]uint8{255, 255, 255}, 8) {
			t.Errorf("corner %v, want white", p)
		}
	})
	t.Run("gray", func(t *testing.T) {
		_, d := render(t, v, id, "x/full/400,/0/gray.png")
		if d.img.Bands() != 1 {
			t.Errorf("gray has %d bands, want 1", d.img.Bands())
		}
		// libvips' B_W is CIE L*: red is about 54% lightness.
		red, white, black := d.at(t, 50, 50), d.at(t, 250, 150), d.at(t, 350, 150)
		if red[0] < 100 || red[0] > 160 || white[0] < 240 || black[0] > 15 {
			t.Errorf("gray values red=%v white=%v black=%v", red[0], white[0], black[0])
		}
	})
	t.Run("bitonal", func(t *testing.T) {
		_, d := render(t, v, id, "x/full/400,/0/bitonal.png")
		for _, xy := range [][2]int{{50, 50}, {150, 50}, {250, 150}, {350, 150}, {150, 250}} {
			if p := d.at(t, xy[0], xy[1]); p[0] != 0 && p[0] != 255 {
				t.Errorf("bitonal pixel %v at %v is neither black nor white", p[0], xy)
			}
		}
		if p := d.at(t, 250, 150); p[0] != 255 { // white cell
			t.Errorf("white cell became %v", p[0])
		}
		if p := d.at(t, 350, 150); p[0] != 0 { // black cell
			t.Errorf("black cell became %v", p[0])
		}
	})
}

func TestRenderEveryOutputFormat(t *testing.T) {
	v := newVips(t, Config{})
	for _, ext := range []string{"jpg", "png", "webp", "gif", "tif"} {
		t.Run(ext, func(t *testing.T) {
			_, d := render(t, v, ids["pyramid"], "x/full/400,/0/default."+ext)
			d.wantCell(t, 150, 50, 1, 0)
			d.wantCell(t, 350, 250, 3, 2)
		})
	}
}

func TestPlanPicksTheSmallestSufficientLevel(t *testing.T) {
	s := &source{Source: renderer.Source{Width: 20480, Height: 11520}}
	for k := range 7 {
		s.Levels = append(s.Levels, Level{Width: ceilDiv(20480, 1<<k), Height: ceilDiv(11520, 1<<k), page: k, subifd: -1, shrink: 1})
	}
	tests := []struct {
		name       string
		region     rules.Rect
		ow, oh     int
		wantPage   int
		x, y, w, h int
	}{
		{"full resolution tile", rules.Rect{X: 512, Y: 256, W: 256, H: 256}, 256, 256, 0, 512, 256, 256, 256},
		{"1/8 tile", rules.Rect{X: 2048, Y: 4096, W: 2048, H: 2048}, 256, 256, 3, 256, 512, 256, 256},
		{"between levels uses the larger", rules.Rect{X: 0, Y: 0, W: 1536, H: 1536}, 256, 256, 2, 0, 0, 384, 384},
		{"1024 thumbnail of the whole", rules.Rect{W: 20480, H: 11520}, 1024, 576, 4, 0, 0, 1280, 720},
		{"distorted: the finer axis decides", rules.Rect{W: 2048, H: 2048}, 256, 1024, 1, 0, 0, 1024, 1024},
		{"edge tile at 1/8", rules.Rect{X: 18432, Y: 10240, W: 2048, H: 1280}, 256, 160, 3, 2304, 1280, 256, 160},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lv, x, y, w, h := plan(s, rules.Resolved{Region: tt.region, Width: tt.ow, Height: tt.oh})
			if lv.page != tt.wantPage || x != tt.x || y != tt.y || w != tt.w || h != tt.h {
				t.Errorf("plan = page %d (%d,%d,%d,%d), want page %d (%d,%d,%d,%d)",
					lv.page, x, y, w, h, tt.wantPage, tt.x, tt.y, tt.w, tt.h)
			}
		})
	}
}

func TestIdentifiersCannotEscapeTilePath(t *testing.T) {
	dir := t.TempDir()
	inside := filepath.Join(dir, "images")
	if err := os.Mkdir(inside, 0o755); err != nil {
		t.Fatal(err)
	}
	secret, err := Generate(filepath.Join(dir, "secret"), Pattern, PNG, 40, 30, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(filepath.Join(inside, "ok"), Pattern, PNG, 40, 30, 1); err != nil {
		t.Fatal(err)
	}
	must(t, os.Symlink(secret, filepath.Join(inside, "out.png")))
	must(t, os.Symlink("ok.png", filepath.Join(inside, "alias.png")))
	must(t, os.Mkdir(filepath.Join(inside, "sub"), 0o755))
	v := newVips(t, Config{TilePath: inside})
	for _, id := range []string{"../secret.png", "sub/../../secret.png", "/etc/passwd", secret, "out.png", "sub", ".", "", "missing.png", "sub/../ok.png"} {
		if _, err := v.Info(context.Background(), id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Info(%q) = %v, want ErrNotFound", id, err)
		}
	}
	for _, id := range []string{"ok.png", "alias.png"} {
		if _, err := v.Info(context.Background(), id); err != nil {
			t.Errorf("Info(%q) = %v, want success", id, err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestUndecodableSourcesAreSourceErrors(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "text.jpg"), []byte("this is not an image\n"), 0o644))
	full, err := os.ReadFile(filepath.Join(fixtureDir, ids["jpeg"]))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "truncated.jpg"), full[:len(full)/3], 0o644))
	tif, err := os.ReadFile(filepath.Join(fixtureDir, ids["pyramid"]))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "truncated.tif"), tif[:len(tif)/2], 0o644))
	v := newVips(t, Config{TilePath: dir})
	var se *SourceError
	if _, err := v.Info(context.Background(), "text.jpg"); !errors.As(err, &se) {
		t.Errorf("Info(text.jpg) = %v, want a SourceError", err)
	}
	for _, id := range []string{"truncated.jpg", "truncated.tif"} {
		src, err := v.Info(context.Background(), id)
		if err != nil {
			if !errors.As(err, &se) {
				t.Errorf("Info(%s) = %v, want success or a SourceError", id, err)
			}
			continue
		}
		req, _ := rules.Parse(rules.V3, "x/full/max/0/default.jpg")
		res, err := req.Resolve(rules.ImageInfo{Width: src.Width, Height: src.Height}, rules.Limits{})
		must(t, err)
		if _, err := v.Render(context.Background(), src, res); !errors.As(err, &se) {
			t.Errorf("Render(%s) = %v, want a SourceError", id, err)
		}
	}
}

func TestRenderNoticesAReplacedSource(t *testing.T) {
	dir := t.TempDir()
	name, err := Generate(filepath.Join(dir, "img"), Pattern, PNG, 40, 30, 1)
	must(t, err)
	v := newVips(t, Config{TilePath: dir})
	src, err := v.Info(context.Background(), "img.png")
	must(t, err)
	later := time.Now().Add(time.Hour)
	must(t, os.Chtimes(name, later, later))
	req, _ := rules.Parse(rules.V3, "x/full/max/0/default.png")
	res, _ := req.Resolve(rules.ImageInfo{Width: 40, Height: 30}, rules.Limits{})
	if _, err := v.Render(context.Background(), src, res); !errors.Is(err, ErrSourceChanged) {
		t.Errorf("Render after the file changed = %v, want ErrSourceChanged", err)
	}
	src2, err := v.Info(context.Background(), "img.png")
	must(t, err)
	if !src2.ModTime.Equal(later.UTC().Truncate(time.Second)) {
		t.Errorf("ModTime %v after change, want %v", src2.ModTime, later)
	}
}

func TestFullQueueIsRefusedAtOnce(t *testing.T) {
	v := newVips(t, Config{Concurrency: 1, QueueLen: 1})
	v.slots <- struct{}{} // the only worker is busy
	v.stats.inflight.Add(1)
	waiter := make(chan error, 1)
	go func() { waiter <- v.acquire(context.Background()) }()
	for i := 0; v.Stats().Queued != 1; i++ { // bounded: the goroutine queues at once
		if i > 1_000_000 {
			t.Fatal("the waiter never queued")
		}
		time.Sleep(time.Microsecond)
	}
	if err := v.acquire(context.Background()); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("acquire with a full queue = %v, want ErrOverloaded", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	v.release() // the worker frees up: the waiter gets it
	if err := <-waiter; err != nil {
		t.Fatalf("queued acquire = %v", err)
	}
	if err := v.acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("acquire with a cancelled context and a busy worker = %v, want context.Canceled", err)
	}
	v.release()
	if s := v.Stats(); s.Overloaded != 1 || s.InFlight != 0 || s.Queued != 0 {
		t.Errorf("stats %+v", s)
	}
}

func meanAbsDiff(t *testing.T, a, b decoded) float64 {
	t.Helper()
	if a.w != b.w || a.h != b.h {
		t.Fatalf("sizes differ: %d×%d vs %d×%d", a.w, a.h, b.w, b.h)
	}
	var sum float64
	n := 0
	for y := 0; y < a.h; y += 7 {
		for x := 0; x < a.w; x += 7 {
			pa, pb := a.at(t, x, y), b.at(t, x, y)
			for i := range 3 {
				sum += math.Abs(pa[i] - pb[i])
			}
			n += 3
		}
	}
	return sum / float64(n)
}

func TestTilePassthrough(t *testing.T) {
	on := newVips(t, Config{TilePassthrough: true})
	off := newVips(t, Config{})
	big := 8 * cell
	tests := []struct {
		name, id, path string
		passed         bool
	}{
		{"full resolution tile", ids["bigpyr"], fmt.Sprintf("x/%d,%d,256,256/256,256/0/default.jpg", 19*256, big/256*256), true},
		{"1/4 level tile", ids["bigpyr"], "x/1024,1024,1024,1024/256,256/0/color.jpg", true},
		{"sub-IFD pyramid tile", ids["subifd"], "x/256,256,256,256/256,/0/default.jpg", true},
		{"partial edge tile: a lossless crop", ids["subifd"], "x/1024,768,176,132/176,132/0/default.jpg", true},
		{"edge tile, smaller than asked", ids["subifd"], "x/1024,768,176,132/176,131/0/default.jpg", false},
		{"unaligned", ids["bigpyr"], "x/100,100,256,256/256,256/0/default.jpg", false},
		{"png", ids["bigpyr"], "x/0,0,256,256/256,256/0/default.png", false},
		{"gray from colour", ids["bigpyr"], "x/0,0,256,256/256,256/0/gray.jpg", false},
		{"mirrored", ids["bigpyr"], "x/0,0,256,256/256,256/!0/default.jpg", false},
		{"resized", ids["bigpyr"], "x/0,0,256,256/128,128/0/default.jpg", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := on.Stats()
			_, got := render(t, on, tt.id, tt.path)
			after := on.Stats()
			if passed := after.Passthrough == before.Passthrough+1; passed != tt.passed {
				t.Errorf("passed through = %v, want %v (stats %+v → %+v)", passed, tt.passed, before, after)
			}
			_, want := render(t, off, tt.id, tt.path)
			if d := meanAbsDiff(t, got, want); d > 4 {
				t.Errorf("pass-through differs from the decoded render by %.1f per channel on average", d)
			}
		})
	}
	if s := off.Stats(); s.Passthrough != 0 {
		t.Errorf("pass-through happened while switched off: %+v", s)
	}
}

// TestJPEGShrinkLevelsAreLibvipsSizes: a plain JPEG's 1/8 level is as
// libvips loads it (rounded down), so a view read from it covers its last
// row: 1200 × 900 at 1/8 is 150 × 112, and a 100-wide view of it used to
// fail with "bad extract area".
func TestJPEGShrinkLevelsAreLibvipsSizes(t *testing.T) {
	v := newVips(t, Config{})
	for _, p := range []string{"x/full/100,/0/default.jpg", "x/full/150,/0/default.png", "x/full/,113/0/default.jpg"} {
		render(t, v, ids["jpeg"], p)
	}
}

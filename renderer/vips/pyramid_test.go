package vips

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/internal/testfs"
	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// pyramidFixture writes a flat JPEG of the test pattern (1600 × 1200, 1.9
// megapixels) into a new TilePath and returns it with a renderer that
// builds pyramids of anything over a megapixel.
func pyramidFixture(t *testing.T, cfg Config) (*Vips, string) {
	t.Helper()
	dir := t.TempDir()
	_, err := Generate(filepath.Join(dir, "flat"), Pattern, PlainJPEG, 1600, 1200, 1)
	must(t, err)
	cfg.TilePath = dir
	if cfg.PyramidDir == "" {
		cfg.PyramidDir = filepath.Join(t.TempDir(), "pyramid")
	}
	cfg.PyramidMinPixels = 1 << 20
	cfg.TilePassthrough = true
	return newVips(t, cfg), dir
}

func renderRes(t *testing.T, v *Vips, id, path string) (Image, error) {
	t.Helper()
	src, err := v.Info(context.Background(), id)
	if err != nil {
		return Image{}, err
	}
	req, err := rules.Parse(rules.V3, path)
	must(t, err)
	res, err := req.Resolve(rules.ImageInfo{Width: src.Width, Height: src.Height}, v.Limits())
	must(t, err)
	return v.Render(context.Background(), src, res)
}

func pyrFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	var out []string
	for _, e := range ents {
		if e.Name() != "LOCK" { // the directory's lock (internal/dirlock)
			out = append(out, e.Name())
		}
	}
	return out
}

func TestPyramidOneBuildForManyRequestsThenServedFromIt(t *testing.T) {
	v, dir := pyramidFixture(t, Config{})
	flat := newVips(t, Config{TilePath: dir, TilePassthrough: true})
	release := make(chan struct{})
	testHookBuilding = func(string) { <-release }
	t.Cleanup(func() { testHookBuilding = nil })

	before, err := v.Info(context.Background(), "flat.jpg")
	must(t, err)
	if before.TileWidth != pyramidTile || !reflect.DeepEqual(before.ScaleFactors, []int{1, 2, 4, 8}) {
		t.Fatalf("advertised tiles %d, scale factors %v; want the pyramid's: 256, [1 2 4 8]", before.TileWidth, before.ScaleFactors)
	}
	tile := "x/1280,1024,256,176/256,176/0/default.jpg"
	var wg sync.WaitGroup
	for range 16 { // while the build is held, every request is served from the flat file
		wg.Go(func() {
			if _, err := renderRes(t, v, "flat.jpg", tile); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if s := v.Stats().Pyramids; s.Started != 1 || s.Building != 1 || s.Served != 0 || len(s.InProgress) != 1 || s.InProgress[0].ID != "flat.jpg" {
		t.Fatalf("while building: %+v, want one build in progress and nothing served from it", s)
	}
	close(release)
	v.pyr.wg.Wait()
	s := v.Stats().Pyramids
	if s.Started != 1 || s.Succeeded != 1 || s.Files != 1 || s.Bytes <= 0 || s.Building != 0 {
		t.Fatalf("after the build: %+v, want one pyramid", s)
	}
	passBefore := v.Stats().Passthrough
	for _, path := range []string{
		"x/256,512,256,256/256,256/0/default.jpg", // a stored tile: passes through
		tile,                                    // an edge tile: passes through, cropped
		"x/0,0,1024,1024/256,256/0/default.jpg", // a stored tile of the 1/4 level: passes through
		"x/full/400,/0/default.png",
		"x/100,100,700,500/350,/90/gray.jpg",
	} {
		img, err := renderRes(t, v, "flat.jpg", path)
		must(t, err)
		want, err := renderRes(t, flat, "flat.jpg", path)
		must(t, err)
		if d := meanAbsDiff(t, decode(t, img.Body), decode(t, want.Body)); d > 4 {
			t.Errorf("%s: pyramid render differs from the flat render by %.2f on average", path, d)
		}
		if img.Identity != before.Identity || !img.ModTime.Equal(before.ModTime) {
			t.Errorf("%s: identity %q / %v, want the source's %q / %v", path, img.Identity, img.ModTime, before.Identity, before.ModTime)
		}
	}
	if got := v.Stats(); got.Pyramids.Served != 5 || got.Passthrough != passBefore+3 {
		t.Errorf("served from the pyramid %d (want 5), passed through %d (want 3: two stored tiles and the edge tile)", got.Pyramids.Served, got.Passthrough-passBefore)
	}
	// info.json does not change: what this renderer says, what a fresh one
	// says (which finds the pyramid on disk), and what the pyramid itself is.
	v.Close() // the pyramid directory is one process's (renderer's) at a time
	v2 := newVips(t, Config{TilePath: dir, PyramidDir: v.cfg.PyramidDir, PyramidMinPixels: 1 << 20})
	after, err := v2.Info(context.Background(), "flat.jpg")
	must(t, err)
	if after.TileWidth != before.TileWidth || !reflect.DeepEqual(after.ScaleFactors, before.ScaleFactors) ||
		!reflect.DeepEqual(v2.Sizes(after), v.Sizes(before)) || after.Identity != before.Identity {
		t.Errorf("info after the build %+v, before %+v", after, before)
	}
	ps, _ := v2.pyr.ready(after.Detail.(*source))
	if ps == nil {
		t.Fatal("a fresh renderer does not use the pyramid on disk")
	}
	geo := *ps
	geo.TileWidth, geo.TileHeight = ps.Levels[0].ifd.TileWidth, ps.Levels[0].ifd.TileHeight
	if sf := scaleFactors(&geo); !reflect.DeepEqual(sf, before.ScaleFactors) || geo.TileWidth != before.TileWidth {
		t.Errorf("the pyramid's own geometry: tiles %d, scale factors %v; advertised %d, %v", geo.TileWidth, sf, before.TileWidth, before.ScaleFactors)
	}
	if s := v2.Stats().Pyramids; s.Started != 0 || s.Files != 1 {
		t.Errorf("fresh renderer: %+v, want the existing pyramid adopted, no build", s)
	}
}

func TestPyramidSmallSourcesAndPyramidsOffKeepTheirGeometry(t *testing.T) {
	v, dir := pyramidFixture(t, Config{})
	_, err := Generate(filepath.Join(dir, "small"), Pattern, PlainJPEG, 400, 300, 1)
	must(t, err)
	small, err := v.Info(context.Background(), "small.jpg")
	must(t, err)
	off := newVips(t, Config{TilePath: dir})
	big, err := off.Info(context.Background(), "flat.jpg")
	must(t, err)
	if small.TileWidth != 1024 || big.TileWidth != 1024 || off.Stats().Pyramids != nil {
		t.Errorf("tiles %d (small) and %d (no PyramidDir), want UntiledTileSize", small.TileWidth, big.TileWidth)
	}
	if s := v.Stats().Pyramids; s.Started != 0 {
		t.Errorf("a build started for a source under PyramidMinPixels: %+v", s)
	}
}

func TestPyramidOfAReplacedSourceIsDropped(t *testing.T) {
	v, dir := pyramidFixture(t, Config{})
	_, err := v.Info(context.Background(), "flat.jpg")
	must(t, err)
	v.pyr.wg.Wait()
	old := pyrFiles(t, v.cfg.PyramidDir)
	if len(old) != 1 {
		t.Fatalf("pyramid directory %v, want one file", old)
	}
	// Replace it with the pattern mirrored (a 90° rotation of the grid
	// would change the size): a different cell at the top left.
	tmp := filepath.Join(t.TempDir(), "new")
	_, err = Generate(tmp, Pattern, "png", 1600, 1200, 1)
	must(t, err)
	mirrored := newVips(t, Config{TilePath: filepath.Dir(tmp)})
	img, err := renderRes(t, mirrored, "new.png", "x/full/max/!0/default.jpg")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "flat.jpg.new"), img.Body, 0o644))
	must(t, os.Rename(filepath.Join(dir, "flat.jpg.new"), filepath.Join(dir, "flat.jpg")))
	_, err = v.Info(context.Background(), "flat.jpg")
	must(t, err)
	v.pyr.wg.Wait()
	now := pyrFiles(t, v.cfg.PyramidDir)
	if s := v.Stats().Pyramids; s.Dropped != 1 || s.Succeeded != 2 || s.Files != 1 || len(now) != 1 || now[0] == old[0] {
		t.Fatalf("after the source changed: %+v, files %v (before %v)", s, now, old)
	}
	got, err := renderRes(t, v, "flat.jpg", "x/0,0,256,256/256,256/0/default.jpg")
	must(t, err)
	decode(t, got.Body).wantCell(t, 128, 128, PatternCols-1, 0)
	if v.Stats().Pyramids.Served != 1 {
		t.Error("the new version was not served from its pyramid")
	}
}

func TestPyramidOfACorruptSourceFailsAFewTimesAndRequestsStillAnswer(t *testing.T) {
	v, dir := pyramidFixture(t, Config{})
	full, err := os.ReadFile(filepath.Join(dir, "flat.jpg"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "bad.jpg"), full[:len(full)/2], 0o644))
	clock := time.Now()
	v.pyr.now = func() time.Time { return clock }
	var se *SourceError
	for i := range 10 {
		if _, err := renderRes(t, v, "bad.jpg", "x/0,1024,256,176/256,176/0/default.jpg"); !errors.As(err, &se) {
			t.Fatalf("render %d of a truncated JPEG: %v, want a SourceError (422)", i, err)
		}
		v.pyr.wg.Wait()
		clock = clock.Add(time.Hour) // past every backoff
	}
	s := v.Stats().Pyramids
	if s.Started != pyramidAttempts || s.Failed != pyramidAttempts || s.Succeeded != 0 || s.Files != 0 {
		t.Errorf("after 10 requests an hour apart: %+v, want %d failed builds and no more", s, pyramidAttempts)
	}
	if f := pyrFiles(t, v.cfg.PyramidDir); len(f) != 0 {
		t.Errorf("failed builds left %v", f)
	}
}

func TestPyramidBudgetEvictsTheLeastRecentlyUsed(t *testing.T) {
	v, dir := pyramidFixture(t, Config{})
	for _, n := range []string{"b", "c"} {
		data, err := os.ReadFile(filepath.Join(dir, "flat.jpg"))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, n+".jpg"), data, 0o644))
	}
	_, err := v.Info(context.Background(), "flat.jpg")
	must(t, err)
	v.pyr.wg.Wait()
	one := v.Stats().Pyramids.Bytes
	src, err := v.Info(context.Background(), "flat.jpg")
	must(t, err)
	// Room for the build's estimate and one and a half pyramids.
	v.pyr.mu.Lock()
	v.pyr.maxBytes = estimate(src.Detail.(*source)) + one*3/2
	v.pyr.mu.Unlock()
	clock := time.Now()
	v.pyr.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	_, err = v.Info(context.Background(), "b.jpg")
	must(t, err)
	v.pyr.wg.Wait()
	_, err = renderRes(t, v, "flat.jpg", "x/0,0,256,256/256,256/0/default.jpg") // flat.jpg is now the more recent
	must(t, err)
	_, err = v.Info(context.Background(), "c.jpg")
	must(t, err)
	v.pyr.wg.Wait()
	s := v.Stats().Pyramids
	if s.Evicted != 1 || s.Files != 2 || s.Bytes > v.pyr.maxBytes {
		t.Fatalf("%+v, want b.jpg's pyramid evicted", s)
	}
	// Asked through ready, not Info: Info would start b.jpg's build again.
	for id, want := range map[string]bool{"flat.jpg": true, "b.jpg": false, "c.jpg": true} {
		is, ok := v.meta.Get(id)
		if !ok {
			t.Fatalf("%s not described", id)
		}
		if ps, _ := v.pyr.ready(is); (ps != nil) != want {
			t.Errorf("%s: pyramid ready %v, want %v", id, ps != nil, want)
		}
	}
}

func TestPyramidBuildCancelledMidwayLeavesNothing(t *testing.T) {
	stale := filepath.Join(t.TempDir(), "pyramid")
	must(t, os.MkdirAll(stale, 0o755))
	must(t, os.WriteFile(filepath.Join(stale, "deadbeef.tmp"), []byte("half a pyramid"), 0o644))
	must(t, os.MkdirAll(filepath.Join(stale, "deadbeef.tmpdir"), 0o755))
	v, dir := pyramidFixture(t, Config{PyramidDir: stale})
	if f := pyrFiles(t, stale); len(f) != 0 {
		t.Fatalf("start-up left %v", f)
	}
	// A bigger source, so that the build runs long enough to be caught.
	_, err := Generate(filepath.Join(dir, "huge"), Scan, PlainJPEG, 6000, 4000, 1)
	must(t, err)
	testHookBuilding = func(string) {
		go func() {
			for i := 0; i < 10_000; i++ { // bounded: until the builder process runs
				if slices.ContainsFunc(pyrFiles(t, stale), func(n string) bool { return strings.HasSuffix(n, ".tmpdir") }) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			v.pyr.cancel()
		}()
	}
	t.Cleanup(func() { testHookBuilding = nil })
	_, err = v.Info(context.Background(), "huge.jpg")
	must(t, err)
	v.pyr.wg.Wait()
	if s := v.Stats().Pyramids; s.Cancelled != 1 || s.Succeeded != 0 || s.Files != 0 || s.Bytes != 0 {
		t.Errorf("after the cancel: %+v", s)
	}
	if f := pyrFiles(t, stale); len(f) != 0 {
		t.Errorf("a cancelled build left %v", f)
	}
	if _, err := renderRes(t, v, "huge.jpg", "x/0,3840,256,160/256,160/0/default.jpg"); err != nil {
		t.Errorf("render after a cancelled build: %v", err)
	}
	if v.Stats().Pyramids.Served != 0 {
		t.Error("served from a cancelled build")
	}
}

func TestPyramidDamagedOnDiskIsDroppedAndTheSourceServes(t *testing.T) {
	v, _ := pyramidFixture(t, Config{})
	_, err := v.Info(context.Background(), "flat.jpg")
	must(t, err)
	v.pyr.wg.Wait()
	files := pyrFiles(t, v.cfg.PyramidDir)
	if len(files) != 1 {
		t.Fatalf("pyramid directory %v", files)
	}
	// Probe it (ready), then damage its tiles: keep the directories, zero
	// the rest.
	src, err := v.Info(context.Background(), "flat.jpg")
	must(t, err)
	if ps, _ := v.pyr.ready(src.Detail.(*source)); ps == nil {
		t.Fatal("not ready")
	}
	path := filepath.Join(v.cfg.PyramidDir, files[0])
	data, err := os.ReadFile(path)
	must(t, err)
	for i := 16; i < len(data)-4096; i++ {
		data[i] = 0xff
	}
	must(t, os.WriteFile(path, data, 0o644))
	v.open_.RemoveFunc(func(openKey) bool { return true })
	img, err := renderRes(t, v, "flat.jpg", "x/0,0,512,512/256,256/0/default.png")
	if err != nil {
		t.Fatalf("render with a damaged pyramid: %v, want the source's pixels", err)
	}
	decode(t, img.Body).wantCell(t, 100, 100, 0, 0)
	v.pyr.wg.Wait()
	if s := v.Stats().Pyramids; s.Dropped != 1 {
		t.Errorf("%+v, want the damaged pyramid dropped", s)
	}
}

func TestPyramidNotBuiltBelowMinimumFreeSpace(t *testing.T) {
	v, _ := pyramidFixture(t, Config{PyramidMinFreePercent: 5})
	v.pyr.free = func(string) (uint64, uint64, error) { return 4 << 20, 100 << 20, nil } // 4% free
	if _, err := renderRes(t, v, "flat.jpg", "x/0,0,256,256/256,256/0/default.jpg"); err != nil {
		t.Fatalf("render with the disk nearly full: %v", err)
	}
	v.pyr.wg.Wait()
	if s := v.Stats().Pyramids; s.Skipped != 1 || s.Succeeded != 0 || s.Failed != 0 {
		t.Errorf("%+v, want the build skipped", s)
	}
	var _ *renderer.PyramidStats = v.Stats().Pyramids
}

func TestPyramidBuildOnAFullDiskFailsCleanly(t *testing.T) {
	dir := testfs.MountTmpfs(t, "64k")
	v, _ := pyramidFixture(t, Config{PyramidDir: filepath.Join(dir, "pyramid")})
	// The free-space check is fooled (the disk fills while the build
	// writes): the build must fail, leave nothing and cost no request.
	v.pyr.free = func(string) (uint64, uint64, error) { return 1 << 40, 1 << 41, nil }
	if _, err := renderRes(t, v, "flat.jpg", "x/0,0,256,256/256,256/0/default.jpg"); err != nil {
		t.Fatalf("render while the disk fills: %v", err)
	}
	v.pyr.wg.Wait()
	if s := v.Stats().Pyramids; s.Failed != 1 || s.Succeeded != 0 || s.Files != 0 || s.Bytes != 0 {
		t.Errorf("%+v, want one failed build", s)
	}
	if f := pyrFiles(t, v.cfg.PyramidDir); len(f) != 0 {
		t.Errorf("a build on a full disk left %v", f)
	}
	img, err := renderRes(t, v, "flat.jpg", "x/0,0,256,256/256,256/0/default.jpg")
	must(t, err)
	decode(t, img.Body).wantCell(t, 100, 100, 0, 0)
}

// TestPyramidDirectoryIsOneServers: a second renderer on the same pyramid
// directory (two servers sharing a CacheDir) runs without automatic
// pyramids rather than deleting the first one's builds under way; once the
// first is closed, the directory can be taken.
func TestPyramidDirectoryIsOneServers(t *testing.T) {
	v, dir := pyramidFixture(t, Config{})
	v2 := newVips(t, Config{TilePath: dir, PyramidDir: v.cfg.PyramidDir, PyramidMinPixels: 1 << 20})
	if v.pyr == nil || v2.pyr != nil {
		t.Fatalf("first renderer's pyramids %v, second's %v: want the first only", v.pyr != nil, v2.pyr != nil)
	}
	v.Close()
	v3 := newVips(t, Config{TilePath: dir, PyramidDir: v.cfg.PyramidDir, PyramidMinPixels: 1 << 20})
	if v3.pyr == nil {
		t.Fatal("the directory was not given back on Close")
	}
}

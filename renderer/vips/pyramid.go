package vips

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/iiif-proxy/iiif-proxy/internal/dirlock"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/iiif-proxy/iiif-proxy/renderer"
)

// Automatic pyramids. A flat source (plain JPEG, PNG, WebP, stripped TIFF)
// has no random access: a full-resolution tile near its bottom decodes every
// row above it (0.7-2.6 s for a 236-megapixel JPEG). A source of at least
// Config.PyramidMinPixels gets a tiled, JPEG-compressed pyramidal TIFF copy,
// built in the background on its first Info or Render, one build per source
// however many requests arrive, at most Config.PyramidBuilds at once. Until
// it is ready, requests render from the flat file as before; afterwards from
// the pyramid, with the same level selection and tile pass-through as a
// prepared pyramid.
//
// info.json must not change when the pyramid appears (viewers cache it), so
// an eligible source advertises the pyramid's geometry from the start:
// pyramidTile-pixel tiles and one scale factor per halving, which is what
// probing the finished pyramid gives.
//
// Files: Config.PyramidDir/{name}.tif, name a hash of the identifier and
// the source's Identity, so a changed source never finds its old pyramid
// (the old file is removed when the new version is first seen, or by LRU).
// A build writes {name}.tmp, fsyncs it, checks that it opens as the
// pyramid expected, and renames it into place: a crash or a kill leaves
// only a .tmp, which start-up removes, and a partial file is never served.
// The directory's bytes are kept under Config.PyramidMaxBytes by removing
// the least recently used pyramids; a build that would not fit, or would
// take the file system below its minimum free space, is not started.
const (
	pyramidTile = 256
	// pyramidAttempts is how many times a source's build may fail before it
	// is given up until the source changes or the process restarts.
	pyramidAttempts = 3
	// pyramidQueue bounds the builds waiting for a slot; a source refused
	// here is asked for again by its next request.
	pyramidQueue = 64
)

// pyramidBackoff is how long after its n-th failure a build is retried.
var pyramidBackoff = [...]time.Duration{time.Minute, 10 * time.Minute}

// Pyramid states.
const (
	pyrQueued = iota
	pyrBuilding
	pyrReady
	pyrFailed
)

// pyramid is one source version's pyramid file, ready or not.
type pyramid struct {
	name    string // file name without extension
	id      string // the source's identifier; "" for files found at start-up, until asked for
	ident   Identity
	state   int
	tries   int       // failed builds
	retryAt time.Time // when a failed build may run again; zero: never
	size    int64
	started time.Time
	percent atomic.Int32 // of the running build, as its builder reports it
	lastUse atomic.Int64 // Unix nanoseconds
	src     *source      // the probed pyramid, once ready and used; its Identity is the file's
}

// pyramids is the automatic pyramid tier.
type pyramids struct {
	v        *Vips
	dir      string
	maxBytes int64
	slots    chan struct{} // one token per running build
	now      func() time.Time
	// free reports the file system's free and total bytes (statfs); tests
	// replace it.
	free func(dir string) (free, total uint64, err error)

	ctx    context.Context // ends at Close: running builds are killed
	cancel context.CancelFunc
	wg     sync.WaitGroup

	lock *dirlock.Lock // the directory is this process's alone

	mu     sync.Mutex          // protects byName, byID, bytes, queued
	byName map[string]*pyramid // every pyramid, by file name
	byID   map[string]string   // identifier → name of its current version
	bytes  int64               // bytes of ready pyramids on disk
	queued int

	stats struct {
		started, succeeded, failed, cancelled, evicted, dropped, skipped, served, ns atomic.Uint64
		building                                                                     atomic.Int64
	}
}

func newPyramids(v *Vips) (*pyramids, error) {
	c := v.cfg
	if err := os.MkdirAll(c.PyramidDir, 0o755); err != nil {
		return nil, fmt.Errorf("pyramid directory: %w", err)
	}
	// One process per directory: start-up removes the .tmp files of builds
	// cut short, which would be another process's builds under way if two
	// servers shared a CacheDir (its build then failed mid-write).
	lock, err := dirlock.Acquire(c.PyramidDir)
	if err != nil {
		return nil, fmt.Errorf("pyramid directory: %w: give each server its own CacheDir", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &pyramids{v: v, dir: c.PyramidDir, maxBytes: c.PyramidMaxBytes, slots: make(chan struct{}, c.PyramidBuilds),
		now: time.Now, free: statfsFree, ctx: ctx, cancel: cancel, lock: lock,
		byName: map[string]*pyramid{}, byID: map[string]string{}}
	ents, err := os.ReadDir(p.dir)
	if err != nil {
		cancel()
		lock.Release()
		return nil, fmt.Errorf("pyramid directory: %w", err)
	}
	for _, e := range ents {
		n := e.Name()
		switch {
		case strings.HasSuffix(n, ".tmp"), strings.HasSuffix(n, ".tmpdir"):
			os.RemoveAll(filepath.Join(p.dir, n)) // a build cut short by a crash
		case strings.HasSuffix(n, ".tif"):
			fi, err := e.Info()
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			py := &pyramid{name: strings.TrimSuffix(n, ".tif"), state: pyrReady, size: fi.Size()}
			py.lastUse.Store(fi.ModTime().UnixNano())
			p.byName[py.name] = py
			p.bytes += py.size
		}
	}
	return p, nil
}

func statfsFree(dir string) (uint64, uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}

// close kills running builds and waits for them.
func (p *pyramids) close() {
	p.cancel()
	p.wg.Wait()
	p.lock.Release()
}

func pyramidName(id string, ident Identity) string {
	h := sha256.Sum256([]byte(id + "\x00" + ident.String()))
	return hex.EncodeToString(h[:20])
}

func (p *pyramids) path(name string) string { return filepath.Join(p.dir, name+".tif") }

// want notes that src was asked for: it starts src's build when there is
// none yet (or a failed one is due for a retry), and removes the pyramid of
// an older version of the same identifier.
func (p *pyramids) want(src *source) {
	if !src.auto {
		return
	}
	name := pyramidName(src.ID, src.Identity)
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.byID[src.ID]; ok && old != name {
		if o := p.byName[old]; o != nil && o.state != pyrBuilding && o.state != pyrQueued {
			p.removeLocked(o)
			p.stats.dropped.Add(1)
		}
		delete(p.byID, src.ID)
	}
	py := p.byName[name]
	if py != nil {
		py.id = src.ID
		p.byID[src.ID] = name
		if py.state != pyrFailed || py.retryAt.IsZero() || p.now().Before(py.retryAt) {
			return
		}
	}
	if p.queued >= pyramidQueue || p.ctx.Err() != nil {
		return
	}
	if py == nil {
		py = &pyramid{name: name, id: src.ID, ident: src.Identity}
		p.byName[name] = py
		p.byID[src.ID] = name
	}
	py.state = pyrQueued
	p.queued++
	p.wg.Add(1)
	go p.build(py, src)
}

// ready returns src's pyramid, probed, when it is built, and counts the use.
func (p *pyramids) ready(src *source) (*source, string) {
	if !src.auto {
		return nil, ""
	}
	name := pyramidName(src.ID, src.Identity)
	p.mu.Lock()
	py := p.byName[name]
	if py == nil || py.state != pyrReady {
		p.mu.Unlock()
		return nil, ""
	}
	ps := py.src
	p.mu.Unlock()
	now := p.now()
	if prev := py.lastUse.Swap(now.UnixNano()); now.UnixNano()-prev > int64(time.Hour) {
		// The file's modification time is its last use for the LRU after
		// a restart: refreshed at most hourly, so a tile is not a write.
		os.Chtimes(p.path(name), now, now)
	}
	if ps != nil {
		return ps, p.path(name)
	}
	ps, err := p.probe(src, p.path(name))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byName[name] != py || py.state != pyrReady {
		return nil, ""
	}
	if err != nil {
		// Not the pyramid it should be (damaged on disk): drop it; the
		// next request builds it again.
		p.v.log().Warn("dropping an automatic pyramid that does not open", "id", src.ID, "error", err)
		p.removeLocked(py)
		return nil, ""
	}
	py.src = ps
	return ps, p.path(name)
}

// drop removes src's pyramid (damaged on disk); the next request builds it
// again.
func (p *pyramids) drop(src *source) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if py := p.byName[pyramidName(src.ID, src.Identity)]; py != nil && py.state == pyrReady {
		p.removeLocked(py)
		p.stats.dropped.Add(1)
	}
}

// probe describes the pyramid file at path as a copy of src: its levels
// and tiles, with src's identifier and colour.
func (p *pyramids) probe(src *source, path string) (*source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	ps, _, _, err := p.v.levels(src.ID, input{f: f})
	if err != nil {
		return nil, err
	}
	if ps.Width != src.Width || ps.Height != src.Height || !ps.Tiled || len(ps.Levels) < 1 {
		return nil, fmt.Errorf("pyramid is %d×%d (tiled %v), source %d×%d", ps.Width, ps.Height, ps.Tiled, src.Width, src.Height)
	}
	ps.Identity = IdentityOf(fi)
	ps.colour = src.colour
	for i := range ps.Levels {
		if d := ps.Levels[i].ifd; d != nil && !sameProfile(d.ICC, ps.colour) {
			ps.Levels[i].ifd = nil
		}
	}
	ps.Source = src.Source
	ps.Detail = ps
	return ps, nil
}

// errBuildCancelled and errSourceChanged end a build without counting as a
// failure of the source.
var (
	errBuildCancelled = errors.New("pyramid build cancelled")
	errBuildChanged   = errors.New("the source changed during the pyramid build")
	errBuildNoRoom    = errors.New("no room for the pyramid")
)

func (p *pyramids) build(py *pyramid, src *source) {
	defer p.wg.Done()
	select {
	case p.slots <- struct{}{}:
	case <-p.ctx.Done():
		p.finish(py, 0, errBuildCancelled)
		return
	}
	defer func() { <-p.slots }()
	p.mu.Lock()
	p.queued--
	py.state = pyrBuilding
	py.started = p.now()
	p.mu.Unlock()
	p.stats.started.Add(1)
	p.stats.building.Add(1)
	defer p.stats.building.Add(-1)
	start := time.Now()
	size, err := p.buildFile(py, src)
	took := time.Since(start)
	p.stats.ns.Add(uint64(took))
	if err == nil {
		// The one line an operator looks for after a slow first view: the
		// source is at pyramid speed from now on.
		p.v.log().Info("automatic pyramid built", "id", py.id, "width", src.Width, "height", src.Height,
			"bytes", size, "took", took.Round(time.Millisecond))
	}
	p.finish(py, size, err)
}

// finish records the outcome of py's build.
func (p *pyramids) finish(py *pyramid, size int64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if py.state == pyrQueued {
		p.queued--
	}
	switch {
	case err == nil:
		py.state, py.size, py.tries = pyrReady, size, 0
		py.lastUse.Store(p.now().UnixNano())
		p.bytes += size
		p.stats.succeeded.Add(1)
		p.evictLocked(0, py)
		return
	case errors.Is(err, errBuildCancelled):
		p.stats.cancelled.Add(1)
		delete(p.byName, py.name) // asked for again, it starts afresh
	case errors.Is(err, errBuildChanged):
		delete(p.byName, py.name)
	case errors.Is(err, errBuildNoRoom):
		p.stats.skipped.Add(1)
		py.state, py.retryAt = pyrFailed, p.now().Add(pyramidBackoff[0])
		p.v.log().Info("not building an automatic pyramid: no room", "id", py.id, "reason", err)
	default:
		p.stats.failed.Add(1)
		py.tries++
		py.state, py.retryAt = pyrFailed, time.Time{}
		if py.tries < pyramidAttempts {
			py.retryAt = p.now().Add(pyramidBackoff[min(py.tries, len(pyramidBackoff))-1])
		}
		p.v.log().Warn("automatic pyramid build failed: serving the flat source", "id", py.id, "attempt", py.tries,
			"retry", !py.retryAt.IsZero(), "error", err)
	}
	if p.byID[py.id] == py.name && p.byName[py.name] == nil {
		delete(p.byID, py.id)
	}
}

// estimate is a generous bound of the pyramid's bytes: JPEG tiles of a scan
// at quality 75-90 take 1-3 bits a pixel a band, and the levels above the
// base add a third.
func estimate(src *source) int64 {
	bands := int64(3)
	if src.gray {
		bands = 1
	}
	return int64(src.Width) * int64(src.Height) * bands * 4 / 3 / 2
}

// buildFile builds py's file from src and returns its size.
func (p *pyramids) buildFile(py *pyramid, src *source) (int64, error) {
	f, same, err := p.v.sourceFile(p.ctx, src)
	var ue *renderer.UnavailableError
	if errors.As(err, &ue) {
		return 0, err // the store failed: retried later like any failure
	}
	if err != nil {
		return 0, errBuildChanged
	}
	defer f.Close()
	need := estimate(src)
	if need > p.maxBytes {
		return 0, fmt.Errorf("%w: it would take about %d bytes, more than PyramidMaxBytes (%d)", errBuildNoRoom, need, p.maxBytes)
	}
	free, total, err := p.free(p.dir)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errBuildNoRoom, err)
	}
	minFree := uint64(p.v.cfg.PyramidMinFreeBytes)
	if pc := uint64(p.v.cfg.PyramidMinFreePercent * float64(total) / 100); pc > minFree {
		minFree = pc
	}
	if free < minFree+uint64(need) {
		return 0, fmt.Errorf("%w: %d bytes free, the pyramid needs about %d and %d must stay free", errBuildNoRoom, free, need, minFree)
	}
	p.mu.Lock()
	p.evictLocked(need, py)
	p.mu.Unlock()

	tmp := filepath.Join(p.dir, py.name+".tmp")
	defer os.Remove(tmp) // gone after the rename; a leftover otherwise
	if testHookBuilding != nil {
		testHookBuilding(src.ID)
	}
	py.percent.Store(0)
	progress := func(pc int) {
		if int32(pc) > py.percent.Load() { // one writer: the build's reader
			py.percent.Store(int32(pc))
		}
		if testHookProgress != nil {
			testHookProgress(src.ID, pc)
		}
	}
	if err := p.runBuilder(f, src, tmp, progress); err != nil {
		if p.ctx.Err() != nil {
			return 0, errBuildCancelled
		}
		return 0, err
	}
	if !same() {
		return 0, errBuildChanged // written to while it was read
	}
	if err := syncFile(tmp); err != nil {
		return 0, err
	}
	if _, err := p.probe(src, tmp); err != nil {
		return 0, fmt.Errorf("the built pyramid does not open: %w", err)
	}
	if err := os.Rename(tmp, p.path(py.name)); err != nil {
		return 0, err
	}
	if err := syncFile(p.dir); err != nil {
		return 0, err
	}
	st, err := os.Stat(p.path(py.name))
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// evictLocked removes the least recently used ready pyramids, never keep,
// until need more bytes fit in the budget.
func (p *pyramids) evictLocked(need int64, keep *pyramid) {
	if p.bytes+need <= p.maxBytes {
		return
	}
	var lru []*pyramid
	for _, py := range p.byName {
		if py.state == pyrReady && py != keep {
			lru = append(lru, py)
		}
	}
	sort.Slice(lru, func(i, j int) bool { return lru[i].lastUse.Load() < lru[j].lastUse.Load() })
	for _, py := range lru {
		if p.bytes+need <= p.maxBytes {
			break
		}
		p.removeLocked(py)
		p.stats.evicted.Add(1)
	}
}

// removeLocked deletes py's file and forgets it. Renders reading it keep
// their open handle; the open-handle cache lets go of it.
func (p *pyramids) removeLocked(py *pyramid) {
	if py.state == pyrReady {
		p.bytes -= py.size
		os.Remove(p.path(py.name))
		if py.src != nil {
			ident := py.src.Identity
			p.v.open_.RemoveFunc(func(k openKey) bool { return k.ident == ident })
		}
	}
	delete(p.byName, py.name)
	if py.id != "" && p.byID[py.id] == py.name {
		delete(p.byID, py.id)
	}
}

func (p *pyramids) statsOf() *renderer.PyramidStats {
	s := &renderer.PyramidStats{
		Dir: p.dir, MaxBytes: p.maxBytes,
		Started: p.stats.started.Load(), Succeeded: p.stats.succeeded.Load(), Failed: p.stats.failed.Load(),
		Cancelled: p.stats.cancelled.Load(), Evicted: p.stats.evicted.Load(), Dropped: p.stats.dropped.Load(),
		Skipped: p.stats.skipped.Load(), Served: p.stats.served.Load(), Building: p.stats.building.Load(),
		BuildNs: p.stats.ns.Load(),
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	s.Bytes, s.Queued = p.bytes, int64(p.queued)
	for _, py := range p.byName {
		switch py.state {
		case pyrReady:
			s.Files++
		case pyrBuilding:
			s.InProgress = append(s.InProgress, renderer.PyramidBuild{ID: py.id, Seconds: now.Sub(py.started).Seconds(),
				Percent: int(py.percent.Load())})
		}
	}
	sort.Slice(s.InProgress, func(i, j int) bool { return s.InProgress[i].ID < s.InProgress[j].ID })
	return s
}

// testHookBuilding, when set by a test, runs just before a build starts.
var testHookBuilding func(id string)

// testHookProgress, when set by a test, runs after each progress report
// of a build has been recorded.
var testHookProgress func(id string, percent int)

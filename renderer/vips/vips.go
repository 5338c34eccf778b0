// Package vips turns a resolved IIIF request into encoded image bytes
// with in-process libvips: the embedded implementation of the renderer
// contract (package renderer). It is the only package that talks to libvips.
//
// Sources are files under Config.TilePath. An identifier is a path relative
// to it; it is opened through an os.Root, so "..", absolute paths and
// symlinks leading out of the tree fail as ErrNotFound, and libvips then opens
// /proc/self/fd/N of that verified file, so the bytes rendered are the bytes
// checked, even if the path is swapped meanwhile.
//
// Or they are objects in an S3 bucket (Config.S3, s3.go), read through the
// source cache of package sources: a tiled TIFF or JPEG 2000 by ranges,
// libvips reading through Go (remote.go, a custom source), other formats
// from a whole local copy, which then renders as a local file does.
//
// Every render reads as little as it can: a pyramidal TIFF (pages or
// sub-IFDs) or a JPEG 2000 renders from the smallest resolution level that
// still has enough pixels, and a JPEG is opened with libjpeg's shrink-on-load
// (1/2, 1/4, 1/8), so a 1024-pixel thumbnail of a 200-megapixel scan never
// decodes the whole scan. The pipeline itself (crop, resize, rotate, colour,
// encode) runs in one C call (shim.c) because govips can only load a file by
// reading all of it into memory first.
//
// Colour (colour.go, colour.c): an embedded ICC profile is classified once
// per source; sRGB costs nothing, other profiles convert with one cached
// lcms2 transform per profile (8-bit matrix-shaper RGB and 8-bit CMYK
// inline: shaper.c, with AVX2 where the CPU has it, and clut.c), or are
// embedded in the output (Config.ColourProfiles). Small JPEG outputs of
// random-access sources are computed and encoded on the calling thread
// (direct.c), and a stored tile that cannot pass through, whole or a
// partial edge tile, is transcoded without a libvips pipeline
// (transcode.go).
//
// Large flat sources (plain JPEG, PNG, WebP, stripped TIFF) get an
// automatic pyramid, built in the background by a child process and then
// read like a prepared one (pyramid.go, builder.go).
//
// Hostile and heavy inputs: decoders fail on errors (JPEG on warnings too),
// and an open file that failed once is never reused (see discard); a source
// with no tiles is not decoded past Config.MaxSourcePixels; a render whose
// context ends is killed inside libvips (cancel.go); big renders give their
// memory back to the kernel (memory.go). One Identity (identity.go) says
// whether a file changed, for every cache here and above.
//
// libvips is process-global: call Startup once before New and Shutdown once
// at exit (cmd/iiif-proxy does both).
package vips

// #cgo pkg-config: vips
// #cgo LDFLAGS: -lm
// #include <stdlib.h>
// #include "shim.h"
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/iiif-proxy/iiif-proxy/internal/imgmeta"
	"github.com/iiif-proxy/iiif-proxy/internal/lru"
	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/sources"
)

// The contract's types and errors under their old names here, so the
// renderer's code reads as before the contract moved to package renderer.
type (
	Size                = renderer.Size
	Image               = renderer.Image
	Stats               = renderer.Stats
	SourceError         = renderer.SourceError
	SourceTooLargeError = renderer.SourceTooLargeError
)

var (
	ErrNotFound      = renderer.ErrNotFound
	ErrOverloaded    = renderer.ErrOverloaded
	ErrSourceChanged = renderer.ErrSourceChanged
)

var _ renderer.Renderer = (*Vips)(nil)

// Options configure libvips itself, once per process.
type Options struct {
	// Concurrency is libvips' own worker threads per pipeline. Zero means 1:
	// requests already run in parallel, and one thread per render is fastest
	// for tiles.
	Concurrency int
	// Debug routes libvips' debug and info messages to the log; otherwise
	// only its errors are logged.
	Debug bool
	// Logger receives libvips' messages. Nil means slog.Default().
	Logger *slog.Logger
	// MallocArenas bounds glibc's malloc arenas (M_ARENA_MAX; the
	// MALLOC_ARENA_MAX environment variable wins). Zero means 2 per CPU;
	// negative leaves glibc's default of 8 per CPU.
	MallocArenas int
}

var started atomic.Bool

// Startup starts libvips once for the process. libvips' operation cache is
// switched off: it caches file loads by name, which would serve stale pixels
// after a source changes, and our own cache sits above the renderer anyway.
// It also fixes glibc's malloc mmap and trim thresholds (32 and 64 MB; the
// MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ environment variables
// win): with glibc's dynamic threshold, every render mapped, faulted in and
// unmapped its buffers again, about a tenth of a re-encoded tile's cost.
func Startup(o Options) error {
	if !started.CompareAndSwap(false, true) {
		return errors.New("renderer: libvips already started")
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	level := vips.LogLevelError
	if o.Debug {
		level = vips.LogLevelDebug
	}
	vips.LoggingSettings(func(domain string, l vips.LogLevel, msg string) {
		lv := slog.LevelDebug
		switch l {
		case vips.LogLevelError, vips.LogLevelCritical:
			lv = slog.LevelError
		case vips.LogLevelWarning:
			lv = slog.LevelWarn
		}
		logger.Log(context.Background(), lv, msg, "component", "libvips", "domain", domain)
	}, level)
	conc := o.Concurrency
	if conc <= 0 {
		conc = DefaultVipsConcurrency
	}
	arenas := o.MallocArenas
	if arenas == 0 {
		arenas = 2 * runtime.NumCPU()
	}
	C.iiif_tune_malloc(C.int(arenas))
	if err := vips.Startup(&vips.Config{ConcurrencyLevel: conc, MaxCacheFiles: 0, MaxCacheMem: 0, MaxCacheSize: 0}); err != nil {
		return err
	}
	restrictLoaders()
	return nil
}

// Shutdown stops libvips. No render may run afterwards.
func Shutdown() { vips.Shutdown() }

// Level is one resolution level a source can be read at cheaply.
type Level struct {
	Width, Height int
	page, subifd  int          // loader options; -1 = not used
	shrink        int          // JPEG shrink-on-load factor; 1 = none
	ifd           *imgmeta.IFD // a TIFF level's directory, for tile pass-through
}

// source is what this renderer knows of a source image: the contract's
// description, which Info hands out (its Detail points back here), and the
// libvips-private rest. It is immutable and shared: do not modify.
type source struct {
	renderer.Source
	Format string // libvips loader, e.g. "tiffload"
	Tiled  bool   // the file itself is tiled
	// Levels are what the file can be read at, largest first.
	Levels []Level
	// Identity is the file's identity; Source.Identity is its String.
	Identity Identity
	seq      bool   // open with sequential access
	colour   colour // the embedded profile and what it is
	auto     bool   // gets an automatic pyramid (pyramid.go)
	gray     bool   // one band
}

// sourceOf returns the private description behind a Source from Info.
func sourceOf(s *renderer.Source) (*source, error) {
	if src, ok := s.Detail.(*source); ok {
		return src, nil
	}
	return nil, fmt.Errorf("vips: source %q was not described by this renderer", s.ID)
}

// Vips renders from files with libvips.
type Vips struct {
	cfg   Config
	root  *os.Root
	meta  *lru.Cache[string, *source]
	open_ *lru.Cache[openKey, *openImage] // random-access sources kept open
	slots chan struct{}                   // one token per running render
	live  atomic.Pointer[rules.Limits]    // set by SetLimits (live.go); nil: cfg.Limits
	pyr   *pyramids                       // automatic pyramids; nil: none
	s3    *sources.Store                  // S3 sources (s3.go); nil: files under root
	stats struct {
		renders, passthrough, failures, cancelled, overloaded, ns atomic.Uint64
		inflight, queued                                          atomic.Int64
	}
}

// New returns a renderer for cfg. Startup must have been called.
func New(cfg Config) (*Vips, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !started.Load() {
		return nil, errors.New("renderer: call Startup before New")
	}
	v := &Vips{
		cfg:   cfg,
		meta:  lru.New[string, *source](cfg.MetaCacheLen),
		open_: lru.NewWithEvict(cfg.OpenCacheLen, func(_ openKey, o *openImage) { o.release() }),
		slots: make(chan struct{}, cfg.Concurrency),
	}
	var err error
	if cfg.S3 != nil {
		sc := *cfg.S3
		then := sc.OnEvict
		sc.OnEvict = func(o sources.Object) {
			v.forget(o)
			if then != nil {
				then(o)
			}
		}
		if v.s3, err = sources.New(sc); err != nil {
			return nil, err
		}
	} else if v.root, err = os.OpenRoot(cfg.TilePath); err != nil {
		return nil, fmt.Errorf("TilePath: %w", err)
	}
	if cfg.PyramidDir != "" && cfg.PyramidMinPixels > 0 {
		if v.pyr, err = newPyramids(v); err != nil {
			// A cache directory that cannot be used never stops the
			// server: flat sources are served as they are.
			v.log().Warn("automatic pyramids off", "error", err)
			v.pyr = nil
		}
	}
	return v, nil
}

// Close kills running pyramid builds and releases the TilePath handle and
// the sources kept open.
func (v *Vips) Close() error {
	if v.pyr != nil {
		v.pyr.close()
	}
	v.open_.RemoveFunc(func(openKey) bool { return true })
	if v.s3 != nil {
		return v.s3.Close()
	}
	return v.root.Close()
}

// openKey names one level of one version of a file: a changed file (see
// Identity) never reuses a handle opened on the old one.
type openKey struct {
	ident        Identity
	page, subifd int
}

// openImage is a libvips image shared by concurrent renders. refs counts the
// cache's reference plus one per render using it; the last release unrefs.
type openImage struct {
	im     *C.VipsImage
	key    openKey
	cached bool        // in Vips.open_
	failed atomic.Bool // a render from it failed: never trust it again
	refs   atomic.Int32
}

func (o *openImage) release() {
	if o.refs.Add(-1) == 0 {
		C.iiif_unref(o.im)
	}
}

// image returns src's level lv opened from f; give it back with release.
// Tiled and JPEG 2000 sources stay open across renders (re-opening a big
// pyramidal TIFF costs more than rendering a tile from it); sequential
// sources are single-use.
func (v *Vips) image(in input, src *source, lv Level) (*openImage, error) {
	key := openKey{src.Identity, lv.page, lv.subifd}
	if !src.seq {
		if o, ok := v.open_.Get(key); ok && o.refs.Add(1) > 1 {
			return o, nil
		}
		// refs was 0: evicted meanwhile and already unreffed; open anew.
	}
	cp, remote, free := in.cargs()
	defer free()
	var cerr *C.char
	seq := C.int(0)
	if src.seq {
		seq = 1
	}
	// libjpeg reports a corrupt entropy-coded segment only as a warning
	// ("Corrupt JPEG data: premature end of data segment") and goes on with
	// garbage pixels; for JPEG sources its warnings therefore fail the
	// render. Other decoders warn about harmless things (libpng about
	// iCCP profiles, libtiff about unknown tags), so for them only errors do.
	strict := C.int(0)
	if src.Format == "jpegload" {
		strict = 1
	}
	im := C.iiif_open(cp, remote, C.int(lv.page), C.int(lv.subifd), C.int(lv.shrink), seq, strict, &cerr)
	if im == nil {
		msg := withID(strings.TrimSpace(C.GoString(cerr)), in, src.ID)
		C.iiif_free(unsafe.Pointer(cerr))
		if err := in.unavailable(); err != nil {
			return nil, err
		}
		return nil, &SourceError{ID: src.ID, Detail: msg}
	}
	o := &openImage{im: im, key: key, cached: !src.seq}
	o.refs.Store(1)
	if o.cached {
		o.refs.Add(1) // the cache's reference
		v.open_.Add(key, o)
	}
	return o, nil
}

// discard marks o as failed and drops it from the open-handle cache. A
// decoder that reported an error (a truncated or corrupt file) may have left
// state behind that makes the next read "succeed" with blank pixels (libvips'
// JPEG 2000 loader does), so a handle that failed once is never reused: the
// next request opens the file again and sees the error again.
func (v *Vips) discard(o *openImage) {
	o.failed.Store(true)
	if !o.cached {
		return
	}
	if cur, ok := v.open_.Get(o.key); ok && cur == o {
		v.open_.Remove(o.key)
	}
}

// Limits returns the output limits in force.
func (v *Vips) Limits() rules.Limits { return v.limits() }

// Stats returns a snapshot of the counters.
func (v *Vips) Stats() Stats {
	return Stats{
		Renders:     v.stats.renders.Load(),
		Passthrough: v.stats.passthrough.Load(),
		Failures:    v.stats.failures.Load(),
		Cancelled:   v.stats.cancelled.Load(),
		Overloaded:  v.stats.overloaded.Load(),
		InFlight:    v.stats.inflight.Load(),
		Queued:      v.stats.queued.Load(),
		RenderNs:    v.stats.ns.Load(),
		Pyramids:    v.pyramidStats(),
		Sources:     v.sourceStats(),
	}
}

func (v *Vips) sourceStats() *renderer.SourceStats {
	if v.s3 == nil {
		return nil
	}
	st := v.s3.Stats()
	return &st
}

func (v *Vips) pyramidStats() *renderer.PyramidStats {
	if v.pyr == nil {
		return nil
	}
	return v.pyr.statsOf()
}

// validID rejects identifiers that could only name something outside
// TilePath, before the filesystem (or the bucket) is asked: the one rule
// for both, sources.ValidID.
func validID(id string) bool { return sources.ValidID(id) }

// withID replaces the name libvips gave in's source in msg with id.
func withID(msg string, in input, id string) string {
	if n := in.name(); n != "" {
		return strings.ReplaceAll(msg, n, id)
	}
	return msg
}

// open opens id inside TilePath.
func (v *Vips) open(id string) (*os.File, fs.FileInfo, error) {
	if !validID(id) {
		return nil, nil, ErrNotFound
	}
	f, err := v.root.Open(id)
	if err != nil {
		return nil, nil, ErrNotFound
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, ErrNotFound
	}
	return f, fi, nil
}

// Info returns the source's description, from memory when the file has not
// changed since it was last read.
func (v *Vips) Info(ctx context.Context, id string) (*renderer.Source, error) {
	if v.s3 != nil {
		return v.infoS3(ctx, id)
	}
	f, fi, err := v.open(id)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := v.describe(id, input{f: f}, IdentityOf(fi), fi.ModTime())
	if err != nil {
		return nil, err
	}
	if v.pyr != nil {
		v.pyr.want(s) // a viewer's first request: start the build now
	}
	return &s.Source, nil
}

// describe describes the source in, whose identity is ident, from memory
// when that version was described before.
func (v *Vips) describe(id string, in input, ident Identity, mod time.Time) (*source, error) {
	if s, ok := v.meta.Get(id); ok && s.Identity == ident {
		return s, nil
	}
	s, err := v.probe(id, in)
	if err != nil {
		return nil, err
	}
	s.ModTime = mod.UTC().Truncate(time.Second) // HTTP dates have whole seconds
	s.Identity = ident
	// A tagged source's renders depend on ColourProfiles as well as on its
	// bytes: with the policy in its identity, caches revalidating after the
	// setting changed drop what was rendered under the old one.
	s.Source.Identity = ident.String() + s.colour.identitySuffix(v.cfg.ColourProfiles)
	s.Detail = s
	v.meta.Add(id, s)
	return s, nil
}

func probeHeader(in input, page, subifd int) (C.iiif_header, error) {
	h, _, err := probeHeaderICC(in, page, subifd)
	return h, err
}

// probeHeaderICC is probeHeader that also returns the embedded ICC profile.
func probeHeaderICC(in input, page, subifd int) (C.iiif_header, []byte, error) {
	var h C.iiif_header
	var cerr *C.char
	cp, remote, free := in.cargs()
	defer free()
	if C.iiif_probe(cp, remote, C.int(page), C.int(subifd), &h, &cerr) != 0 {
		msg := C.GoString(cerr)
		C.iiif_free(unsafe.Pointer(cerr))
		return h, nil, errors.New(strings.TrimSpace(msg))
	}
	var profile []byte
	if h.icc != nil {
		profile = C.GoBytes(h.icc, C.int(h.icc_len))
		C.iiif_free(h.icc)
		h.icc = nil
	}
	return h, profile, nil
}

func (v *Vips) log() *slog.Logger {
	if v.cfg.Logger != nil {
		return v.cfg.Logger
	}
	return slog.Default()
}

// probe reads the headers of a source, works out its levels and the
// geometry to advertise, and classifies its profile.
func (v *Vips) probe(id string, in input) (*source, error) {
	s, h, profile, err := v.levels(id, in)
	if err != nil {
		return nil, err
	}
	s.gray = int(h.bands)-int(h.has_alpha) == 1
	s.auto = v.pyramidEligible(s, h)
	if s.auto {
		// The geometry its pyramid will have, from the first request: a
		// cached info.json stays true when the pyramid appears.
		s.TileWidth, s.TileHeight = pyramidTile, pyramidTile
	} else if !s.Tiled || s.TileWidth > 4096 || s.TileHeight > 4096 || s.TileWidth < 16 || s.TileHeight < 16 {
		s.TileWidth, s.TileHeight = v.cfg.UntiledTileSize, v.cfg.UntiledTileSize
	}
	s.ScaleFactors = scaleFactors(s)
	s.colour = v.classify(id, in, s.Levels[0].page, s.Levels[0].subifd, profile, int(h.bands)-int(h.has_alpha), h.cmyk != 0)
	for i := range s.Levels {
		if d := s.Levels[i].ifd; d != nil && !sameProfile(d.ICC, s.colour) {
			s.Levels[i].ifd = nil // tagged unlike the source: always rendered
		}
	}
	return s, nil
}

// pyramidEligible reports whether s gets an automatic pyramid: pyramids
// are on, s is a flat JPEG, PNG, WebP or TIFF of at least PyramidMinPixels
// (and no more than MaxSourcePixels, which it could not be read past), and
// its pixels fit a JPEG-compressed TIFF as they are (8-bit gray or RGB, no
// alpha), so the pyramid renders exactly as the source would.
func (v *Vips) pyramidEligible(s *source, h C.iiif_header) bool {
	if v.pyr == nil || s.Tiled {
		return false
	}
	switch s.Format {
	case "jpegload", "pngload", "webpload", "tiffload":
	default:
		return false
	}
	px := int64(s.Width) * int64(s.Height)
	if px < v.cfg.PyramidMinPixels || (v.cfg.MaxSourcePixels > 0 && px > v.cfg.MaxSourcePixels) {
		return false
	}
	return h.uchar != 0 && h.has_alpha == 0 && h.cmyk == 0 && (h.bands == 1 || h.bands == 3)
}

// levels reads the headers of a file and works out its levels and tiling.
func (v *Vips) levels(id string, in input) (*source, C.iiif_header, []byte, error) {
	h, profile, err := probeHeaderICC(in, -1, -1)
	if err != nil {
		if err := in.unavailable(); err != nil {
			return nil, h, nil, err
		}
		return nil, h, nil, &SourceError{ID: id, Detail: sniffed(withID(err.Error(), in, id), in)}
	}
	s := &source{
		Source: renderer.Source{ID: id, Width: int(h.width), Height: int(h.height)},
		// A source read through Go (remote.go) reports "tiffload_source"
		// and the like: the same loader, as far as levels are concerned.
		Format: strings.TrimSuffix(C.GoString(&h.loader[0]), "_source"),
		Levels: []Level{{Width: int(h.width), Height: int(h.height), page: -1, subifd: -1, shrink: 1}},
		seq:    true,
	}
	switch s.Format {
	case "jpegload":
		for _, sh := range []int{2, 4, 8} {
			// libvips 8.14 rounds a shrink-on-load size down (1200 × 900
			// at 1/8 is 150 × 112): a level rounded up made requests that
			// read its last row fail with "bad extract area".
			s.Levels = append(s.Levels, Level{Width: max(s.Width/sh, 1), Height: max(s.Height/sh, 1), page: -1, subifd: -1, shrink: sh})
		}
	case "tiffload":
		t, err := imgmeta.ReadTIFF(in.reader())
		if err != nil {
			t = nil // libvips reads it; we only lose tile geometry and pass-through
		}
		if t != nil && t.Pages[0].TileWidth > 0 {
			s.TileWidth, s.TileHeight, s.Tiled, s.seq = t.Pages[0].TileWidth, t.Pages[0].TileHeight, true, false
			s.Levels[0].ifd = t.Pages[0]
		}
		switch {
		case h.subifds > 0:
			s.Levels[0].page = 0
			for k := range int(h.subifds) {
				lh, err := probeHeader(in, 0, k)
				if err != nil || !halves(s.Levels[len(s.Levels)-1], lh) {
					break
				}
				l := Level{Width: int(lh.width), Height: int(lh.height), page: 0, subifd: k, shrink: 1}
				if t != nil && k < len(t.SubIFDs[0]) && sameSize(t.SubIFDs[0][k], l) {
					l.ifd = t.SubIFDs[0][k]
				}
				s.Levels = append(s.Levels, l)
			}
		case h.pages > 1:
			s.Levels[0].page = 0
			for k := 1; k < int(h.pages); k++ {
				lh, err := probeHeader(in, k, -1)
				if err != nil || !halves(s.Levels[len(s.Levels)-1], lh) {
					break
				}
				l := Level{Width: int(lh.width), Height: int(lh.height), page: k, subifd: -1, shrink: 1}
				if t != nil && k < len(t.Pages) && sameSize(t.Pages[k], l) {
					l.ifd = t.Pages[k]
				}
				s.Levels = append(s.Levels, l)
			}
		}
	case "jp2kload":
		s.seq = false
		if tw, th, err := imgmeta.JP2TileSize(in.reader()); err == nil && (tw < s.Width || th < s.Height) {
			s.TileWidth, s.TileHeight, s.Tiled = tw, th, true
		}
		s.Levels[0].page = 0
		for k := 1; k < int(h.pages); k++ {
			lh, err := probeHeader(in, k, -1)
			if err != nil {
				break
			}
			s.Levels = append(s.Levels, Level{Width: int(lh.width), Height: int(lh.height), page: k, subifd: -1, shrink: 1})
		}
	}
	return s, h, profile, nil
}

func sameSize(d *imgmeta.IFD, l Level) bool { return d.Width == l.Width && d.Height == l.Height }

// halves reports whether next is the level below prev in a pyramid.
func halves(prev Level, next C.iiif_header) bool {
	w, h := int(next.width), int(next.height)
	return w >= 1 && h >= 1 && abs(w-prev.Width/2) <= 1 && abs(h-prev.Height/2) <= 1
}

func scaleFactors(s *source) []int {
	fits := func(f int) bool { return ceilDiv(s.Width, f) <= s.TileWidth && ceilDiv(s.Height, f) <= s.TileHeight }
	var out []int
	last := 0
	for _, l := range s.Levels {
		f := 1 << int(math.Round(math.Log2(float64(s.Width)/float64(l.Width))))
		if f > last {
			out = append(out, f)
			last = f
		}
		if fits(last) {
			return out
		}
	}
	for !fits(last) {
		last *= 2
		out = append(out, last)
	}
	return out
}

// Sizes are the whole-image sizes that render fastest, ascending, within the
// limits: one per scale factor.
func (v *Vips) Sizes(s *renderer.Source) []Size {
	var out []Size
	for i := len(s.ScaleFactors) - 1; i >= 0; i-- {
		f := s.ScaleFactors[i]
		w, h := ceilDiv(s.Width, f), ceilDiv(s.Height, f)
		lim := v.limits()
		if (lim.MaxWidth > 0 && w > lim.MaxWidth) || (lim.MaxHeight > 0 && h > lim.MaxHeight) ||
			(lim.MaxArea > 0 && int64(w)*int64(h) > lim.MaxArea) {
			break
		}
		out = append(out, Size{Width: w, Height: h})
	}
	return out
}

// slack is how much upsampling (2%) a level may need and still be chosen:
// pyramid levels of odd-sized images are rounded, so a level that is nominally
// 1/2 can be 1/2.0006.
const slack = 1.02

// plan chooses the cheapest level for res and maps the region onto it.
func plan(s *source, res rules.Resolved) (lv Level, x, y, w, h int) {
	fx := float64(res.Region.W) / float64(res.Width)
	fy := float64(res.Region.H) / float64(res.Height)
	lv = s.Levels[0]
	for _, l := range s.Levels[1:] {
		dx := float64(s.Width) / float64(l.Width)
		dy := float64(s.Height) / float64(l.Height)
		if dx <= fx*slack && dy <= fy*slack {
			lv = l
		}
	}
	x0, x1 := scaleSpan(res.Region.X, res.Region.W, s.Width, lv.Width)
	y0, y1 := scaleSpan(res.Region.Y, res.Region.H, s.Height, lv.Height)
	return lv, x0, y0, x1 - x0, y1 - y0
}

// scaleSpan maps [pos, pos+n) of a full-size axis onto a level's axis,
// rounding both ends so that adjacent tiles share their boundary, and never
// returning an empty span.
func scaleSpan(pos, n, full, level int) (int, int) {
	if level == full {
		return pos, pos + n
	}
	k := float64(level) / float64(full)
	a := min(int(math.Round(float64(pos)*k)), level-1)
	b := min(int(math.Round(float64(pos+n)*k)), level)
	if b <= a {
		b = a + 1
	}
	return a, b
}

// Render renders res from src, which must come from Info. It waits for a
// worker while ctx allows; a full queue fails at once with ErrOverloaded.
func (v *Vips) Render(ctx context.Context, rs *renderer.Source, res rules.Resolved) (Image, error) {
	src, err := sourceOf(rs)
	if err != nil {
		return Image{}, err
	}
	if v.s3 != nil {
		return v.renderS3(ctx, src, res)
	}
	f, fi, err := v.open(src.ID)
	if err != nil {
		return Image{}, err
	}
	defer f.Close()
	if IdentityOf(fi) != src.Identity {
		return Image{}, ErrSourceChanged
	}
	if v.pyr != nil && src.auto {
		if img, ok, err := v.renderPyramid(ctx, src, res); ok {
			return img, err
		}
	}
	return v.render(ctx, input{f: f}, src, res)
}

// renderPyramid renders res from src's automatic pyramid when it is ready
// (ok), or asks for its build and says to render from the source.
func (v *Vips) renderPyramid(ctx context.Context, src *source, res rules.Resolved) (img Image, ok bool, err error) {
	ps, path := v.pyr.ready(src)
	if ps == nil {
		v.pyr.want(src)
		return Image{}, false, nil
	}
	pf, err := os.Open(path)
	if err != nil {
		return Image{}, false, nil // evicted meanwhile: the source serves this one
	}
	defer pf.Close()
	img, err = v.render(ctx, input{f: pf}, ps, res)
	var se *SourceError
	if !errors.As(err, &se) {
		v.pyr.stats.served.Add(1)
		return img, true, err
	}
	// The pyramid is damaged on disk; the source may be fine: drop the
	// pyramid, serve from the source.
	v.log().Warn("dropping an automatic pyramid that fails to render", "id", src.ID, "error", err)
	v.pyr.drop(src)
	return Image{}, false, nil
}

// render renders res from f, described by src: the source itself, or its
// automatic pyramid (whose Source, so ID, ModTime and Identity, is the flat
// source's).
func (v *Vips) render(ctx context.Context, in input, src *source, res rules.Resolved) (Image, error) {
	lv, x, y, w, h := plan(src, res)
	mode := v.iccMode(src.colour, res)
	if body, ok := v.passthrough(in, lv, x, y, w, h, res, src.colour, mode); ok {
		v.stats.passthrough.Add(1)
		return Image{Body: body, MIME: res.Format.MIME(), ModTime: src.ModTime, Identity: src.Source.Identity}, nil
	}
	if err := v.checkDecode(src, lv); err != nil {
		return Image{}, err
	}
	if err := v.acquire(ctx); err != nil {
		return Image{}, err
	}
	defer v.release()
	if !testNoTranscode && transcodable(lv, x, y, w, h, res) {
		if body, ok := v.transcode(in, src, lv, x, y, res, mode); ok {
			v.stats.renders.Add(1)
			return Image{Body: body, MIME: res.Format.MIME(), ModTime: src.ModTime, Identity: src.Source.Identity}, nil
		}
	}
	o, err := v.image(in, src, lv)
	if err != nil {
		v.stats.failures.Add(1)
		return Image{}, err
	}
	defer o.release()
	job := C.iiif_job{
		x: C.int(x), y: C.int(y), w: C.int(w), h: C.int(h),
		ow: C.int(res.Width), oh: C.int(res.Height),
		angle: C.double(res.Rotation.Degrees), quality: C.int(quality(res.Quality)),
		format: C.int(format(res.Format)), q: C.int(v.cfg.JPGQuality),
		icc: C.int(mode), icc_key: C.ulonglong(src.colour.key),
	}
	if src.seq {
		job.sequential = 1
	}
	if res.Rotation.Mirror {
		job.mirror = 1
	}
	var buf unsafe.Pointer
	var n C.size_t
	var cerr *C.char
	start := time.Now()
	rc, killed := runPipeline(ctx, o.im, &job, &buf, &n, &cerr)
	v.stats.ns.Add(uint64(time.Since(start)))
	if int64(n) > bigBytes || int64(w)*int64(h) > bigPixels || int64(res.Width)*int64(res.Height) > bigPixels {
		releaseSoon()
	}
	if rc != 0 {
		msg := strings.TrimSpace(C.GoString(cerr))
		C.iiif_free(unsafe.Pointer(cerr))
		if killed {
			// Stopped because nobody waits for it any more: the source
			// is fine, the handle stays usable.
			v.stats.cancelled.Add(1)
			if err := ctx.Err(); err != nil {
				return Image{}, err
			}
			return Image{}, context.Canceled
		}
		v.stats.failures.Add(1)
		v.discard(o)
		if err := in.unavailable(); err != nil {
			return Image{}, err // the store failed, not the file
		}
		return Image{}, &SourceError{ID: src.ID, Detail: msg}
	}
	defer C.iiif_free(buf)
	if o.failed.Load() {
		// Another render from the same handle failed meanwhile: whatever
		// this one read may be just as broken, so it is not served.
		v.stats.failures.Add(1)
		return Image{}, &SourceError{ID: src.ID, Detail: "a concurrent read of the same file failed"}
	}
	body := C.GoBytes(buf, C.int(n))
	if body, err = withProfile(body, src.colour, mode, res); err != nil {
		v.stats.failures.Add(1)
		return Image{}, &SourceError{ID: src.ID, Detail: err.Error()}
	}
	v.stats.renders.Add(1)
	return Image{Body: body, MIME: res.Format.MIME(), ModTime: src.ModTime, Identity: src.Source.Identity}, nil
}

// checkDecode refuses, before anything is decoded, a render that would have
// to decode more than MaxSourcePixels pixels of a source that cannot be read
// in pieces: one with no internal tiles (a plain JPEG, PNG, WebP, GIF,
// stripped TIFF, or a JPEG 2000 made of one tile), read at level lv. Pyramid
// levels and JPEG shrink-on-load count: a request they serve reads only them.
func (v *Vips) checkDecode(src *source, lv Level) error {
	max := v.cfg.MaxSourcePixels
	if max <= 0 || src.Tiled {
		return nil
	}
	if px := int64(lv.Width) * int64(lv.Height); px > max {
		return &SourceTooLargeError{ID: src.ID, Width: lv.Width, Height: lv.Height, Max: max}
	}
	return nil
}

// passthrough serves a request that is exactly one stored JPEG tile of a
// TIFF level, unrotated, in colour (or gray from a gray source), as JPEG: the
// tile's bytes with the shared JPEG tables spliced in. No pixel is decoded,
// and nothing is lost to re-encoding; the quality is the file's own. A
// tagged level passes through when the render would not change its pixels
// (an sRGB profile, or embed or strip), with the profile spliced in for
// embed. A partial tile on the level's right or bottom edge, stored padded
// to the full tile size, passes through as a lossless crop of the stored
// JPEG (crop.h).
func (v *Vips) passthrough(in input, lv Level, x, y, w, h int, res rules.Resolved, c colour, mode int) ([]byte, bool) {
	d := lv.ifd
	if !v.cfg.TilePassthrough || d == nil || mode == C.IIIF_ICC_CONVERT || res.Format != rules.FormatJPG || res.Rotation != (rules.Rotation{}) ||
		w != res.Width || h != res.Height || x%d.TileWidth != 0 || y%d.TileHeight != 0 ||
		x >= d.Width || y >= d.Height || w != min(d.TileWidth, d.Width-x) || h != min(d.TileHeight, d.Height-y) {
		return nil, false
	}
	switch res.Quality {
	case rules.QualityDefault, rules.QualityColor:
	case rules.QualityGray:
		if d.SamplesPerPixel != 1 {
			return nil, false
		}
	default:
		return nil, false
	}
	body, err := d.AppendJPEGTile(make([]byte, 0, 64<<10), in.reader(), x/d.TileWidth, y/d.TileHeight)
	if err == nil && (w < d.TileWidth || h < d.TileHeight) {
		body, err = cropJPEG(body, w, h)
	}
	if err == nil {
		body, err = withProfile(body, c, mode, res)
	}
	if err != nil {
		return nil, false // the libvips path will read it, or say why it cannot
	}
	return body, true
}

func quality(q rules.Quality) int {
	switch q {
	case rules.QualityGray:
		return C.IIIF_Q_GRAY
	case rules.QualityBitonal:
		return C.IIIF_Q_BITONAL
	}
	return C.IIIF_Q_COLOR
}

func format(f rules.Format) int {
	switch f {
	case rules.FormatPNG:
		return C.IIIF_F_PNG
	case rules.FormatWebP:
		return C.IIIF_F_WEBP
	case rules.FormatGIF:
		return C.IIIF_F_GIF
	case rules.FormatTIF:
		return C.IIIF_F_TIF
	}
	return C.IIIF_F_JPG
}

func (v *Vips) acquire(ctx context.Context) error {
	select {
	case v.slots <- struct{}{}:
		v.stats.inflight.Add(1)
		return nil
	default:
	}
	if v.stats.queued.Add(1) > int64(v.cfg.QueueLen) {
		v.stats.queued.Add(-1)
		v.stats.overloaded.Add(1)
		return ErrOverloaded
	}
	defer v.stats.queued.Add(-1)
	select {
	case v.slots <- struct{}{}:
		v.stats.inflight.Add(1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (v *Vips) release() {
	v.stats.inflight.Add(-1)
	<-v.slots
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

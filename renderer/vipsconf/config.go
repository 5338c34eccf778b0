// Package vipsconf is the libvips renderer's configuration: its settings,
// their defaults (Default) and their checks (Validate), in one place and
// without cgo, so that the configuration package (internal/config) takes
// the renderer's defaults and checks from their owner instead of writing
// them a second time, and still builds without libvips. Package vips uses
// this Config as its own (vips.Config is an alias). It sits beside
// renderer/vips rather than under it because the import rules
// (store/lint_test.go) keep renderer/vips/... to cmd/ and bench/.
package vipsconf

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime"

	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/sources"
)

// What renders do with a source's embedded ICC profile (ColourProfiles).
const (
	// ColourConvert converts a source with an embedded profile other than
	// sRGB to sRGB pixels, and sends no profile: what every browser and
	// viewer shows right without colour management. The default.
	ColourConvert = "convert"
	// ColourEmbed keeps the source's pixels and writes its profile into
	// every output that can carry one (JPEG APP2, PNG iCCP, WebP ICCP, TIFF
	// tag): exact and free, for clients that colour-manage (every current
	// browser does for images). Gray and bitonal outputs of a colour source,
	// GIF, and CMYK sources are converted as with ColourConvert.
	ColourEmbed = "embed"
	// ColourStrip ignores embedded profiles: the pixels are sent as they are
	// and read as sRGB. Fastest; Adobe RGB or eciRGB scans look dull.
	ColourStrip = "strip"
)

// Defaults and bounds of Config, also the configuration package's.
const (
	DefaultJPGQuality       = 75
	DefaultMaxSourcePixels  = 1 << 30
	DefaultMetaCacheLen     = 4096
	DefaultOpenCacheLen     = 256
	DefaultUntiledTileSize  = 1024
	DefaultPyramidMinPixels = 32 << 20
	DefaultPyramidMaxBytes  = 10 << 30
	DefaultPyramidBuilds    = 1
	// DefaultVipsConcurrency is libvips' threads per render (vips.Options,
	// VipsConcurrency): requests already run in parallel, and one thread
	// per render is fastest for tiles.
	DefaultVipsConcurrency = 1

	// MinUntiledTileSize is the smallest tile advertised for untiled
	// sources. Every tile of a flat source costs a decode of the rows above
	// it, so small tiles multiply the work: at 16 pixels a viewer's first
	// screen of a 20480-pixel scan is already thousands of requests, and
	// below it the per-request overhead (headers, cache entry, key) is
	// larger than the pixels. 16 is also the smallest tile any viewer we
	// know of asks for.
	MinUntiledTileSize = 16
	// MaxUntiledTileSize is the largest: a bigger tile no longer fits the
	// tile tier's default MaxSize (1024) nor a viewer's canvas usefully,
	// and each costs a full-width decode of 4096 rows.
	MaxUntiledTileSize = 4096
)

// Config configures a Vips renderer. Default returns the defaults; in a
// Config given to vips.New, a zero numeric or string field takes its
// default too (as each field's comment says), so Config{TilePath: dir} is
// a working renderer. TilePassthrough is the one exception: a bool's zero
// cannot mean "on", so the zero Config leaves it off and Default turns it
// on.
type Config struct {
	// TilePath is the directory that holds the source images (RAIS's
	// TilePath). Identifiers are paths relative to it. Required unless S3
	// is set.
	TilePath string

	// S3 reads the sources from an S3 bucket through a local source cache
	// instead (TilePath = "s3://bucket/prefix"; package sources). Its
	// OnEvict is wrapped: the renderer drops what it keeps open on an
	// evicted object. Nil means TilePath is a directory.
	S3 *sources.Config

	// Concurrency is how many renders run at once (RenderConcurrency).
	// Zero means GOMAXPROCS.
	Concurrency int

	// QueueLen is how many renders may wait for a free worker; one more is
	// refused with ErrOverloaded (a 503 with Retry-After)
	// (RenderQueueLen). Zero means 8 × Concurrency; -1 means no queue at
	// all.
	QueueLen int

	// JPGQuality is the JPEG (and WebP) quality, 1 to 100 (RAIS's
	// JPGQuality). Default 75; zero means the default.
	JPGQuality int

	// Limits are the largest outputs served and advertised (RAIS's
	// ImageMaxArea, ImageMaxWidth, ImageMaxHeight). Zero fields mean no
	// limit; Default has rules.DefaultLimits.
	Limits rules.Limits

	// MaxSourcePixels is the most pixels a render may decode from a source
	// that cannot be read in pieces (no internal tiles: plain JPEG, PNG,
	// WebP, GIF, stripped TIFF, single-tile JPEG 2000), counted at the
	// pyramid level or JPEG shrink-on-load factor the request reads. Such a
	// decode streams through every pixel whatever the request asks for, so
	// one request for a small tile of a decompression bomb (a few KB of PNG
	// declaring 50,000 × 50,000) would hold a worker for minutes. Requests
	// over it fail before decoding (SourceTooLargeError). Default 1
	// gigapixel (1,073,741,824), and zero means the default: about 10 s of
	// libjpeg and 20 s of libpng at the 50-100 megapixels a second one core
	// decodes, inside the default RenderTimeout of 60 s, and more than any
	// flat scan a site serves today (the 236-megapixel sample decodes in
	// about 2.5 s). Negative means no limit.
	MaxSourcePixels int64

	// MetaCacheLen is how many sources' headers (size, pyramid levels, tile
	// size) are kept in memory; each is re-validated against the file's
	// Identity on use. Zero means 4096.
	MetaCacheLen int

	// OpenCacheLen is how many opened pyramid levels of tiled TIFF and JPEG
	// 2000 sources stay open between renders (each holds a file descriptor
	// and libvips' header state). Zero means 256; negative means none.
	OpenCacheLen int

	// TilePassthrough serves a request for exactly one stored tile of a
	// JPEG-compressed TIFF level (unrotated, colour, as JPEG) by copying the
	// tile's compressed bytes: no decode, no generation loss, but the file's
	// own JPEG quality instead of JPGQuality. On in Default (and so in the
	// command's configuration); off in the zero Config.
	TilePassthrough bool

	// UntiledTileSize is the tile size advertised for sources with no
	// internal tiling (plain JPEG, PNG, stripped TIFF), where every tile costs
	// a decode of the rows above it, so fewer, larger tiles are cheaper.
	// From MinUntiledTileSize to MaxUntiledTileSize; default 1024, and zero
	// means the default.
	UntiledTileSize int

	// ColourProfiles is what renders do with a source's embedded ICC
	// profile: ColourConvert ("convert", converted to sRGB, no profile
	// sent), ColourEmbed ("embed", pixels as stored, the profile written
	// into the output) or ColourStrip ("strip", ignored). A profile that
	// describes sRGB costs nothing in any of them, and its pyramid tiles pass
	// through. Default "convert"; empty means the default.
	ColourProfiles string

	// PyramidDir is where automatic pyramids of large flat sources are
	// kept, normally CacheDir/pyramid. Empty means none are built, and flat
	// sources advertise UntiledTileSize tiles.
	PyramidDir string

	// PyramidMinPixels is the size from which a flat source (plain JPEG,
	// PNG, WebP, stripped TIFF; 8-bit gray or RGB without alpha) gets an
	// automatic pyramid. Default 33,554,432 (32 megapixels, e.g. 7000 ×
	// 4800), and zero means the default: below it the worst full-resolution
	// tile decodes in about 0.3 s and the tile tier absorbs repeats; above
	// it deep zoom into a flat file costs seconds a tile. Negative means no
	// automatic pyramids.
	PyramidMinPixels int64

	// PyramidMaxBytes is the byte budget of PyramidDir; the least recently
	// used pyramids are removed to stay under it. Default 10 GB (about 150
	// pyramids of 236-megapixel scans); zero means the default.
	PyramidMaxBytes int64

	// PyramidBuilds is how many pyramids are built at once. Default 1, and
	// zero means the default: a build keeps a core busy for seconds to
	// minutes, and interactive renders must keep the rest.
	PyramidBuilds int

	// PyramidBuilder is the program run to build a pyramid: a binary that
	// calls MaybeBuildPyramid first thing. Empty means this process's own
	// binary (/proc/self/exe).
	PyramidBuilder string

	// PyramidMinFreeBytes and PyramidMinFreePercent are the free space
	// PyramidDir's file system keeps (the cache's CacheMinFree): no build
	// starts that would take it below the larger of the two. Zero means none
	// beyond the pyramid's own size.
	PyramidMinFreeBytes   int64
	PyramidMinFreePercent float64

	// Logger receives the renderer's warnings (an unusable profile, once
	// per source). Nil means slog.Default().
	Logger *slog.Logger
}

// Default returns the renderer's defaults (without TilePath): the values
// its zero fields take, and TilePassthrough on. Concurrency and QueueLen
// stay zero, which WithDefaults resolves on the machine that runs.
func Default() Config {
	return Config{
		JPGQuality:       DefaultJPGQuality,
		Limits:           rules.DefaultLimits,
		MaxSourcePixels:  DefaultMaxSourcePixels,
		MetaCacheLen:     DefaultMetaCacheLen,
		OpenCacheLen:     DefaultOpenCacheLen,
		TilePassthrough:  true,
		UntiledTileSize:  DefaultUntiledTileSize,
		ColourProfiles:   ColourConvert,
		PyramidMinPixels: DefaultPyramidMinPixels,
		PyramidMaxBytes:  DefaultPyramidMaxBytes,
		PyramidBuilds:    DefaultPyramidBuilds,
	}
}

// WithDefaults returns c with its zero fields set to their defaults, and
// Concurrency and QueueLen resolved (GOMAXPROCS; 8 per worker, -1 → 0).
// Limits and TilePassthrough are kept as they are: their zero is a setting
// (no limit; off).
func (c Config) WithDefaults() Config {
	d := Default()
	if c.Concurrency == 0 {
		c.Concurrency = runtime.GOMAXPROCS(0)
	}
	if c.QueueLen == 0 {
		c.QueueLen = 8 * c.Concurrency
	}
	if c.QueueLen < 0 {
		c.QueueLen = 0
	}
	if c.JPGQuality == 0 {
		c.JPGQuality = d.JPGQuality
	}
	if c.MaxSourcePixels == 0 {
		c.MaxSourcePixels = d.MaxSourcePixels
	}
	if c.MetaCacheLen == 0 {
		c.MetaCacheLen = d.MetaCacheLen
	}
	if c.OpenCacheLen == 0 {
		c.OpenCacheLen = d.OpenCacheLen
	}
	if c.UntiledTileSize == 0 {
		c.UntiledTileSize = d.UntiledTileSize
	}
	if c.ColourProfiles == "" {
		c.ColourProfiles = d.ColourProfiles
	}
	if c.PyramidMinPixels == 0 {
		c.PyramidMinPixels = d.PyramidMinPixels
	}
	if c.PyramidMaxBytes == 0 {
		c.PyramidMaxBytes = d.PyramidMaxBytes
	}
	if c.PyramidBuilds == 0 {
		c.PyramidBuilds = d.PyramidBuilds
	}
	return c
}

// Validate reports every problem with c at once: where the sources are
// (TilePath or S3) and ValidateSettings. It checks c as given, zero fields
// included (vips.New calls it after WithDefaults), each message starting
// with the RAIS key the operator writes.
func (c Config) Validate() error {
	var errs []error
	if c.S3 != nil {
		if err := c.S3.Validate(); err != nil {
			errs = append(errs, err)
		}
	} else if c.TilePath == "" {
		errs = append(errs, errors.New("TilePath: must name the directory of source images"))
	} else if fi, err := os.Stat(c.TilePath); errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("TilePath: %q does not exist: point it at your images (-tile-path DIR, RAIS_TILEPATH), or generate samples there with `iiif-proxy samples -dir %s`", c.TilePath, c.TilePath))
	} else if err != nil {
		errs = append(errs, fmt.Errorf("TilePath: %w", err))
	} else if !fi.IsDir() {
		errs = append(errs, fmt.Errorf("TilePath: %q is not a directory", c.TilePath))
	}
	if err := c.ValidateSettings(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ValidateSettings reports every problem with c's rendering settings at
// once, leaving out where the sources are (TilePath, S3): what the
// configuration checks whichever renderer it runs.
func (c Config) ValidateSettings() error {
	var errs []error
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("RenderConcurrency: %d must be >= 0", c.Concurrency))
	}
	if c.QueueLen < -1 {
		errs = append(errs, fmt.Errorf("RenderQueueLen: %d must be -1 (no queue), 0 (default) or more", c.QueueLen))
	}
	if c.JPGQuality < 1 || c.JPGQuality > 100 {
		errs = append(errs, fmt.Errorf("JPGQuality: %d must be between 1 and 100", c.JPGQuality))
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.UntiledTileSize < MinUntiledTileSize || c.UntiledTileSize > MaxUntiledTileSize {
		errs = append(errs, fmt.Errorf("UntiledTileSize: %d must be between %d and %d", c.UntiledTileSize, MinUntiledTileSize, MaxUntiledTileSize))
	}
	switch c.ColourProfiles {
	case ColourConvert, ColourEmbed, ColourStrip:
	default:
		errs = append(errs, fmt.Errorf("ColourProfiles: %q must be convert, embed or strip", c.ColourProfiles))
	}
	if c.PyramidMaxBytes < 0 {
		errs = append(errs, fmt.Errorf("PyramidMaxBytes: %d must be >= 0", c.PyramidMaxBytes))
	}
	if c.PyramidBuilds < 1 {
		errs = append(errs, fmt.Errorf("PyramidBuilds: %d must be >= 1", c.PyramidBuilds))
	}
	if c.PyramidMinFreeBytes < 0 || c.PyramidMinFreePercent < 0 || c.PyramidMinFreePercent >= 100 {
		errs = append(errs, errors.New("CacheMinFree: must be >= 0 and below 100%"))
	}
	return errors.Join(errs...)
}

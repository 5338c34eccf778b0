package vips

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"

	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/sources"
)

// Config configures a Vips renderer. The zero value of every field but
// TilePath means "use the default" as each field's comment says.
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

	// Concurrency is how many renders run at once. Zero means GOMAXPROCS.
	Concurrency int

	// QueueLen is how many renders may wait for a free worker; one more is
	// refused with ErrOverloaded (a 503 with Retry-After). Zero means
	// 8 × Concurrency; negative means no queue at all.
	QueueLen int

	// JPGQuality is the JPEG (and WebP) quality, 1 to 100 (RAIS's
	// JPGQuality). Zero means 75.
	JPGQuality int

	// Limits are the largest outputs served and advertised (RAIS's
	// ImageMaxArea, ImageMaxWidth, ImageMaxHeight). Zero fields mean no limit.
	Limits rules.Limits

	// MaxSourcePixels is the most pixels a render may decode from a source
	// that cannot be read in pieces (no internal tiles: plain JPEG, PNG,
	// WebP, GIF, stripped TIFF, single-tile JPEG 2000), counted at the
	// pyramid level or JPEG shrink-on-load factor the request reads. Such a
	// decode streams through every pixel whatever the request asks for, so
	// one request for a small tile of a decompression bomb (a few KB of PNG
	// declaring 50,000 × 50,000) would hold a worker for minutes. Requests
	// over it fail before decoding (SourceTooLargeError). Zero means 1
	// gigapixel (1,073,741,824): about 10 s of libjpeg and 20 s of libpng at
	// the 50-100 megapixels a second one core decodes, inside the default
	// RenderTimeout of 60 s, and more than any flat scan a site serves today
	// (the 236-megapixel sample decodes in about 2.5 s). Negative means no
	// limit.
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
	// own JPEG quality instead of JPGQuality. Off in the zero value; the
	// command's configuration turns it on by default.
	TilePassthrough bool

	// UntiledTileSize is the tile size advertised for sources with no
	// internal tiling (plain JPEG, PNG, stripped TIFF), where every tile costs
	// a decode of the rows above it, so fewer, larger tiles are cheaper. Zero
	// means 1024.
	UntiledTileSize int

	// ColourProfiles is what renders do with a source's embedded ICC
	// profile: ColourConvert ("convert", converted to sRGB, no profile
	// sent), ColourEmbed ("embed", pixels as stored, the profile written
	// into the output) or ColourStrip ("strip", ignored). A profile that
	// describes sRGB costs nothing in any of them, and its pyramid tiles pass
	// through. Empty means "convert".
	ColourProfiles string

	// PyramidDir is where automatic pyramids of large flat sources are
	// kept (pyramid.go), normally CacheDir/pyramid. Empty means none are
	// built, and flat sources advertise UntiledTileSize tiles.
	PyramidDir string

	// PyramidMinPixels is the size from which a flat source (plain JPEG,
	// PNG, WebP, stripped TIFF; 8-bit gray or RGB without alpha) gets an
	// automatic pyramid. Zero means 33,554,432 (32 megapixels, e.g. 7000 ×
	// 4800): below it the worst full-resolution tile decodes in about 0.3 s
	// and the tile tier absorbs repeats; above it deep zoom into a flat file
	// costs seconds a tile. Negative means no automatic pyramids.
	PyramidMinPixels int64

	// PyramidMaxBytes is the byte budget of PyramidDir; the least recently
	// used pyramids are removed to stay under it. Zero means 10 GB (about
	// 150 pyramids of 236-megapixel scans).
	PyramidMaxBytes int64

	// PyramidBuilds is how many pyramids are built at once. Zero means 1:
	// a build keeps a core busy for seconds to minutes, and interactive
	// renders must keep the rest.
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

func (c *Config) setDefaults() {
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
		c.JPGQuality = 75
	}
	if c.MaxSourcePixels == 0 {
		c.MaxSourcePixels = 1 << 30
	}
	if c.MetaCacheLen == 0 {
		c.MetaCacheLen = 4096
	}
	if c.OpenCacheLen == 0 {
		c.OpenCacheLen = 256
	}
	if c.UntiledTileSize == 0 {
		c.UntiledTileSize = 1024
	}
	if c.ColourProfiles == "" {
		c.ColourProfiles = ColourConvert
	}
	if c.PyramidMinPixels == 0 {
		c.PyramidMinPixels = 32 << 20
	}
	if c.PyramidMaxBytes == 0 {
		c.PyramidMaxBytes = 10 << 30
	}
	if c.PyramidBuilds == 0 {
		c.PyramidBuilds = 1
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.S3 != nil {
		if err := c.S3.Validate(); err != nil {
			errs = append(errs, err)
		}
	} else if c.TilePath == "" {
		errs = append(errs, errors.New("TilePath: must name the directory of source images"))
	} else if fi, err := os.Stat(c.TilePath); err != nil {
		errs = append(errs, fmt.Errorf("TilePath: %w", err))
	} else if !fi.IsDir() {
		errs = append(errs, fmt.Errorf("TilePath: %q is not a directory", c.TilePath))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("RenderConcurrency: %d must be >= 0", c.Concurrency))
	}
	if c.JPGQuality < 0 || c.JPGQuality > 100 {
		errs = append(errs, fmt.Errorf("JPGQuality: %d must be between 1 and 100", c.JPGQuality))
	}
	if c.Limits.MaxArea < 0 || c.Limits.MaxWidth < 0 || c.Limits.MaxHeight < 0 {
		errs = append(errs, errors.New("ImageMaxArea, ImageMaxWidth, ImageMaxHeight: must be >= 0 (0 = no limit)"))
	}
	if c.UntiledTileSize < 0 || c.UntiledTileSize > 4096 {
		errs = append(errs, fmt.Errorf("UntiledTileSize: %d must be between 1 and 4096", c.UntiledTileSize))
	}
	switch c.ColourProfiles {
	case "", ColourConvert, ColourEmbed, ColourStrip:
	default:
		errs = append(errs, fmt.Errorf("ColourProfiles: %q must be convert, embed or strip", c.ColourProfiles))
	}
	if c.PyramidMaxBytes < 0 {
		errs = append(errs, fmt.Errorf("PyramidMaxBytes: %d must be >= 0", c.PyramidMaxBytes))
	}
	if c.PyramidBuilds < 0 {
		errs = append(errs, fmt.Errorf("PyramidBuilds: %d must be >= 0", c.PyramidBuilds))
	}
	if c.PyramidMinFreeBytes < 0 || c.PyramidMinFreePercent < 0 || c.PyramidMinFreePercent >= 100 {
		errs = append(errs, errors.New("CacheMinFree: must be >= 0 and below 100%"))
	}
	return errors.Join(errs...)
}

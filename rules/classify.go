package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Tier is the cache tier a request belongs to.
type Tier uint8

const (
	// TierTile: a pixel region, small output, the viewer's pyramid tiles.
	TierTile Tier = iota
	// TierThumbnail: the whole image (or its square), small output.
	TierThumbnail
	// TierInfo: info.json.
	TierInfo
	// TierOther: everything else (big renders, odd rotations, …).
	TierOther
	// NumTiers is the number of tiers.
	NumTiers
)

var tierNames = [NumTiers]string{"tile", "thumbnail", "info", "other"}

func (t Tier) String() string {
	if t < NumTiers {
		return tierNames[t]
	}
	return "unknown"
}

// ParseTier returns the tier named s ("tile", "thumbnail", "info", "other").
func ParseTier(s string) (Tier, bool) {
	i := slices.Index(tierNames[:], s)
	return Tier(i), i >= 0
}

// Classifier sorts requests into tiers. The zero value uses the defaults
// each field names.
type Classifier struct {
	// TileMaxSize is the largest tile output, in both dimensions. Zero
	// means 1024.
	TileMaxSize int
	// TileFormats are the formats a tile may have. Nil means jpg only.
	TileFormats []Format
	// ThumbnailMaxSize is the largest thumbnail output, in both
	// dimensions. Zero means 1000.
	ThumbnailMaxSize int
	// ThumbnailFormats are the formats a thumbnail may have. Nil means
	// jpg, png and webp.
	ThumbnailFormats []Format
}

// Defaults and bounds of Classifier, also the configuration package's
// (Tiers.Tile.MaxSize, Tiers.Thumbnail.MaxSize).
const (
	DefaultTileMaxSize      = 1024
	DefaultThumbnailMaxSize = 1000
	// MaxClassifySize is the largest MaxSize: more than any output the
	// default limits allow, so larger values mean nothing.
	MaxClassifySize = 100000
)

var (
	defaultTileFormats  = []Format{FormatJPG}
	defaultThumbFormats = []Format{FormatJPG, FormatPNG, FormatWebP}
)

// DefaultClassifier returns the defaults, every field set: what the zero
// Classifier classifies as.
func DefaultClassifier() Classifier {
	return Classifier{TileMaxSize: DefaultTileMaxSize, TileFormats: slices.Clone(defaultTileFormats),
		ThumbnailMaxSize: DefaultThumbnailMaxSize, ThumbnailFormats: slices.Clone(defaultThumbFormats)}
}

// Validate reports every problem with c at once, under the keys an
// operator writes. It checks c as given: a zero MaxSize, which Classify
// reads as the default, is reported, so a configuration that says 0 is
// told so rather than silently given the default (start from
// DefaultClassifier).
func (c Classifier) Validate() error {
	var errs []error
	for _, f := range []struct {
		key string
		n   int
	}{{"Tiers.Tile.MaxSize", c.TileMaxSize}, {"Tiers.Thumbnail.MaxSize", c.ThumbnailMaxSize}} {
		if f.n < 1 || f.n > MaxClassifySize {
			errs = append(errs, fmt.Errorf("%s: %d must be between 1 and %d", f.key, f.n, MaxClassifySize))
		}
	}
	return errors.Join(errs...)
}

// Classify returns the tier of an image request resolved as res; req.Kind
// KindInfo is TierInfo whatever res holds.
//
// A tile is a pixel region (not the whole image) rendered at most
// TileMaxSize on each side, unrotated and unmirrored, in default or color
// quality, in one of TileFormats. A thumbnail is the whole image or its
// square, at most ThumbnailMaxSize on each side, in one of
// ThumbnailFormats, in any rotation and quality. Everything else is
// TierOther: whole-image views larger than ThumbnailMaxSize, large,
// rotated or grey regions, other formats.
func (c Classifier) Classify(req Request, res Resolved) Tier {
	if req.Kind == KindInfo {
		return TierInfo
	}
	tile, thumb := c.misses(req, res)
	switch {
	case tile == 0:
		return TierTile
	case thumb == 0:
		return TierThumbnail
	}
	return TierOther
}

// miss is a set of the tile or thumbnail rule's conditions that a request
// fails; zero means it meets the rule.
type miss uint8

const (
	missRegion   miss = 1 << iota // tile: not a pixel region of part of the image; thumbnail: not the whole image or its square
	missSize                      // larger than the tier's MaxSize on a side
	missRotation                  // tile: rotated or mirrored
	missQuality                   // tile: not default or color
	missFormat                    // not one of the tier's formats
)

// misses are the conditions of the tile rule and of the thumbnail rule
// that req, resolved as res, fails: one computation behind both Classify
// and Explain, so the explanation is of the rule that is applied.
func (c Classifier) misses(req Request, res Resolved) (tile, thumb miss) {
	tileMax, thumbMax, tileF, thumbF := c.settings()
	if !((req.Region.Kind == RegionPixels || req.Region.Kind == RegionPercent) && !res.Full) {
		tile |= missRegion
	}
	if res.Width > tileMax || res.Height > tileMax {
		tile |= missSize
	}
	if res.Rotation != (Rotation{}) {
		tile |= missRotation
	}
	if res.Quality != QualityDefault && res.Quality != QualityColor {
		tile |= missQuality
	}
	if !slices.Contains(tileF, res.Format) {
		tile |= missFormat
	}
	if !(req.Region.Kind == RegionFull || req.Region.Kind == RegionSquare || res.Full) {
		thumb |= missRegion
	}
	if res.Width > thumbMax || res.Height > thumbMax {
		thumb |= missSize
	}
	if !slices.Contains(thumbF, res.Format) {
		thumb |= missFormat
	}
	return tile, thumb
}

// settings are c's fields with their defaults applied.
func (c Classifier) settings() (tileMax, thumbMax int, tileF, thumbF []Format) {
	tileMax, thumbMax, tileF, thumbF = c.TileMaxSize, c.ThumbnailMaxSize, c.TileFormats, c.ThumbnailFormats
	if tileMax == 0 {
		tileMax = DefaultTileMaxSize
	}
	if thumbMax == 0 {
		thumbMax = DefaultThumbnailMaxSize
	}
	if tileF == nil {
		tileF = defaultTileFormats
	}
	if thumbF == nil {
		thumbF = defaultThumbFormats
	}
	return tileMax, thumbMax, tileF, thumbF
}

// Explain returns the tier Classify gives and, in words, the rule that
// put the request there and why the rules before it did not apply: what
// `iiif-proxy classify` prints for tuning the tiers. For a 2000-pixel
// view of the whole image:
//
//	other: not a tile (not a pixel region of part of the image; 2000×1500 is over TileMaxSize 1024);
//	not a thumbnail (2000×1500 is over ThumbnailMaxSize 1000)
func (c Classifier) Explain(req Request, res Resolved) (Tier, string) {
	if req.Kind == KindInfo {
		return TierInfo, "info: every info.json"
	}
	tileMax, thumbMax, tileF, thumbF := c.settings()
	tile, thumb := c.misses(req, res)
	size := fmt.Sprintf("%d×%d", res.Width, res.Height)
	switch {
	case tile == 0:
		return TierTile, fmt.Sprintf("tile: a pixel region of part of the image, %s within TileMaxSize %d, unrotated, %s quality, %s in TileFormats",
			size, tileMax, res.Quality, res.Format.Ext())
	case thumb == 0:
		return TierThumbnail, fmt.Sprintf("thumbnail: the whole image or its square, %s within ThumbnailMaxSize %d, %s in ThumbnailFormats; not a tile (%s)",
			size, thumbMax, res.Format.Ext(), why(tile, size, "TileMaxSize", tileMax, tileF, res, true))
	}
	return TierOther, fmt.Sprintf("other: not a tile (%s); not a thumbnail (%s)",
		why(tile, size, "TileMaxSize", tileMax, tileF, res, true),
		why(thumb, size, "ThumbnailMaxSize", thumbMax, thumbF, res, false))
}

// why says which conditions m holds, for Explain.
func why(m miss, size, maxName string, max int, formats []Format, res Resolved, tile bool) string {
	var parts []string
	if m&missRegion != 0 {
		if tile {
			parts = append(parts, "not a pixel region of part of the image")
		} else {
			parts = append(parts, "not the whole image or its square")
		}
	}
	if m&missSize != 0 {
		parts = append(parts, fmt.Sprintf("%s is over %s %d", size, maxName, max))
	}
	if m&missRotation != 0 {
		parts = append(parts, "rotated "+res.Rotation.String())
	}
	if m&missQuality != 0 {
		parts = append(parts, res.Quality.String()+" quality")
	}
	if m&missFormat != 0 {
		exts := make([]string, len(formats))
		for i, f := range formats {
			exts[i] = f.Ext()
		}
		parts = append(parts, fmt.Sprintf("%s is not in %s", res.Format.Ext(), strings.Join(exts, ", ")))
	}
	return strings.Join(parts, "; ")
}

// FormatNames are the extensions ParseFormat knows, in order.
func FormatNames() []string {
	var out []string
	for f := FormatJPG; f <= FormatTIF; f++ {
		out = append(out, f.Ext())
	}
	return out
}

// ParseFormat returns the format with extension ext ("jpg", "png", …).
func ParseFormat(ext string) (Format, bool) {
	for f := FormatJPG; f <= FormatTIF; f++ {
		if f.Ext() == ext {
			return f, true
		}
	}
	return 0, false
}

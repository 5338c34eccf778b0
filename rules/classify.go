package rules

import "slices"

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

var (
	defaultTileFormats  = []Format{FormatJPG}
	defaultThumbFormats = []Format{FormatJPG, FormatPNG, FormatWebP}
)

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
	tileMax, thumbMax := c.TileMaxSize, c.ThumbnailMaxSize
	if tileMax == 0 {
		tileMax = 1024
	}
	if thumbMax == 0 {
		thumbMax = 1000
	}
	tileF, thumbF := c.TileFormats, c.ThumbnailFormats
	if tileF == nil {
		tileF = defaultTileFormats
	}
	if thumbF == nil {
		thumbF = defaultThumbFormats
	}
	if (req.Region.Kind == RegionPixels || req.Region.Kind == RegionPercent) && !res.Full &&
		res.Width <= tileMax && res.Height <= tileMax && res.Rotation == (Rotation{}) &&
		(res.Quality == QualityDefault || res.Quality == QualityColor) && slices.Contains(tileF, res.Format) {
		return TierTile
	}
	if (req.Region.Kind == RegionFull || req.Region.Kind == RegionSquare || res.Full) &&
		res.Width <= thumbMax && res.Height <= thumbMax && slices.Contains(thumbF, res.Format) {
		return TierThumbnail
	}
	return TierOther
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

// Package rules parses, validates and canonicalizes IIIF Image API URLs
// (versions 3.0 and 2.1, compliance level 2) and resolves a parsed request
// against an image's dimensions. It is pure: no I/O, no globals, no cgo.
//
// A request travels through two steps:
//
//	req, err := rules.Parse(rules.V3, "ark%3A%2F1234/0,0,512,512/256,/0/default.jpg")
//	// req.ID == "ark:/1234", req.Region.Kind == RegionPixels, ...
//	res, err := req.Resolve(rules.ImageInfo{Width: 6000, Height: 4000}, limits)
//	// res.Region == Rect{0, 0, 512, 512}, res.Width == 256, res.Height == 256
//	res.Canonical() // "0,0,512,512/256,256/0/default.jpg"
//
// Parse checks the grammar only; Resolve applies the semantics that need the
// image's size (a region wholly outside the image, upscaling without "^",
// zero-sized output, the server's limits). Every error is an *Error that names
// the bad segment and what was expected.
package rules

// Version is the IIIF Image API version a request was made under.
type Version uint8

const (
	// V2 is the IIIF Image API 2.1.
	V2 Version = 2
	// V3 is the IIIF Image API 3.0.
	V3 Version = 3
)

// Kind says what a request asks for.
type Kind uint8

const (
	// KindImage is {id}/{region}/{size}/{rotation}/{quality}.{format}.
	KindImage Kind = iota
	// KindInfo is {id}/info.json.
	KindInfo
	// KindBase is the bare {id}, which servers answer with a 303 to info.json.
	KindBase
)

// RegionKind is the form of the region segment.
type RegionKind uint8

const (
	RegionFull    RegionKind = iota // "full"
	RegionSquare                    // "square"
	RegionPixels                    // "x,y,w,h"
	RegionPercent                   // "pct:x,y,w,h"
)

// Region is the parsed region segment. X, Y, W, H hold pixels for
// RegionPixels (whole numbers) and percentages for RegionPercent.
type Region struct {
	Kind       RegionKind
	X, Y, W, H float64
}

// SizeKind is the form of the size segment.
type SizeKind uint8

const (
	SizeMax     SizeKind = iota // "max" (3.0), "full" or "max" (2.1)
	SizeWidth                   // "w,"
	SizeHeight                  // ",h"
	SizePct                     // "pct:n"
	SizeExact                   // "w,h"
	SizeBestFit                 // "!w,h"
)

// Size is the parsed size segment. Upscale is the 3.0 "^" prefix; in 2.1
// requests it is always false (2.1 upscales implicitly).
type Size struct {
	Kind    SizeKind
	Upscale bool
	W, H    int     // for SizeWidth, SizeHeight, SizeExact, SizeBestFit
	Pct     float64 // for SizePct
}

// Rotation is the parsed rotation segment: mirror first, then rotate
// clockwise by Degrees (0 <= Degrees <= 360). Resolve turns 360 into 0: both
// leave the image as it is.
type Rotation struct {
	Mirror  bool
	Degrees float64
}

// Quality is the parsed quality segment.
type Quality uint8

const (
	QualityDefault Quality = iota
	QualityColor
	QualityGray
	QualityBitonal
)

// Format is the output format, from the extension.
type Format uint8

const (
	FormatJPG Format = iota
	FormatPNG
	FormatWebP
	FormatGIF
	FormatTIF
)

// Request is a parsed IIIF URL path. ID is the decoded identifier: when the
// path held no percent-escapes it is a substring of the input, so callers that
// parsed a string aliasing a reused buffer must clone it before keeping it.
type Request struct {
	Version  Version
	Kind     Kind
	ID       string
	Region   Region
	Size     Size
	Rotation Rotation
	Quality  Quality
	Format   Format
}

// ImageInfo is what Resolve needs to know about the source image. Both
// dimensions must be between 1 and MaxDimension.
type ImageInfo struct {
	Width, Height int
}

// Limits are the server's output limits (RAIS's ImageMaxArea, ImageMaxWidth,
// ImageMaxHeight). Zero (or a negative value) means no limit; unlike a 3.0
// info.json, MaxHeight is not inferred from MaxWidth.
type Limits struct {
	MaxArea   int64
	MaxWidth  int
	MaxHeight int
}

// Rect is a rectangle in full-resolution image pixels.
type Rect struct {
	X, Y, W, H int
}

// Resolved is a request with its region and size computed against an image:
// the region cropped to the image, the exact output size before rotation.
type Resolved struct {
	Version  Version
	Region   Rect
	Full     bool // Region covers the whole image
	Width    int  // output width before rotation
	Height   int  // output height before rotation
	Rotation Rotation
	Quality  Quality
	Format   Format
	// MaxW and MaxH are the size "max" resolves to for this region, so the
	// canonical form can say "max" (3.0) or "full"/"max" (2.1).
	MaxW, MaxH int
	// UpMaxW and UpMaxH are the size "^max" resolves to for this region: the
	// region scaled up or down to the limits, or MaxW×MaxH when no limit is
	// set. The 3.0 canonical form says "^max" for an upscaled output of
	// exactly this size.
	UpMaxW, UpMaxH int
	// Upscaled is true when the output is larger than the region in either
	// dimension.
	Upscaled bool
}

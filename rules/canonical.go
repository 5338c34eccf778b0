package rules

import (
	"strconv"
)

// Canonical returns the canonical form of r, "{region}/{size}/{rotation}/{quality}.{format}",
// without the identifier. It follows the canonical URI syntax of r.Version
// (3.0 §4.8, 2.1 §4.7):
//
//	region    "full" when the region is the whole image, else "x,y,w,h"
//	size 3.0  "max" when the output is the size "max" gives, "^max" when it
//	          is the upscaled size "^max" gives, else "w,h", or "^w,h" when
//	          the output is larger than the region in either dimension
//	size 2.1  "full" when the output is the region's size, else "w," when
//	          "w," gives exactly this height, else "w,h"
//	rotation  "!" when mirrored, then the degrees with no trailing zeros
//	          ("90", "22.5"); 360 is written "0" (both leave the image as it is)
//	quality   as requested: "default" and "color" stay apart, as the spec
//	          says; AppendKey is where they meet
//	format    the extension
//
// Parsing the canonical form and resolving it against the same image and
// limits gives the same Resolved.
func (r Resolved) Canonical() string {
	var buf [96]byte
	return string(r.AppendCanonical(buf[:0]))
}

// AppendCanonical appends r.Canonical() to dst. It does not allocate when
// dst has room (about 70 bytes covers any request).
func (r Resolved) AppendCanonical(dst []byte) []byte {
	if r.Full {
		dst = append(dst, "full"...)
	} else {
		dst = appendRect(dst, r.Region)
	}
	dst = append(dst, '/')
	dst = r.appendSize(dst)
	return appendTail(dst, r.Rotation, r.Quality, r.Format)
}

func (r Resolved) appendSize(dst []byte) []byte {
	w, h := r.Width, r.Height
	if r.Version == V2 {
		switch {
		case w == r.Region.W && h == r.Region.H:
			return append(dst, "full"...)
		case r.Region.W > 0 && scaleRound(r.Region.H, w, r.Region.W) == int64(h):
			dst = strconv.AppendInt(dst, int64(w), 10)
			return append(dst, ',')
		}
		return appendPair(dst, w, h)
	}
	switch {
	case !r.Upscaled && w == r.MaxW && h == r.MaxH:
		return append(dst, "max"...)
	case r.Upscaled && w == r.UpMaxW && h == r.UpMaxH:
		return append(dst, "^max"...)
	case r.Upscaled:
		dst = append(dst, '^')
	}
	return appendPair(dst, w, h)
}

// AppendKey appends a version-independent key for the bytes r renders to:
// "x,y,w,h/ow,oh/[!]deg/quality.ext". Two requests with the same key render
// identical images whatever their spelling or version: the region is always
// in pixels, the size is the exact output size, 360 degrees is 0, and the
// qualities "default" and "color" share the word "color" (the server's
// default quality is color). It does not allocate when dst has room.
func (r Resolved) AppendKey(dst []byte) []byte {
	dst = appendRect(dst, r.Region)
	dst = append(dst, '/')
	dst = appendPair(dst, r.Width, r.Height)
	q := r.Quality
	if q == QualityDefault {
		q = QualityColor
	}
	return appendTail(dst, r.Rotation, q, r.Format)
}

// appendTail appends "/{rotation}/{quality}.{format}", the end every form of
// a request shares (canonical, key, normalised).
func appendTail(dst []byte, rot Rotation, q Quality, f Format) []byte {
	dst = append(dst, '/')
	dst = appendRotation(dst, rot)
	dst = append(dst, '/')
	dst = append(dst, q.String()...)
	dst = append(dst, '.')
	return append(dst, f.Ext()...)
}

func appendRect(dst []byte, g Rect) []byte {
	dst = strconv.AppendInt(dst, int64(g.X), 10)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(g.Y), 10)
	dst = append(dst, ',')
	return appendPair(dst, g.W, g.H)
}

func appendPair(dst []byte, w, h int) []byte {
	dst = strconv.AppendInt(dst, int64(w), 10)
	dst = append(dst, ',')
	return strconv.AppendInt(dst, int64(h), 10)
}

// appendRotation writes "[!]deg" with the shortest decimal that parses back to
// the same degrees: an integer when possible, no trailing zeros, a leading
// zero below 1 (3.0 §4.7-4.8, 2.1 §4.7). 360 is written as 0.
func appendRotation(dst []byte, r Rotation) []byte {
	if r.Mirror {
		dst = append(dst, '!')
	}
	d := r.Degrees
	if d == 360 {
		d = 0
	}
	return strconv.AppendFloat(dst, d, 'f', -1, 64)
}

// String returns the version as it appears in the spec: "2.1" or "3.0".
func (v Version) String() string {
	switch v {
	case V2:
		return "2.1"
	case V3:
		return "3.0"
	}
	return "unknown"
}

// String returns the quality as it appears in a URL: "default", "color",
// "gray" or "bitonal" ("unknown" for any other value).
func (q Quality) String() string {
	switch q {
	case QualityDefault:
		return "default"
	case QualityColor:
		return "color"
	case QualityGray:
		return "gray"
	case QualityBitonal:
		return "bitonal"
	}
	return "unknown"
}

// Ext returns the format's extension as it appears in a URL: "jpg", "png",
// "webp", "gif" or "tif" ("" for any other value).
func (f Format) Ext() string {
	switch f {
	case FormatJPG:
		return "jpg"
	case FormatPNG:
		return "png"
	case FormatWebP:
		return "webp"
	case FormatGIF:
		return "gif"
	case FormatTIF:
		return "tif"
	}
	return ""
}

// MIME returns the format's media type, for Content-Type ("image/jpeg", …;
// "application/octet-stream" for any other value).
func (f Format) MIME() string {
	switch f {
	case FormatJPG:
		return "image/jpeg"
	case FormatPNG:
		return "image/png"
	case FormatWebP:
		return "image/webp"
	case FormatGIF:
		return "image/gif"
	case FormatTIF:
		return "image/tiff"
	}
	return "application/octet-stream"
}

// String writes the region back in URL syntax, e.g. "full" or "pct:10,0,50.5,100".
func (g Region) String() string {
	switch g.Kind {
	case RegionFull:
		return "full"
	case RegionSquare:
		return "square"
	}
	s := ftoa(g.X) + "," + ftoa(g.Y) + "," + ftoa(g.W) + "," + ftoa(g.H)
	if g.Kind == RegionPercent {
		return "pct:" + s
	}
	return s
}

// String writes the size back in 3.0 URL syntax, e.g. "^!512,512" or "256,".
// A 2.1 "full" comes back as "max", its 3.0 spelling.
func (s Size) String() string {
	p := ""
	if s.Upscale {
		p = "^"
	}
	switch s.Kind {
	case SizeMax:
		return p + "max"
	case SizeWidth:
		return p + itoa(s.W) + ","
	case SizeHeight:
		return p + "," + itoa(s.H)
	case SizePct:
		return p + "pct:" + ftoa(s.Pct)
	case SizeExact:
		return p + itoa(s.W) + "," + itoa(s.H)
	case SizeBestFit:
		return p + "!" + itoa(s.W) + "," + itoa(s.H)
	}
	return p + "unknown"
}

// String writes the rotation back in URL syntax, e.g. "!22.5". Unlike the
// canonical form it keeps 360 as 360.
func (r Rotation) String() string {
	s := ftoa(r.Degrees)
	if r.Mirror {
		return "!" + s
	}
	return s
}

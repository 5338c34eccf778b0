package rules

import (
	"strings"
)

// Parse parses path, the raw (still percent-encoded) URL path that follows the
// version prefix, without its leading slash and without the query string:
//
//	Parse(V3, "abc/full/max/0/default.jpg")                  // KindImage
//	Parse(V3, "ark%3A%2F1%2Fb/0,0,256,256/256,/!90/gray.png") // ID "ark:/1/b"
//	Parse(V2, "abc/info.json")                               // KindInfo
//	Parse(V2, "abc")                                         // KindBase ("abc/" too)
//
// The identifier is one path segment: a "/" inside it must be sent as %2F.
// Other segments may be percent-encoded too (some clients send "^" as %5E).
// Parse checks the grammar of v only; Request.Resolve applies the rules that
// need the image's size. Every error is an *Error.
//
// When nothing is percent-encoded, Request.ID is a substring of path and Parse
// does not allocate.
func Parse(v Version, path string) (Request, error) {
	if v != V2 && v != V3 {
		return Request{}, &Error{Segment: "path", Value: path,
			Reason: "unsupported IIIF Image API version " + itoa(int(v)) + "; expected 2.1 or 3.0"}
	}
	r := Request{Version: v}

	// One pass finds the slashes and notes which segments need decoding or a
	// closer look, so the common path touches each byte once.
	var cut [4]int // positions of the first four slashes
	n := 0         // number of slashes
	var pct uint8  // bit k: segment k holds a '%'
	odd := false   // the identifier segment holds a NUL or a non-ASCII byte
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c == '/':
			if n < len(cut) {
				cut[n] = i
			}
			n++
		case c == '%':
			if n < 8 {
				pct |= 1 << n
			}
		case c == 0 || c >= 0x80:
			odd = odd || n == 0
		}
	}

	switch {
	case n == 0 || (n == 1 && cut[0] == len(path)-1): // "{id}" or "{id}/"
		raw := path
		if n == 1 {
			raw = path[:cut[0]]
		}
		id, err := decodeID(raw, pct&1 != 0, odd)
		if err != nil {
			return Request{}, err
		}
		r.Kind, r.ID = KindBase, id
		return r, nil
	case n == 1: // "{id}/info.json"
		if path[cut[0]+1:] != "info.json" {
			return Request{}, shapeError(path)
		}
		id, err := decodeID(path[:cut[0]], pct&1 != 0, odd)
		if err != nil {
			return Request{}, err
		}
		r.Kind, r.ID = KindInfo, id
		return r, nil
	case n != 4:
		return Request{}, shapeError(path)
	}

	id, err := decodeID(path[:cut[0]], pct&1 != 0, odd)
	if err != nil {
		return Request{}, err
	}
	r.Kind, r.ID = KindImage, id
	region := path[cut[0]+1 : cut[1]]
	size := path[cut[1]+1 : cut[2]]
	rotation := path[cut[2]+1 : cut[3]]
	qf := path[cut[3]+1:]
	var e *Error
	if pct != 0 {
		if region, e = param("region", region, pct&2 != 0); e != nil {
			return Request{}, e
		}
		if size, e = param("size", size, pct&4 != 0); e != nil {
			return Request{}, e
		}
		if rotation, e = param("rotation", rotation, pct&8 != 0); e != nil {
			return Request{}, e
		}
		if qf, e = param("format", qf, pct&16 != 0); e != nil {
			return Request{}, e
		}
	}
	if r.Region, e = parseRegion(region); e != nil {
		return Request{}, e
	}
	if r.Size, e = parseSize(v, size); e != nil {
		return Request{}, e
	}
	if r.Rotation, e = parseRotation(rotation); e != nil {
		return Request{}, e
	}
	if r.Quality, r.Format, e = parseQualityFormat(qf); e != nil {
		return Request{}, e
	}
	return r, nil
}

const imageShape = "{identifier}/{region}/{size}/{rotation}/{quality}.{format}"

// shapeError explains a path with the wrong number of segments.
func shapeError(path string) *Error {
	const slashHint = `; a "/" inside an identifier must be sent as %2F`
	n := strings.Count(path, "/") + 1
	if n == 2 {
		return &Error{Segment: "path", Value: path,
			Reason: `expected {identifier}/info.json (or ` + imageShape + `)` + slashHint}
	}
	return &Error{Segment: "path", Value: path,
		Reason: "expected " + imageShape + ", {identifier}/info.json or {identifier}, but the path has " +
			itoa(n) + " segments" + slashHint}
}

// param percent-decodes a non-identifier segment that holds a '%'. Error
// values then show the decoded text, which is what the client meant.
func param(seg, s string, escaped bool) (string, *Error) {
	if !escaped {
		return s, nil
	}
	return unescape(seg, s)
}

// fieldNames name the four numbers of a region, in order.
var fieldNames = [4]string{"x", "y", "width", "height"}

// parseRegion parses full, square, x,y,w,h and pct:x,y,w,h.
func parseRegion(raw string) (Region, *Error) {
	s := raw
	switch s {
	case "full":
		return Region{Kind: RegionFull}, nil
	case "square":
		return Region{Kind: RegionSquare}, nil
	}
	bad := func(reason string) (Region, *Error) {
		return Region{}, &Error{Segment: "region", Value: raw, Reason: reason}
	}
	kind, body := RegionPixels, s
	if strings.HasPrefix(s, "pct:") {
		kind, body = RegionPercent, s[len("pct:"):]
	}
	var parts [4]string
	for k := 0; k < 3; k++ {
		c := strings.IndexByte(body, ',')
		if c < 0 {
			return bad(`expected "full", "square", "x,y,w,h" or "pct:x,y,w,h"`)
		}
		parts[k], body = body[:c], body[c+1:]
	}
	if strings.IndexByte(body, ',') >= 0 {
		return bad(`expected "full", "square", "x,y,w,h" or "pct:x,y,w,h"`)
	}
	parts[3] = body

	var v [4]float64
	if kind == RegionPixels {
		for k, p := range parts {
			n, ne := parseUint(p)
			switch ne {
			case numSyntax:
				return bad(fieldNames[k] + " must be a whole number of pixels, not " + quote(p))
			case numTooLarge:
				return bad(fieldNames[k] + " " + p + " is too large (the limit is " + itoa(MaxDimension) + ")")
			}
			v[k] = float64(n)
		}
		if v[2] == 0 {
			return bad("width must be > 0")
		}
		if v[3] == 0 {
			return bad("height must be > 0")
		}
	} else {
		for k, p := range parts {
			f, ne := parseDecimal(p)
			switch ne {
			case numSyntax:
				return bad(fieldNames[k] + " must be a percentage written with digits and an optional \".\", not " + quote(p))
			case numTooLarge:
				return bad(fieldNames[k] + " " + p + " is too large")
			}
			v[k] = f
		}
		if v[0] > 100 {
			return bad("x must be between 0 and 100")
		}
		if v[1] > 100 {
			return bad("y must be between 0 and 100")
		}
		if v[2] == 0 {
			return bad("width must be > 0")
		}
		if v[3] == 0 {
			return bad("height must be > 0")
		}
	}
	return Region{Kind: kind, X: v[0], Y: v[1], W: v[2], H: v[3]}, nil
}

// parseSize parses the size forms of version v.
func parseSize(v Version, raw string) (Size, *Error) {
	s := raw
	bad := func(reason string) (Size, *Error) {
		return Size{}, &Error{Segment: "size", Value: raw, Reason: reason}
	}
	var sz Size
	if strings.HasPrefix(s, "^") {
		if v == V2 {
			return bad(`the "^" prefix is IIIF 3.0 syntax; IIIF 2.1 upscales without it, so send ` + quote(s[1:]))
		}
		sz.Upscale = true
		s = s[1:]
	}
	switch {
	case s == "max":
		sz.Kind = SizeMax
		return sz, nil
	case s == "full":
		if v == V3 {
			if sz.Upscale {
				return bad(`"full" is not a IIIF 3.0 size; use "^max"`)
			}
			return bad(`"full" is not a IIIF 3.0 size; use "max"`)
		}
		sz.Kind = SizeMax
		return sz, nil
	case strings.HasPrefix(s, "pct:"):
		n, ne := parseDecimal(s[len("pct:"):])
		switch {
		case ne == numSyntax:
			return bad(`expected "pct:n" with n a percentage written with digits and an optional "."`)
		case ne == numTooLarge:
			return bad("the percentage is too large")
		case n == 0:
			return bad("the percentage must be > 0")
		case n > 100 && v == V3 && !sz.Upscale:
			return bad(`the percentage must be <= 100 unless the size starts with "^" (send "^` + s + `" to upscale)`)
		}
		sz.Kind, sz.Pct = SizePct, n
		return sz, nil
	}
	best := strings.HasPrefix(s, "!")
	if best {
		s = s[1:]
	}
	c := strings.IndexByte(s, ',')
	if c < 0 || strings.IndexByte(s[c+1:], ',') >= 0 || (c == 0 && len(s) == 1) {
		return bad(sizeForms(v))
	}
	ws, hs := s[:c], s[c+1:]
	if best && (ws == "" || hs == "") {
		return bad(`"!w,h" needs both a width and a height`)
	}
	var err *Error
	if ws != "" {
		if sz.W, err = sizeNumber(raw, "width", ws); err != nil {
			return Size{}, err
		}
	}
	if hs != "" {
		if sz.H, err = sizeNumber(raw, "height", hs); err != nil {
			return Size{}, err
		}
	}
	switch {
	case best:
		sz.Kind = SizeBestFit
	case hs == "":
		sz.Kind = SizeWidth
	case ws == "":
		sz.Kind = SizeHeight
	default:
		sz.Kind = SizeExact
	}
	return sz, nil
}

// sizeNumber parses one dimension of a size.
func sizeNumber(raw, name, s string) (int, *Error) {
	n, ne := parseUint(s)
	switch {
	case ne == numSyntax:
		return 0, &Error{Segment: "size", Value: raw, Reason: name + " must be a whole number of pixels, not " + quote(s)}
	case ne == numTooLarge:
		return 0, &Error{Segment: "size", Value: raw, Reason: name + " " + s + " is too large (the limit is " + itoa(MaxDimension) + ")"}
	case n == 0:
		return 0, &Error{Segment: "size", Value: raw, Reason: name + " must be > 0"}
	}
	return n, nil
}

func sizeForms(v Version) string {
	if v == V2 {
		return `expected "full", "max", "w,", ",h", "pct:n", "w,h" or "!w,h"`
	}
	return `expected "max", "w,", ",h", "pct:n", "w,h" or "!w,h", each optionally prefixed with "^" to allow upscaling`
}

// parseRotation parses n and !n, 0 <= n <= 360.
func parseRotation(raw string) (Rotation, *Error) {
	s := raw
	var r Rotation
	if strings.HasPrefix(s, "!") {
		r.Mirror, s = true, s[1:]
	}
	deg, ne := parseDecimal(s)
	if ne == numSyntax {
		return Rotation{}, &Error{Segment: "rotation", Value: raw,
			Reason: `expected degrees from 0 to 360 written with digits and an optional "." (e.g. "90" or "22.5"), optionally after "!" to mirror`}
	}
	if ne == numTooLarge || deg > 360 {
		return Rotation{}, &Error{Segment: "rotation", Value: raw, Reason: "degrees must be between 0 and 360"}
	}
	r.Degrees = deg
	return r, nil
}

// parseQualityFormat parses "{quality}.{format}".
func parseQualityFormat(raw string) (Quality, Format, *Error) {
	s := raw
	dot := strings.LastIndexByte(s, '.')
	if dot < 0 {
		return 0, 0, &Error{Segment: "format", Value: raw, Reason: `expected {quality}.{format}, e.g. "default.jpg"`}
	}
	qs, fs := s[:dot], s[dot+1:]
	var q Quality
	switch qs {
	case "default":
		q = QualityDefault
	case "color":
		q = QualityColor
	case "gray":
		q = QualityGray
	case "bitonal":
		q = QualityBitonal
	default:
		reason := `expected "default", "color", "gray" or "bitonal"`
		switch qs {
		case "grey":
			reason += `; the spelling is "gray"`
		case "native":
			reason += `; "native" is IIIF 1.x, use "default"`
		}
		return 0, 0, &Error{Segment: "quality", Value: qs, Reason: reason}
	}
	var f Format
	switch fs {
	case "jpg":
		f = FormatJPG
	case "png":
		f = FormatPNG
	case "webp":
		f = FormatWebP
	case "gif":
		f = FormatGIF
	case "tif":
		f = FormatTIF
	default:
		reason := `expected "jpg", "png", "webp", "gif" or "tif"`
		switch fs {
		case "jpeg":
			reason += `; the extension is "jpg"`
		case "tiff":
			reason += `; the extension is "tif"`
		case "jp2", "pdf":
			reason = quote(fs) + " is not supported by this server; " + reason
		}
		return 0, 0, &Error{Segment: "format", Value: fs, Reason: reason}
	}
	return q, f, nil
}

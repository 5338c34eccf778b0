package rules

import (
	"math"
)

// Resolve computes r's region and output size for an image of info's size
// under the server's limits, following the Image API version r was made
// under:
//
//   - The region is cropped to the image; a region wholly outside it is an
//     error. "square" is the largest square, centred on the longer axis.
//     "pct:" edges are rounded to the nearest pixel (see pctSpan).
//   - "max" is the region's size, shrunk to fit lim keeping the aspect ratio.
//     3.0 "^max" is the region scaled up or down to fit lim (the region's size
//     when lim sets no limit). 2.1 "full" is treated as "max": Size does not
//     tell them apart, 2.1 §5.3 allows refusing sizes over the limits but
//     does not require it, and a shrunk "full" has the canonical form "w,"
//     (2.1 §4.2), so it never shares a cache entry with the unscaled image.
//   - "w," and ",h" keep the aspect ratio, rounding the computed side to the
//     nearest pixel; "pct:n" rounds both sides; "!w,h" fits inside w×h; "w,h"
//     may distort.
//   - In 3.0 a size larger than the region in either dimension needs "^",
//     except "!w,h", which the spec caps at the region's size instead
//     (3.0 §4.2). In 2.1 upscaling is implicit and allowed, "!w,h" included.
//   - Rotation 360 becomes 0: the same image, one cache entry.
//   - An explicit size ("w,", ",h", "pct:n", "w,h") whose output exceeds a
//     limit is an error naming the limit. "max", "^max" and "!w,h" shrink to
//     fit instead: the spec defines them as "as large as possible" within the
//     limits.
//   - The limits bound the image sent, so they apply after rotation: a
//     rotated output's bounding box (see rotatedBox) must fit them. "max",
//     "^max" and "!w,h" shrink until it does; an explicit size whose rotated
//     box breaks a limit is an error naming the size and the rotation. (A
//     45° turn of a 20480 × 11520 "max" was 15085 × 15085 before this rule.)
//   - An output with a zero width or height is an error.
//
// Every error is an *Error. Resolve does not allocate unless it fails.
func (r Request) Resolve(info ImageInfo, lim Limits) (Resolved, error) {
	if r.Kind != KindImage {
		return Resolved{}, &Error{Segment: "path", Value: r.ID, Reason: "not an image request: there is no region or size to resolve"}
	}
	if r.Version != V2 && r.Version != V3 {
		return Resolved{}, &Error{Segment: "path", Value: r.ID, Reason: "unsupported IIIF Image API version " + itoa(int(r.Version))}
	}
	W, H := info.Width, info.Height
	if W <= 0 || H <= 0 || W > MaxDimension || H > MaxDimension {
		return Resolved{}, &Error{Segment: "identifier", Value: r.ID, Reason: "the image reports unusable dimensions " + dims(W, H)}
	}
	res := Resolved{
		Version:  r.Version,
		Rotation: r.Rotation,
		Quality:  r.Quality,
		Format:   r.Format,
	}

	// Region.
	reg, e := r.Region.resolve(W, H)
	if e != nil {
		return Resolved{}, e
	}
	res.Region = reg
	res.Full = reg == Rect{0, 0, W, H}

	// Size, within the limits once rotated.
	d := r.Rotation.Degrees
	fitDeg := d
	if !(d >= 0 && d <= 360) { // reported below, after the size's own errors
		fitDeg = 0
	}
	res.MaxW, res.MaxH = fitLimits(reg.W, reg.H, lim, false, fitDeg)
	res.UpMaxW, res.UpMaxH = fitLimits(reg.W, reg.H, lim, true, fitDeg)
	if res.Width, res.Height, e = r.resolveSize(res, lim); e != nil {
		return Resolved{}, e
	}
	res.Upscaled = res.Width > reg.W || res.Height > reg.H

	// Rotation.
	if !(d >= 0 && d <= 360) { // also catches NaN
		return Resolved{}, &Error{Segment: "rotation", Value: r.Rotation.String(), Reason: "degrees must be between 0 and 360"}
	}
	if d == 360 {
		res.Rotation.Degrees = 0
	}
	if bw, bh := rotatedBox(int64(res.Width), int64(res.Height), res.Rotation.Degrees); !fits(bw, bh, lim) {
		// An explicit size, or nothing fits at all (a 1×1 output turned
		// 45° is 2×2): the size must give.
		reason := overLimit(bw, bh, lim)
		if res.Rotation.Degrees != 0 {
			reason = "rotated by " + ftoa(res.Rotation.Degrees) + "°, " + reason
		}
		return Resolved{}, &Error{Segment: "size", Value: r.Size.String(), Reason: reason}
	}
	if r.Quality > QualityBitonal {
		return Resolved{}, &Error{Segment: "quality", Value: r.Quality.String(), Reason: `expected "default", "color", "gray" or "bitonal"`}
	}
	if r.Format > FormatTIF {
		return Resolved{}, &Error{Segment: "format", Value: r.Format.Ext(), Reason: `expected "jpg", "png", "webp", "gif" or "tif"`}
	}
	return res, nil
}

// resolve computes the region in pixels of a W×H image.
func (g Region) resolve(W, H int) (Rect, *Error) {
	bad := func(reason string) (Rect, *Error) {
		return Rect{}, &Error{Segment: "region", Value: g.String(), Reason: reason}
	}
	switch g.Kind {
	case RegionFull:
		return Rect{0, 0, W, H}, nil
	case RegionSquare:
		// The spec lets the server place the square anywhere along the longer
		// side (3.0 §4.1, 2.1 §4.1); centred, rounding the offset down.
		side := min(W, H)
		return Rect{(W - side) / 2, (H - side) / 2, side, side}, nil
	case RegionPixels:
		for k, v := range [4]float64{g.X, g.Y, g.W, g.H} {
			if !(v >= 0 && v <= MaxDimension && v == math.Trunc(v)) {
				return bad(fieldNames[k] + " must be a whole number of pixels between 0 and " + itoa(MaxDimension))
			}
		}
		x, y, w, h := int(g.X), int(g.Y), int(g.W), int(g.H)
		if w == 0 {
			return bad("width must be > 0")
		}
		if h == 0 {
			return bad("height must be > 0")
		}
		if x >= W || y >= H {
			return bad("region is entirely outside the " + dims(W, H) + " image")
		}
		return Rect{x, y, min(w, W-x), min(h, H-y)}, nil
	case RegionPercent:
		for k, v := range [4]float64{g.X, g.Y, g.W, g.H} {
			if !(v >= 0 && v <= math.MaxFloat64) {
				return bad(fieldNames[k] + " must be a percentage >= 0")
			}
		}
		if g.W == 0 {
			return bad("width must be > 0")
		}
		if g.H == 0 {
			return bad("height must be > 0")
		}
		if g.X >= 100 || g.Y >= 100 {
			return bad("region is entirely outside the " + dims(W, H) + " image")
		}
		x, w := pctSpan(g.X, g.W, W)
		y, h := pctSpan(g.Y, g.H, H)
		return Rect{x, y, w, h}, nil
	}
	return bad(`expected "full", "square", "x,y,w,h" or "pct:x,y,w,h"`)
}

// pctSpan maps the span [pos, pos+n) percent of a full-length axis to pixels.
// The spec leaves the rounding to the server (3.0 §4.7, 2.1 §4); both edges
// are rounded to the nearest pixel, which reproduces the spec's examples
// (pct:41.6,7.5,40,70 of 300×200 is 125,15,120,140) and lets adjacent
// percentage regions share their boundary. The span is then cropped to the
// axis and never empty: a start that rounds to the end of the axis (when
// pos < 100) moves back one pixel, a zero width becomes one pixel.
// Callers ensure 0 <= pos < 100 and n > 0.
func pctSpan(pos, n float64, full int) (int, int) {
	f := float64(full)
	a := min(int(math.Round(pos*f/100)), full-1)
	end := (pos + n) * f / 100
	b := full
	if end < f {
		b = int(math.Round(end))
	}
	if b <= a {
		b = a + 1
	}
	return a, b - a
}

// resolveSize computes the output size for res.Region.
func (r Request) resolveSize(res Resolved, lim Limits) (int, int, *Error) {
	s := r.Size
	rw, rh := res.Region.W, res.Region.H
	up := s.Upscale || r.Version == V2
	bad := func(reason string) (int, int, *Error) {
		return 0, 0, &Error{Segment: "size", Value: s.String(), Reason: reason}
	}
	needsUp := func(what string) (int, int, *Error) {
		return bad(what + " the " + dims(rw, rh) + " region; prefix the size with \"^\" (" +
			quote("^"+s.String()) + ") to allow upscaling")
	}

	var w, h int64
	switch s.Kind {
	case SizeMax:
		if s.Upscale {
			return res.UpMaxW, res.UpMaxH, nil
		}
		return res.MaxW, res.MaxH, nil

	case SizeWidth:
		if s.W <= 0 || s.W > MaxDimension {
			return bad("width must be between 1 and " + itoa(MaxDimension))
		}
		if !up && s.W > rw {
			return needsUp("width " + itoa(s.W) + " is wider than")
		}
		w, h = int64(s.W), scaleRound(rh, s.W, rw)

	case SizeHeight:
		if s.H <= 0 || s.H > MaxDimension {
			return bad("height must be between 1 and " + itoa(MaxDimension))
		}
		if !up && s.H > rh {
			return needsUp("height " + itoa(s.H) + " is taller than")
		}
		w, h = scaleRound(rw, s.H, rh), int64(s.H)

	case SizePct:
		n := s.Pct
		if !(n > 0 && n <= math.MaxFloat64) {
			return bad("the percentage must be > 0")
		}
		if !up && n > 100 {
			return bad(`the percentage must be <= 100 unless the size starts with "^" (send ` + quote("^"+s.String()) + ` to upscale)`)
		}
		fw, fh := math.Round(float64(rw)*n/100), math.Round(float64(rh)*n/100)
		if fw > MaxDimension || fh > MaxDimension {
			return bad("the output would be larger than " + itoa(MaxDimension) + " pixels on a side")
		}
		w, h = int64(fw), int64(fh)

	case SizeExact:
		if s.W <= 0 || s.H <= 0 || s.W > MaxDimension || s.H > MaxDimension {
			return bad("width and height must be between 1 and " + itoa(MaxDimension))
		}
		if !up && (s.W > rw || s.H > rh) {
			return needsUp(dims(s.W, s.H) + " is larger than")
		}
		w, h = int64(s.W), int64(s.H)

	case SizeBestFit:
		if s.W <= 0 || s.H <= 0 || s.W > MaxDimension || s.H > MaxDimension {
			return bad("width and height must be between 1 and " + itoa(MaxDimension))
		}
		// Fit the region inside s.W×s.H, rounding the side that is not
		// bound by the box to the nearest pixel.
		if int64(s.W)*int64(rh) <= int64(s.H)*int64(rw) {
			w, h = int64(s.W), scaleRound(rh, s.W, rw)
		} else {
			w, h = scaleRound(rw, s.H, rh), int64(s.H)
		}
		// "As large as possible but not larger than" the box and the limits
		// and, without "^" in 3.0, the region (3.0 §4.2): never an error
		// for being too large. Each cap keeps the aspect ratio up to
		// rounding, so the smaller of each side is within all of them.
		switch {
		case !up:
			w, h = min(w, int64(res.MaxW)), min(h, int64(res.MaxH))
		case lim.MaxWidth > 0 || lim.MaxHeight > 0 || lim.MaxArea > 0:
			w, h = min(w, int64(res.UpMaxW)), min(h, int64(res.UpMaxH))
		}
		if w == 0 || h == 0 {
			return bad("the output would be " + i64toa(w) + "×" + i64toa(h) + " pixels for the " +
				dims(rw, rh) + " region; it must be at least 1 pixel in each dimension")
		}
		return int(w), int(h), nil

	default:
		return bad(sizeForms(r.Version))
	}

	if w == 0 || h == 0 {
		return bad("the output would be " + i64toa(w) + "×" + i64toa(h) + " pixels for the " +
			dims(rw, rh) + " region; it must be at least 1 pixel in each dimension")
	}
	if w > MaxDimension || h > MaxDimension {
		return bad("the output would be larger than " + itoa(MaxDimension) + " pixels on a side")
	}
	// The limits are checked by Resolve, on the output once rotated.
	return int(w), int(h), nil
}

// rotatedBox is the size of the bounding box of a w×h image rotated by deg
// degrees: exact for multiples of 90°, otherwise the exact box rounded up.
// libvips' vips_rotate makes the box rounded to the nearest pixel, so this is
// never smaller than what it outputs.
func rotatedBox(w, h int64, deg float64) (int64, int64) {
	switch deg {
	case 0, 180, 360:
		return w, h
	case 90, 270:
		return h, w
	}
	fw, fh := rotatedExact(float64(w), float64(h), deg)
	return int64(math.Ceil(fw - 1e-9)), int64(math.Ceil(fh - 1e-9))
}

// rotatedExact is the exact bounding box of a w×h rectangle rotated by deg.
func rotatedExact(w, h, deg float64) (float64, float64) {
	switch deg {
	case 0, 180, 360:
		return w, h
	case 90, 270:
		return h, w
	}
	sin, cos := math.Sincos(deg * math.Pi / 180)
	sin, cos = math.Abs(sin), math.Abs(cos)
	return w*cos + h*sin, w*sin + h*cos
}

// fitLimits returns the size of an rw×rh region scaled to fit lim once
// rotated by deg degrees, keeping its aspect ratio. Without up the region is only ever shrunk: that is "max".
// With up it is scaled up or down to the limits: that is 3.0 "^max"; when lim
// sets no limit at all "^max" has nothing to scale to and is the region.
//
// The spec leaves the algorithm to the server (3.0 implementation notes §4).
// Here the longer side d is the driver and the shorter side is computed from
// it exactly as "w," or ",h" would (rounded to the nearest pixel, at least 1),
// so a "max" bound by the width equals the "{maxWidth}," request. d is the
// largest value, no more than one above the float estimate of the scale,
// whose pair satisfies every limit.
func fitLimits(rw, rh int, lim Limits, up bool, deg float64) (int, int) {
	if bw, bh := rotatedBox(int64(rw), int64(rh), deg); fits(bw, bh, lim) &&
		(!up || (lim.MaxWidth <= 0 && lim.MaxHeight <= 0 && lim.MaxArea <= 0)) {
		return rw, rh
	}
	// Make the driver the first coordinate.
	long, short := rw, rh
	if rh > rw {
		long, short = rh, rw
	}
	// The scale of the region that makes its rotated box fit.
	fw, fh := rotatedExact(float64(rw), float64(rh), deg)
	s := math.Inf(1)
	if lim.MaxWidth > 0 {
		s = min(s, float64(lim.MaxWidth)/fw)
	}
	if lim.MaxHeight > 0 {
		s = min(s, float64(lim.MaxHeight)/fh)
	}
	if lim.MaxArea > 0 {
		s = min(s, math.Sqrt(float64(lim.MaxArea)/(fw*fh)))
	}
	if !up {
		s = min(s, 1)
	}
	hi := int64(MaxDimension)
	if est := float64(long)*s + 1; est < MaxDimension {
		hi = int64(est)
	}
	if !up {
		hi = min(hi, int64(long))
	}
	other := func(d int64) int64 { return max(1, roundDiv(int64(short)*d, int64(long))) }
	ok := func(d int64) bool {
		w, h := d, other(d)
		if rh > rw {
			w, h = h, w
		}
		bw, bh := rotatedBox(w, h, deg)
		return fits(bw, bh, lim)
	}
	// ok is monotone (false from some d on) and, unrotated, ok(1) holds:
	// every set limit is >= 1 and other(1) == 1. (Rotated, 1×1 can be 2×2:
	// then nothing fits and Resolve says so.) Binary search the largest
	// d <= hi.
	lo := int64(1)
	if hi > 2 && ok(hi-1) {
		lo = hi - 1
	}
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if ok(mid) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if rh > rw {
		return int(other(lo)), int(lo)
	}
	return int(lo), int(other(lo))
}

// overLimit explains which limit a w×h output breaks.
func overLimit(w, h int64, lim Limits) string {
	out := "the output would be " + i64toa(w) + "×" + i64toa(h) + " pixels, "
	const hint = "; \"max\" gives the largest size allowed"
	switch {
	case lim.MaxWidth > 0 && w > int64(lim.MaxWidth):
		return out + "wider than the server's maximum width of " + itoa(lim.MaxWidth) + hint
	case lim.MaxHeight > 0 && h > int64(lim.MaxHeight):
		return out + "taller than the server's maximum height of " + itoa(lim.MaxHeight) + hint
	}
	return out + "more than the server's maximum area of " + i64toa(lim.MaxArea) + " pixels" + hint
}

// fits reports whether a w×h output is within lim.
func fits(w, h int64, lim Limits) bool {
	return (lim.MaxWidth <= 0 || w <= int64(lim.MaxWidth)) &&
		(lim.MaxHeight <= 0 || h <= int64(lim.MaxHeight)) &&
		(lim.MaxArea <= 0 || w*h <= lim.MaxArea)
}

package rules

// AppendNormalised appends r's normalised form to dst:
// "{region}/{size}/{rotation}/{quality}.{format}", each segment written as
// Parse read it, without the image's size: "full", "square", "x,y,w,h" or
// "pct:x,y,w,h" with no superfluous zeros; the size in 3.0 syntax (a 2.1
// "full" is "max", which 2.1 also accepts); the rotation as in the canonical
// form (360 is 0); quality and format as requested.
//
// It is the form a request is keyed and forwarded by when the size of its
// image is unknown (sidecar mode, an upstream whose info.json cannot be
// read): different spellings of one request share it, and it is a valid
// request path in both versions but for the 3.0-only "^". It can read like
// a canonical key (AppendKey: an "x,y,w,h" region and a "w,h" size), so a
// cache keyed by both must mark it apart (package cache prefixes it "~").
func (r Request) AppendNormalised(dst []byte) []byte {
	switch r.Region.Kind {
	case RegionFull:
		dst = append(dst, "full"...)
	case RegionSquare:
		dst = append(dst, "square"...)
	default:
		dst = append(dst, r.Region.String()...)
	}
	dst = append(dst, '/')
	dst = append(dst, r.Size.String()...)
	return appendTail(dst, r.Rotation, r.Quality, r.Format)
}

// unknownSide stands for an output side Bound cannot know: larger than any
// tier's bound, so the request is classified TierOther.
const unknownSide = MaxDimension + 1

// Bound resolves r as far as it can be without the image's size, for
// classifying and budgeting a request whose image's size is unknown:
//
//   - An "x,y,w,h" region is resolved against the smallest image that holds
//     it whole: the output is exact if the image is at least that large and
//     smaller if the region is cropped, so the tier and budget are upper
//     bounds; errors that do not depend on the image (upscaling without
//     "^" in 3.0, a zero-sized output, an explicit size over lim) are
//     reported as Resolve reports them.
//   - Any other region: "w,h" is exact, "!w,h" a bound; for "w," and ",h"
//     the other side is the given one for "square", and for "full" and
//     "pct:" regions is taken to equal it (a tier is a retention policy, and
//     a thumbnail "full/200," must stay a thumbnail; the bytes are bounded
//     by the tier's MaxEntryBytes and the upstream's body limit whatever
//     the image's shape). "max" and "pct:n" have unknown sides.
//
// Full is false unless the region is "full": Bound cannot tell that a pixel
// region covers the whole image. An explicit size over lim is an *Error
// naming the size.
func (r Request) Bound(lim Limits) (Resolved, error) {
	if r.Region.Kind == RegionPixels {
		// No image is larger than MaxDimension: a region beyond it is
		// outside every image, and Resolve says so.
		g := r.Region
		w, h := min(g.X+g.W, MaxDimension), min(g.Y+g.H, MaxDimension)
		res, err := r.Resolve(ImageInfo{Width: max(int(w), 1), Height: max(int(h), 1)}, lim)
		res.Full = false
		return res, err
	}
	res := Resolved{Version: r.Version, Full: r.Region.Kind == RegionFull, Rotation: r.Rotation,
		Quality: r.Quality, Format: r.Format, Width: unknownSide, Height: unknownSide}
	if res.Rotation.Degrees == 360 {
		res.Rotation.Degrees = 0
	}
	s := r.Size
	explicit := true
	switch s.Kind {
	case SizeExact:
		res.Width, res.Height = s.W, s.H
	case SizeBestFit:
		res.Width, res.Height, explicit = s.W, s.H, false
	case SizeWidth:
		res.Width, res.Height = s.W, s.W
	case SizeHeight:
		res.Width, res.Height = s.H, s.H
	default:
		explicit = false
	}
	if explicit && !fits(int64(res.Width), int64(res.Height), lim) && (s.Kind == SizeExact || r.Region.Kind == RegionSquare) {
		return res, &Error{Segment: "size", Value: s.String(), Reason: overLimit(int64(res.Width), int64(res.Height), lim)}
	}
	if explicit && s.Kind == SizeWidth && lim.MaxWidth > 0 && s.W > lim.MaxWidth ||
		explicit && s.Kind == SizeHeight && lim.MaxHeight > 0 && s.H > lim.MaxHeight {
		return res, &Error{Segment: "size", Value: s.String(), Reason: overLimit(int64(res.Width), int64(res.Height), lim)}
	}
	return res, nil
}

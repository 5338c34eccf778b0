package vips

// #include <stdlib.h>
// #include "shim.h"
// #include "colour.h"
// #cgo pkg-config: lcms2 libjpeg
import "C"

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"unsafe"

	"github.com/iiif-proxy/iiif-proxy/internal/icc"
	"github.com/iiif-proxy/iiif-proxy/renderer/vipsconf"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// Colour profile policies (Config.ColourProfiles), owned by vipsconf
// (see there what each does).
const (
	ColourConvert = vipsconf.ColourConvert
	ColourEmbed   = vipsconf.ColourEmbed
	ColourStrip   = vipsconf.ColourStrip
)

// profileKind is what a source's embedded profile is to a render.
type profileKind int

const (
	profileNone profileKind = iota // no profile, or one that is ignored (unusable)
	profileSRGB                    // describes sRGB: nothing to do
	profileRGB                     // another RGB profile
	profileCMYK                    // a CMYK profile on CMYK pixels
	profileGray                    // a gray profile on one-band pixels
)

// colour is what a source carries: its profile and how to treat it. It is
// worked out once per source (describe), never per render.
type colour struct {
	kind    profileKind
	profile []byte // the embedded profile, for embed; nil for profileNone
	key     uint64 // FNV-1a of profile: the transform cache's key
	app2    []byte // profile as JPEG APP2 segments, for embed
}

// classify parses the profile a source's first level embeds. A profile that
// is corrupt, not an image profile, of the wrong colour space for the
// pixels, or that lcms cannot build a transform from is ignored with one
// warning: the source renders as if untagged, never fails.
func (v *Vips) classify(id string, in input, page, subifd int, data []byte, bands int, cmyk bool) colour {
	if len(data) == 0 {
		return colour{}
	}
	warn := func(why string) colour {
		v.log().Warn("ignoring the source's embedded ICC profile: rendering it as untagged sRGB",
			"id", id, "reason", why, "profile_bytes", len(data))
		return colour{}
	}
	p, err := icc.Parse(data)
	if err != nil {
		return warn(err.Error())
	}
	h := fnv.New64a()
	h.Write(p.Data)
	c := colour{profile: p.Data, key: h.Sum64()}
	colourBands := bands >= 3
	switch {
	case p.Space == icc.RGB && colourBands && !cmyk:
		if p.IsSRGB() {
			c.kind = profileSRGB
		} else {
			c.kind = profileRGB
		}
	case p.Space == icc.CMYK && cmyk:
		c.kind = profileCMYK
	case p.Space == icc.Gray && !colourBands:
		c.kind = profileGray
	default:
		return warn(fmt.Sprintf("a %q profile on %d-band %s pixels", string(p.Space), bands, map[bool]string{true: "CMYK", false: "RGB or gray"}[cmyk]))
	}
	if c.kind == profileRGB || c.kind == profileCMYK {
		// Build the transform now: a profile lcms rejects is found here,
		// once, and the first render finds its transform ready.
		cp, remote, free := in.cargs()
		defer free()
		var cerr *C.char
		if C.iiif_check_profile(cp, remote, C.int(page), C.int(subifd), C.ulonglong(c.key), &cerr) != 0 {
			msg := C.GoString(cerr)
			C.iiif_free(unsafe.Pointer(cerr))
			return warn(msg)
		}
	}
	c.app2 = icc.JPEGSegments(c.profile)
	return c
}

// iccMode is what a render of res does with src's profile (enum iiif_icc).
func (v *Vips) iccMode(c colour, res rules.Resolved) int {
	switch c.kind {
	case profileNone, profileSRGB:
		if v.cfg.ColourProfiles == ColourEmbed && c.kind == profileSRGB && embeddable(c, res) {
			return C.IIIF_ICC_EMBED
		}
		return C.IIIF_ICC_IGNORE
	}
	switch v.cfg.ColourProfiles {
	case ColourStrip:
		return C.IIIF_ICC_IGNORE
	case ColourEmbed:
		if embeddable(c, res) {
			return C.IIIF_ICC_EMBED
		}
	}
	if c.kind == profileGray {
		return C.IIIF_ICC_IGNORE // gray outputs are not converted (as before)
	}
	return C.IIIF_ICC_CONVERT
}

// embeddable reports whether the output of res can carry c's profile as it
// is: a format with a profile slot, and output pixels in the profile's
// colour space (a colour profile on a gray output is wrong).
func embeddable(c colour, res rules.Resolved) bool {
	switch res.Format {
	case rules.FormatJPG, rules.FormatPNG, rules.FormatWebP, rules.FormatTIF:
	default:
		return false
	}
	switch c.kind {
	case profileSRGB, profileRGB:
		return res.Quality == rules.QualityDefault || res.Quality == rules.QualityColor
	case profileGray:
		return res.Quality != rules.QualityBitonal
	}
	return false
}

// withProfile returns body (an encoded res) with c's profile spliced in
// when mode is embed and libvips did not write it (JPEG).
func withProfile(body []byte, c colour, mode int, res rules.Resolved) ([]byte, error) {
	if mode != C.IIIF_ICC_EMBED || res.Format != rules.FormatJPG || len(c.app2) == 0 {
		return body, nil
	}
	return icc.SpliceJPEG(make([]byte, 0, len(body)+len(c.app2)), body, c.app2)
}

// sameProfile reports whether a pyramid level's own profile is the one the
// source was classified by: a level tagged differently is never passed
// through.
func sameProfile(levelICC []byte, c colour) bool {
	return bytes.Equal(levelICC, c.profile) || (c.kind == profileNone && len(levelICC) == 0)
}

// cachedTransforms is how many colour transforms are cached (for tests).
func cachedTransforms() int { return int(C.iiif_icc_transforms()) }

// identitySuffix is what the colour policy adds to the source's identity:
// nothing when the policy cannot change its renders (no usable profile, or
// sRGB when not embedding).
func (c colour) identitySuffix(policy string) string {
	switch {
	case c.kind == profileNone, c.kind == profileSRGB && policy != ColourEmbed:
		return ""
	}
	return "+icc-" + policy
}

// Package icc reads the little of an ICC colour profile that a server needs
// to decide what to do with it, once per source and without a colour engine:
// whether it is a profile an image can be tagged with at all (not truncated,
// not a device link or abstract profile), its colour space, and whether it
// describes sRGB, so that an sRGB-tagged source costs nothing per render.
//
// "Describes sRGB" is decided on what the profile does, not on its name:
// a matrix/TRC RGB profile whose colorants are sRGB's (D50-adapted, as every
// ICC profile stores them) and whose three tone curves follow the sRGB curve
// within a quarter of an 8-bit step. That is every sRGB profile in common use
// (HP's "sRGB IEC61966-2.1" of 1998, colord's and Ghostscript's, libvips'
// built-in one, camera and scanner variants with other names), while a
// profile called "sRGB" that is something else (or Rec. 709, which shares
// sRGB's primaries but not its curve) is not taken for it. LUT-based sRGB
// profiles (the ICC's sRGB v4 preference profile) are not recognised: they
// are converted, which is correct, only not free.
package icc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Space is a profile's data colour space signature.
type Space string

// The colour spaces an image profile can describe.
const (
	RGB  Space = "RGB "
	Gray Space = "GRAY"
	CMYK Space = "CMYK"
)

// Profile is a parsed profile. The bytes are not copied: Data is the slice
// given to Parse.
type Profile struct {
	Data  []byte
	Class string // device class: "mntr", "scnr", "prtr", "spac"
	Space Space  // data colour space
	PCS   string // profile connection space: "XYZ " or "Lab "
	tags  map[string][]byte
}

// MaxSize bounds the profiles read: the largest real ones (printer profiles
// with big LUTs) are a few megabytes.
const MaxSize = 16 << 20

// ErrNotImageProfile means the bytes are an ICC profile that cannot tag an
// image: a device link, abstract or named-colour profile.
var ErrNotImageProfile = errors.New("icc: not an input, display, output or colour space profile")

// Parse checks that b is a whole ICC profile an image can be tagged with and
// reads its header and tag table. It does not interpret the tags.
func Parse(b []byte) (*Profile, error) {
	if len(b) < 132 {
		return nil, fmt.Errorf("icc: %d bytes, too short for a profile", len(b))
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("icc: %d bytes, larger than %d", len(b), MaxSize)
	}
	be := binary.BigEndian
	if string(b[36:40]) != "acsp" {
		return nil, errors.New("icc: no 'acsp' signature")
	}
	if size := be.Uint32(b[0:4]); int64(size) > int64(len(b)) || size < 132 {
		return nil, fmt.Errorf("icc: header says %d bytes, have %d", size, len(b))
	} else {
		b = b[:size]
	}
	p := &Profile{Data: b, Class: string(b[12:16]), Space: Space(b[16:20]), PCS: string(b[20:24])}
	switch p.Class {
	case "scnr", "mntr", "prtr", "spac":
	default:
		return nil, fmt.Errorf("%w (class %q)", ErrNotImageProfile, p.Class)
	}
	if p.PCS != "XYZ " && p.PCS != "Lab " {
		return nil, fmt.Errorf("icc: connection space %q", p.PCS)
	}
	n := be.Uint32(b[128:132])
	if n > 1024 || 132+int(n)*12 > len(b) {
		return nil, fmt.Errorf("icc: tag table of %d entries does not fit", n)
	}
	p.tags = make(map[string][]byte, n)
	for i := range int(n) {
		e := b[132+12*i:]
		off, size := be.Uint32(e[4:8]), be.Uint32(e[8:12])
		if uint64(off)+uint64(size) > uint64(len(b)) {
			return nil, fmt.Errorf("icc: tag %q lies outside the profile", e[0:4])
		}
		p.tags[string(e[0:4])] = b[off : off+size]
	}
	return p, nil
}

// D50-adapted XYZ of sRGB's primaries, as ICC profiles store them (IEC
// 61966-2-1 with the Bradford adaptation of ICC.1 Annex E).
var srgbColorants = [3][3]float64{
	{0.4361, 0.2225, 0.0139}, // rXYZ
	{0.3851, 0.7169, 0.0971}, // gXYZ
	{0.1431, 0.0606, 0.7141}, // bXYZ
}

// Tolerances: colorants differ between sRGB profiles in the fourth decimal
// (rounding, slightly different adaptation matrices); a curve within a
// quarter of an 8-bit step never changes an 8-bit value by more than one.
const (
	colorantTolerance = 0.0025
	curveTolerance    = 0.25 / 255
)

// IsSRGB reports whether p describes sRGB (see the package doc).
func (p *Profile) IsSRGB() bool {
	if p.Space != RGB || p.PCS != "XYZ " {
		return false
	}
	for i, name := range []string{"rXYZ", "gXYZ", "bXYZ"} {
		xyz, ok := readXYZ(p.tags[name])
		if !ok {
			return false
		}
		for k := range 3 {
			if math.Abs(xyz[k]-srgbColorants[i][k]) > colorantTolerance {
				return false
			}
		}
	}
	for _, name := range []string{"rTRC", "gTRC", "bTRC"} {
		c, ok := readCurve(p.tags[name])
		if !ok {
			return false
		}
		for i := 0; i <= 255; i++ {
			x := float64(i) / 255
			if math.Abs(c(x)-srgbDecode(x)) > curveTolerance {
				return false
			}
		}
	}
	return true
}

// Description is the profile's 'desc' text, or "" (for logs only).
func (p *Profile) Description() string {
	t := p.tags["desc"]
	be := binary.BigEndian
	switch {
	case len(t) >= 12 && string(t[:4]) == "desc": // v2 textDescriptionType
		n := be.Uint32(t[8:12])
		if uint64(n) <= uint64(len(t)-12) {
			s := t[12 : 12+n]
			for len(s) > 0 && s[len(s)-1] == 0 {
				s = s[:len(s)-1]
			}
			return string(s)
		}
	case len(t) >= 28 && string(t[:4]) == "mluc": // v4 multiLocalizedUnicodeType, first record
		size, off := be.Uint32(t[20:24]), be.Uint32(t[24:28])
		if uint64(off)+uint64(size) <= uint64(len(t)) {
			u := t[off : off+size]
			r := make([]rune, 0, len(u)/2)
			for i := 0; i+1 < len(u); i += 2 {
				r = append(r, rune(be.Uint16(u[i:])))
			}
			return string(r)
		}
	}
	return ""
}

func srgbDecode(x float64) float64 {
	if x <= 0.04045 {
		return x / 12.92
	}
	return math.Pow((x+0.055)/1.055, 2.4)
}

func s15f16(b []byte) float64 { return float64(int32(binary.BigEndian.Uint32(b))) / 65536 }

func readXYZ(t []byte) ([3]float64, bool) {
	if len(t) < 20 || string(t[:4]) != "XYZ " {
		return [3]float64{}, false
	}
	return [3]float64{s15f16(t[8:]), s15f16(t[12:]), s15f16(t[16:])}, true
}

// readCurve returns a TRC tag (curveType or parametricCurveType) as a
// function on [0, 1].
func readCurve(t []byte) (func(float64) float64, bool) {
	be := binary.BigEndian
	if len(t) < 12 {
		return nil, false
	}
	switch string(t[:4]) {
	case "curv":
		n := int(be.Uint32(t[8:12]))
		if n > (len(t)-12)/2 {
			return nil, false
		}
		switch n {
		case 0:
			return func(x float64) float64 { return x }, true
		case 1:
			g := float64(be.Uint16(t[12:14])) / 256
			return func(x float64) float64 { return math.Pow(x, g) }, true
		}
		tab := make([]float64, n)
		for i := range tab {
			tab[i] = float64(be.Uint16(t[12+2*i:])) / 65535
		}
		return func(x float64) float64 {
			f := x * float64(n-1)
			i := min(int(f), n-2)
			return tab[i] + (tab[i+1]-tab[i])*(f-float64(i))
		}, true
	case "para":
		kind := be.Uint16(t[8:10])
		counts := []int{1, 3, 4, 5, 7}
		if int(kind) >= len(counts) || len(t) < 12+4*counts[kind] {
			return nil, false
		}
		var p [7]float64
		for i := range counts[kind] {
			p[i] = s15f16(t[12+4*i:])
		}
		g, a, b, c, d, e, f := p[0], p[1], p[2], p[3], p[4], p[5], p[6]
		pow := func(v float64) float64 {
			if v <= 0 {
				return 0
			}
			return math.Pow(v, g)
		}
		switch kind {
		case 0:
			return func(x float64) float64 { return pow(x) }, true
		case 1:
			return func(x float64) float64 {
				if x >= -b/a {
					return pow(a*x + b)
				}
				return 0
			}, true
		case 2:
			return func(x float64) float64 {
				if x >= -b/a {
					return pow(a*x+b) + c
				}
				return c
			}, true
		case 3:
			return func(x float64) float64 {
				if x >= d {
					return pow(a*x + b)
				}
				return c * x
			}, true
		default:
			return func(x float64) float64 {
				if x >= d {
					return pow(a*x+b) + e
				}
				return c*x + f
			}, true
		}
	}
	return nil, false
}

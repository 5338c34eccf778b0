package rules

import (
	"math"
	"strconv"
)

// MaxDimension is the largest pixel value this package accepts anywhere: in a
// region, in a size, in an image's dimensions and in a computed output. It is
// far above anything libvips can decode, and small enough that the products
// Resolve computes (w×h, h×w/w') never overflow an int64.
const MaxDimension = 1 << 30

// numErr says why parseUint or parseDecimal failed.
type numErr uint8

const (
	numOK       numErr = iota
	numSyntax          // not digits (and at most one '.')
	numTooLarge        // above MaxDimension, or beyond float64
)

// parseUint parses a non-empty run of ASCII digits no larger than
// MaxDimension. Leading zeros are allowed ("007" is 7).
func parseUint(s string) (int, numErr) {
	if s == "" {
		return 0, numSyntax
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, numSyntax
		}
		n = n*10 + int(c)
		if n > MaxDimension {
			// Keep scanning so "99999999999x" is a syntax error, not a size one.
			for i++; i < len(s); i++ {
				if s[i]-'0' > 9 {
					return 0, numSyntax
				}
			}
			return 0, numTooLarge
		}
	}
	return n, numOK
}

// pow10 holds the powers of ten a float64 represents exactly.
var pow10 = [...]float64{
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
}

// parseDecimal parses the IIIF floating point syntax (Image API 3.0 §4.7,
// 2.1 §4): only decimal digits and at most one '.', at least one digit. No
// sign, no exponent. ".5" and "5." are accepted (the spec only says a leading
// zero SHOULD be present).
//
// With at most 15 significant digits and 22 decimals the mantissa and the
// power of ten are both exact float64 values, so one division gives the
// correctly rounded result, the same strconv.ParseFloat would: that keeps the
// common case free of strconv. Longer inputs, already checked to be plain
// digits, go to strconv.ParseFloat.
func parseDecimal(s string) (float64, numErr) {
	var mant uint64
	digits, sig, frac := 0, 0, 0
	dot, long := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if dot {
				return 0, numSyntax
			}
			dot = true
			continue
		}
		if c-'0' > 9 {
			return 0, numSyntax
		}
		digits++
		if sig == 0 && c == '0' {
			if dot {
				frac++
			}
			continue
		}
		if sig == 15 {
			long = true
			continue
		}
		mant = mant*10 + uint64(c-'0')
		sig++
		if dot {
			frac++
		}
	}
	if digits == 0 {
		return 0, numSyntax
	}
	if long || frac >= len(pow10) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) {
			return 0, numTooLarge
		}
		return f, numOK
	}
	return float64(mant) / pow10[frac], numOK
}

// roundDiv returns a/b rounded to the nearest integer, halves up, for a >= 0
// and b > 0. Callers keep a below 2^62.
func roundDiv(a, b int64) int64 {
	return (2*a + b) / (2 * b)
}

// scaleRound returns n×num/den rounded to the nearest integer: the length of
// the other side when one side of an n-long edge is scaled from den to num.
func scaleRound(n, num, den int) int64 {
	return roundDiv(int64(n)*int64(num), int64(den))
}

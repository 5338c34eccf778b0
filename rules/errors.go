package rules

import "strconv"

// Error is a request that breaks the IIIF grammar or cannot be served for this
// image: the proxy answers it with 400 Bad Request and may show Error() to the
// client as it is. Parse and Resolve return every rejection as an *Error:
//
//	var e *rules.Error
//	if errors.As(err, &e) { ... e.Segment ... }
type Error struct {
	// Segment names the part of the path at fault: "identifier", "region",
	// "size", "rotation", "quality", "format" or "path" (the path's shape).
	Segment string
	// Value is the offending text as it was sent (or, for an error found by
	// Resolve, the parsed segment written back out).
	Value string
	// Reason says what is wrong and what was expected.
	Reason string
}

// Error formats e as `size "0,": width must be > 0`.
func (e *Error) Error() string {
	return e.Segment + " " + strconv.Quote(e.Value) + ": " + e.Reason
}

// Messages are built with concatenation and strconv: fmt stays out of the
// package.

func quote(s string) string { return strconv.Quote(s) }

func itoa(n int) string { return strconv.Itoa(n) }

func i64toa(n int64) string { return strconv.FormatInt(n, 10) }

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func dims(w, h int) string { return itoa(w) + "×" + itoa(h) }

package rules

import (
	"strings"
	"unicode/utf8"
)

// decodeID percent-decodes the identifier segment. An identifier with no '%'
// is returned as is (a substring of the path, no allocation). It rejects an
// empty identifier, a malformed escape, a NUL byte and bytes that are not
// UTF-8: identifiers end up in file names, logs and info.json.
//
// escaped says raw holds a '%'; odd says it holds a NUL or a non-ASCII byte.
// Parse has already scanned for both.
func decodeID(raw string, escaped, odd bool) (string, error) {
	if raw == "" {
		return "", &Error{Segment: "identifier", Value: raw, Reason: "identifier is empty"}
	}
	if !escaped && !odd {
		return raw, nil
	}
	id := raw
	if escaped {
		var err *Error
		if id, err = unescape("identifier", raw); err != nil {
			return "", err
		}
	}
	if strings.IndexByte(id, 0) >= 0 {
		return "", &Error{Segment: "identifier", Value: raw, Reason: "identifier must not contain a NUL byte (%00)"}
	}
	if !utf8.ValidString(id) {
		return "", &Error{Segment: "identifier", Value: raw, Reason: "identifier must be UTF-8 once percent-decoded"}
	}
	if id == "" {
		return "", &Error{Segment: "identifier", Value: raw, Reason: "identifier is empty"}
	}
	return id, nil
}

// unescape percent-decodes s, a segment named seg. It allocates; callers only
// come here when s holds a '%'. "+" stays "+": this is a path, not a query.
func unescape(seg, s string) (string, *Error) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || unhex(s[i+1]) > 15 || unhex(s[i+2]) > 15 {
				end := min(i+3, len(s))
				return "", &Error{Segment: seg, Value: s, Reason: "malformed percent-escape " +
					quote(s[i:end]) + ": expected \"%\" followed by two hex digits, e.g. %2F for \"/\""}
			}
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		b = append(b, c)
	}
	return string(b), nil
}

// unhex returns the value of hex digit c, or 255.
func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

// AppendEscapedID appends id percent-encoded for use as one path segment of a
// IIIF URL (Image API 3.0 §9): every byte that is not an RFC 3986 unreserved
// character or one of the sub-delimiters and ":" is escaped, so "ark:/1/b"
// becomes "ark:%2F1%2Fb" and "%" becomes "%25". Parse turns the result back
// into id. The identifiers "." and ".." are sent as "%2E" and "%2E%2E". It
// does not allocate when dst has room.
func AppendEscapedID(dst []byte, id string) []byte {
	const hex = "0123456789ABCDEF"
	// "." and ".." are dot-segments that clients and proxies remove from paths.
	dots := id == "." || id == ".."
	for i := 0; i < len(id); i++ {
		c := id[i]
		if keepInSegment(c) && !dots {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hex[c>>4], hex[c&15])
	}
	return dst
}

// keepInSegment reports whether c may appear unescaped in an identifier
// segment: ALPHA / DIGIT / "-" / "." / "_" / "~" / sub-delims / ":".
func keepInSegment(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':':
		return true
	}
	return false
}

package icc

import "errors"

// maxChunk is the most profile bytes one APP2 segment holds: 65535 minus
// the length field (2) and the "ICC_PROFILE\0" seq count header (14).
const maxChunk = 65535 - 2 - 14

// JPEGSegments returns profile as the APP2 "ICC_PROFILE" marker segments
// that carry it in a JPEG file (ICC.1 Annex B.4), split into as many as it
// needs. Build them once per profile; SpliceJPEG inserts them.
func JPEGSegments(profile []byte) []byte {
	count := (len(profile) + maxChunk - 1) / maxChunk
	if count == 0 || count > 255 {
		return nil
	}
	out := make([]byte, 0, len(profile)+count*18)
	for i := range count {
		chunk := profile[i*maxChunk : min(len(profile), (i+1)*maxChunk)]
		n := 2 + 14 + len(chunk)
		out = append(out, 0xFF, 0xE2, byte(n>>8), byte(n))
		out = append(out, "ICC_PROFILE\x00"...)
		out = append(out, byte(i+1), byte(count))
		out = append(out, chunk...)
	}
	return out
}

// SpliceJPEG appends to dst the JPEG file jpg with segments (from
// JPEGSegments) inserted after its SOI and any JFIF/JFXX APP0 segments,
// where ICC.1 and the JFIF specification want them. jpg must not carry a
// profile already.
func SpliceJPEG(dst, jpg, segments []byte) ([]byte, error) {
	if len(jpg) < 4 || jpg[0] != 0xFF || jpg[1] != 0xD8 {
		return dst, errors.New("icc: not a JPEG file")
	}
	at := 2
	for at+4 <= len(jpg) && jpg[at] == 0xFF && jpg[at+1] == 0xE0 {
		at += 2 + (int(jpg[at+2])<<8 | int(jpg[at+3]))
	}
	if at > len(jpg) {
		return dst, errors.New("icc: truncated JPEG header")
	}
	dst = append(dst, jpg[:at]...)
	dst = append(dst, segments...)
	return append(dst, jpg[at:]...), nil
}

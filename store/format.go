package store

import (
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Keyspace. Every Pebble key starts with one byte naming its space:
//
//	"a" + access(8, big-endian Unix seconds) + key   access index; value: the entry's size (4 bytes, little-endian; empty before the S3-FIFO policy)
//	"e" + key                                        entry: header + body
//	"m"                                              counters (merge operand, see counters.go)
//	"v"                                              layout version of this keyspace
//
// The access index orders entries by the last access written to disk (at Put,
// Refresh, or a checkpoint of reads; see policy.go), least recent first: expiry
// reads it from the front, and Open rebuilds the in-memory eviction order from
// it. It is maintained in the same batch as the entry, but readers tolerate
// stale index keys (the entry is gone, or the policy holds another bucket for
// it) and simply delete them.
const (
	spaceAccess  = 'a'
	spaceEntry   = 'e'
	spaceEnd     = 'f' // first byte past the entry space
	accessKeyLen = 1 + 8
)

var (
	keyMeta    = []byte{'m'}
	keyLayout  = []byte{'v'}
	layoutV1   = []byte{1}
	rangeStart = []byte{spaceAccess} // PurgeAll deletes [rangeStart, rangeEnd)
	rangeEnd   = []byte{'m'}
)

// Value format, version 3 (written), 2 and 1 (still read). All integers
// little-endian.
//
//	off  len  field
//	  0    8  header checksum: xxhash64 of bytes [8, hlen+ctLen+idLen)
//	  8    1  format version (3; 2 or 1 in older values)
//	  9    1  flags (bit 0: LastModified is set)
//	 10    2  content type length (ctLen)
//	 12    4  body length
//	 16    8  source Last-Modified, Unix seconds
//	 24    8  stored-at, Unix nanoseconds
//	 32    8  last-access bucket, Unix seconds
//	 40    8  body hash: xxhash64 of the body, the ETag (computed once, at Put)
//	 48    4  body checksum: CRC32C of the body (versions 2 and 3)
//	 52    2  source identity length (idLen; version 3; zero in version 2)
//	 54    2  zero (versions 2 and 3)
//	hlen ctLen content type (hlen = 56 in versions 2 and 3, 48 in version 1)
//	  …  idLen source identity (version 3): Entry.SourceIdentity
//	  …       body
//
// The header checksum covers every header field, including the body's
// checksums and the source identity, and the body checksum covers the body,
// so together they check the whole value with a single pass over the body:
// CRC32C since version 2, hardware-accelerated and twice as fast as xxhash64
// here, which version 1 used for both the ETag and the check. A value whose
// length does not match its header (truncated or padded) fails before any
// checksum is computed. Values of versions 1 and 2 read back with an empty
// SourceIdentity.
const (
	formatV1      = 1
	formatV2      = 2
	formatV3      = 3
	headerLenV1   = 48
	headerLen     = 56 // of versions 2 and 3
	maxCTLen      = 1024
	maxIdentLen   = 1024
	maxBodyLen    = 1<<32 - 1
	flagLastMod   = 1 << 0
	offVersion    = 8
	offFlags      = 9
	offCTLen      = 10
	offBodyLen    = 12
	offLastMod    = 16
	offStoredAt   = 24
	offAccess     = 32
	offBodyHash   = 40
	offBodyCRC    = 48
	offIdentLen   = 52
	checksumStart = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func bodyCRC(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// header is a decoded value header.
type header struct {
	version   byte
	hlen      int // header length: headerLen, or headerLenV1
	flags     byte
	ctLen     int
	bodyLen   int
	lastMod   int64 // Unix seconds
	storedAt  int64 // Unix nanoseconds
	access    int64 // Unix seconds
	bodyHash  uint64
	bodyCRC   uint32 // versions 2 and 3
	idLen     int    // version 3
	headerSum uint64
}

// valueLen is the encoded length of an entry with this content type and body
// and no source identity.
func valueLen(contentType string, body []byte) int {
	return headerLen + len(contentType) + len(body)
}

// entryLen is the encoded length of e.
func entryLen(e *Entry) int {
	return headerLen + len(e.ContentType) + len(e.SourceIdentity) + len(e.Body)
}

// encodeEntry writes the value for h and e into dst, which must be exactly
// entryLen(e) long, in the current format. h.version, h.hlen, h.ctLen,
// h.idLen, h.bodyLen, h.bodyCRC and h.headerSum are filled from e; the other
// fields are the caller's.
func encodeEntry(dst []byte, h *header, e *Entry) {
	h.version, h.hlen = formatV3, headerLen
	h.bodyCRC = bodyCRC(e.Body)
	h.ctLen = len(e.ContentType)
	h.idLen = len(e.SourceIdentity)
	h.bodyLen = len(e.Body)
	copy(dst[headerLen:], e.ContentType)
	copy(dst[headerLen+h.ctLen:], e.SourceIdentity)
	copy(dst[headerLen+h.ctLen+h.idLen:], e.Body)
	putHeader(dst, h)
}

// putHeader writes h into v (an encoded value of h's version whose content
// type and source identity are already in place) and recomputes the header
// checksum.
func putHeader(v []byte, h *header) {
	v[offVersion] = h.version
	v[offFlags] = h.flags
	binary.LittleEndian.PutUint16(v[offCTLen:], uint16(h.ctLen))
	binary.LittleEndian.PutUint32(v[offBodyLen:], uint32(h.bodyLen))
	binary.LittleEndian.PutUint64(v[offLastMod:], uint64(h.lastMod))
	binary.LittleEndian.PutUint64(v[offStoredAt:], uint64(h.storedAt))
	binary.LittleEndian.PutUint64(v[offAccess:], uint64(h.access))
	binary.LittleEndian.PutUint64(v[offBodyHash:], h.bodyHash)
	if h.version >= formatV2 {
		binary.LittleEndian.PutUint32(v[offBodyCRC:], h.bodyCRC)
		binary.LittleEndian.PutUint16(v[offIdentLen:], uint16(h.idLen))
		binary.LittleEndian.PutUint16(v[offIdentLen+2:], 0)
	}
	h.headerSum = xxhash.Sum64(v[checksumStart : h.hlen+h.ctLen+h.idLen])
	binary.LittleEndian.PutUint64(v[0:], h.headerSum)
}

// parseHeader decodes and checks the header of v: version, lengths and header
// checksum. It does not hash the body; see verifyBody.
func parseHeader(v []byte) (header, bool) {
	var h header
	if len(v) < headerLenV1 {
		return h, false
	}
	switch h.version = v[offVersion]; h.version {
	case formatV2, formatV3:
		h.hlen = headerLen
	case formatV1:
		h.hlen = headerLenV1
	default:
		return h, false
	}
	h.flags = v[offFlags]
	h.ctLen = int(binary.LittleEndian.Uint16(v[offCTLen:]))
	h.bodyLen = int(binary.LittleEndian.Uint32(v[offBodyLen:]))
	if h.version == formatV3 {
		h.idLen = int(binary.LittleEndian.Uint16(v[offIdentLen:]))
	}
	if h.ctLen > maxCTLen || h.idLen > maxIdentLen || len(v) != h.hlen+h.ctLen+h.idLen+h.bodyLen {
		return h, false
	}
	h.headerSum = binary.LittleEndian.Uint64(v[0:])
	if xxhash.Sum64(v[checksumStart:h.hlen+h.ctLen+h.idLen]) != h.headerSum {
		return h, false
	}
	if h.version >= formatV2 {
		h.bodyCRC = binary.LittleEndian.Uint32(v[offBodyCRC:])
	}
	h.lastMod = int64(binary.LittleEndian.Uint64(v[offLastMod:]))
	h.storedAt = int64(binary.LittleEndian.Uint64(v[offStoredAt:]))
	h.access = int64(binary.LittleEndian.Uint64(v[offAccess:]))
	h.bodyHash = binary.LittleEndian.Uint64(v[offBodyHash:])
	return h, true
}

// decodeValue parses the header and verifies the body hash: ok means every
// byte of v is as Put wrote it.
func decodeValue(v []byte) (header, bool) {
	h, ok := parseHeader(v)
	if !ok {
		return h, false
	}
	if h.version == formatV1 {
		return h, xxhash.Sum64(body(v, &h)) == h.bodyHash
	}
	return h, bodyCRC(body(v, &h)) == h.bodyCRC
}

// body returns the body part of a value with header h, aliasing v.
func body(v []byte, h *header) []byte { return v[h.hlen+h.ctLen+h.idLen:] }

// sourceIdentity returns the source identity of a value with header h.
func sourceIdentity(v []byte, h *header) string {
	if h.idLen == 0 {
		return ""
	}
	return string(v[h.hlen+h.ctLen : h.hlen+h.ctLen+h.idLen])
}

// contentType returns the content type of a value with header h, interning
// the common ones so that a hit does not allocate for them.
func contentType(v []byte, h *header) string {
	ct := v[h.hlen : h.hlen+h.ctLen]
	switch string(ct) {
	case "":
		return ""
	case "image/jpeg":
		return "image/jpeg"
	case "image/png":
		return "image/png"
	case "image/webp":
		return "image/webp"
	case "image/gif":
		return "image/gif"
	case "image/tiff":
		return "image/tiff"
	case "image/jp2":
		return "image/jp2"
	case "application/json":
		return "application/json"
	case "application/ld+json":
		return "application/ld+json"
	}
	return string(ct)
}

// rawAccess reads the access field of a value without checking it, so that
// the index key of a corrupt value can be deleted on a best-effort basis.
func rawAccess(v []byte) (int64, bool) {
	if len(v) < headerLenV1 {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(v[offAccess:])), true
}

// ETag is the strong validator of a body as the store writes it with every
// entry (Entry.ETag): its 64-bit xxhash as 16 zero-padded lower-case hex
// digits, in quotes. The cache uses it for bodies it does not store, so a
// body has one tag wherever it comes from.
func ETag(body []byte) string { return etag(xxhash.Sum64(body)) }

// etag formats a body hash as a strong, quoted ETag: "\"0123456789abcdef\"".
func etag(sum uint64) string {
	const hexdigits = "0123456789abcdef"
	var b [18]byte
	b[0], b[17] = '"', '"'
	for i := 16; i >= 1; i-- {
		b[i] = hexdigits[sum&0xf]
		sum >>= 4
	}
	return string(b[:])
}

// toEntry builds the Entry for a verified value. Body is a private copy.
func toEntry(v []byte, h *header, dst []byte) (Entry, []byte) {
	start := len(dst)
	dst = append(dst, body(v, h)...)
	e := Entry{
		ContentType:    contentType(v, h),
		SourceIdentity: sourceIdentity(v, h),
		StoredAt:       time.Unix(0, h.storedAt).UTC(),
		ETag:           etag(h.bodyHash),
		Body:           dst[start:len(dst):len(dst)],
	}
	if h.flags&flagLastMod != 0 {
		e.LastModified = time.Unix(h.lastMod, 0).UTC()
	}
	return e, dst
}

// seconds is the access bucket of t: Unix seconds, never negative.
func seconds(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	return s
}

// appendEntryKey appends the entry key of key to dst.
func appendEntryKey(dst, key []byte) []byte {
	dst = append(dst, spaceEntry)
	return append(dst, key...)
}

// appendAccessKey appends the access-index key of key at bucket access.
func appendAccessKey(dst []byte, access int64, key []byte) []byte {
	dst = append(dst, spaceAccess)
	dst = binary.BigEndian.AppendUint64(dst, uint64(access))
	return append(dst, key...)
}

// parseAccessKey splits an access-index key into bucket and user key
// (aliasing k).
func parseAccessKey(k []byte) (access int64, key []byte, ok bool) {
	if len(k) < accessKeyLen || k[0] != spaceAccess {
		return 0, nil, false
	}
	return int64(binary.BigEndian.Uint64(k[1:accessKeyLen])), k[accessKeyLen:], true
}

// accessBound is the access-index key that sorts before every index key with
// a bucket >= access.
func accessBound(access int64) []byte {
	if access < 0 {
		access = 0
	}
	return binary.BigEndian.AppendUint64([]byte{spaceAccess}, uint64(access))
}

// prefixEnd returns the smallest key greater than every key with prefix p in
// the entry space, i.e. the exclusive upper bound of "e"+p.
func prefixEnd(p []byte) []byte {
	end := appendEntryKey(nil, p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{spaceEnd} // unreachable: end[0] is 'e'
}

// sizeValue is an index key's value: the entry's size as counted for
// MaxBytes, so that Open rebuilds the policy without reading values.
func sizeValue(size int64) []byte {
	return binary.LittleEndian.AppendUint32(make([]byte, 0, 4), uint32(min(size, 1<<32-1)))
}

// parseSizeValue reads sizeValue; false for an index key written before it.
func parseSizeValue(v []byte) (int64, bool) {
	if len(v) != 4 {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint32(v)), true
}

package cache

import "github.com/cespare/xxhash/v2"

// ETag is the one strong validator of a response body: its 64-bit xxhash as
// 16 lower-case hexadecimal digits, zero-padded, in quotes
// ("\"0123456789abcdef\""). It is the format the store writes with every
// entry (store.Entry.ETag, computed once at Put), so a body has the same tag
// whether it came from memory, disk, an uncached tier or a failed store
// write; TestETagMatchesTheStore holds the two to it.
func ETag(body []byte) string {
	const hexdigits = "0123456789abcdef"
	sum := xxhash.Sum64(body)
	var b [18]byte
	b[0], b[17] = '"', '"'
	for i := 16; i >= 1; i-- {
		b[i] = hexdigits[sum&0xf]
		sum >>= 4
	}
	return string(b[:])
}

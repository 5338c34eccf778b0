package cache

import "github.com/iiif-proxy/iiif-proxy/store"

// ETag is the one strong validator of a response body, the store's
// (store.ETag: the body's 64-bit xxhash, 16 zero-padded hex digits, in
// quotes), so a body has the same tag whether it came from memory, disk, an
// uncached tier or a failed store write; TestETagMatchesTheStore holds the
// two to it.
func ETag(body []byte) string { return store.ETag(body) }

// Package sources is where the bytes of an original come from when they are
// not in a local directory: an S3-compatible bucket (TilePath =
// "s3://bucket/prefix"), read through a bounded local source cache.
//
// An identifier maps to the key prefix + "/" + identifier exactly as it maps
// to TilePath/identifier for files, with the same refusal of anything that
// could name something outside the prefix (ValidID).
//
// The source cache keeps, per object version (its ETag), a sparse local file
// and a bitmap of the blocks (BlockSize) it holds. A read (File.ReadAt)
// fetches only the blocks it lacks, adjacent ones in one ranged GET, so a
// pyramidal TIFF or JPEG 2000 costs the header and the tiles a render
// touches; File.Whole fetches the rest, for decoders that need the whole
// file (flat JPEG, PNG, WebP, the automatic-pyramid builder). Concurrent
// readers of the same block wait for one fetch. Blocks count against
// Config.MaxBytes; least recently used objects go first, and nothing is
// written below the free-space minimum (reads then go to the store
// uncached).
//
// Freshness: Stat asks the store conditionally (If-None-Match with the
// cached ETag), so an unchanged object costs a 304; an overwritten one gets
// a new ETag, a new cache entry and a new Identity, which every cache above
// compares. Ranged GETs carry If-Match, so bytes of two versions are never
// mixed.
//
// Faults: every request has an idle timeout (Config.Timeout); failures of
// the store (no answer, 5xx, 403, a missing bucket) open a circuit breaker
// (internal/breaker) that fails requests at once instead of waiting, while objects
// already cached locally keep being served.
package sources

import (
	"strings"
	"time"
)

// ValidID reports whether id can name something inside the root (a
// directory or a key prefix): not empty, not absolute, no NUL, and no empty,
// "." or ".." segment. It is checked before anything is asked.
func ValidID(id string) bool {
	if id == "" || strings.HasPrefix(id, "/") || strings.IndexByte(id, 0) >= 0 {
		return false
	}
	for part := range strings.SplitSeq(id, "/") {
		if part == ".." || part == "." || part == "" {
			return false
		}
	}
	return true
}

// Object is one version of an original in the store.
type Object struct {
	ID      string // the identifier
	Key     string // the object's key in the bucket
	ETag    string // as the store sent it, without quotes
	Size    int64
	ModTime time.Time // Last-Modified
}

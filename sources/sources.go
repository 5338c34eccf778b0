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
// (breaker.go) that fails requests at once instead of waiting, while objects
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

// Stats are the source cache's and the store's counters since start.
type Stats struct {
	Bucket, Prefix string
	Dir            string // the source cache directory
	MaxBytes       int64
	Bytes          int64 // cached now (blocks held)
	Objects        int   // objects with at least one block cached
	Whole          int   // of which complete
	Evicted        uint64
	// Requests to the store, by kind.
	Stats, Gets uint64
	NotModified uint64 // conditional Stats answered 304
	NotFound    uint64
	Errors      uint64 // failures of the store: no answer, 5xx, 403, no bucket
	Timeouts    uint64 // of which idle timeouts
	Refused     uint64 // requests not sent because the breaker was open
	Stale       uint64 // Stats answered from the cache because the store failed
	Uncached    uint64 // reads sent to the store uncached: no room on disk
	// FetchedBytes are the bytes of object data received from the store.
	FetchedBytes uint64
	// Breaker is "closed" (requests go through), "open" (failing at once)
	// or "half-open" (one probe in flight).
	Breaker        string
	BreakerOpens   uint64 // times it opened
	FailuresInARow int
}

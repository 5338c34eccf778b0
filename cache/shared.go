package cache

import (
	"context"
	"time"

	"github.com/iiif-proxy/iiif-proxy/store"
)

// Shared is an object-store layer behind every node's local tiers (package
// cache/shared keeps it on S3): a local miss looks there before rendering,
// a render is written there too, and a stampede across nodes renders once
// because the nodes that lose a key's lease wait for the winner's object.
// Config.Shared nil means there is none.
type Shared interface {
	// Claim looks key of tier up in the shared layer. Found, it returns a
	// verified entry not purged since it was written. Otherwise it returns
	// a Claim the caller renders under and must Finish: this node took the
	// key's lease, or the layer cannot be used now (down, breaker open), or
	// another node's render did not appear within wait. The Claim is
	// never nil; when the entry is found, a caller that renders after all
	// (the entry is of a source version it knows is gone) finishes it to
	// write over the entry. Claim never fails: the layer's faults turn
	// into misses.
	Claim(ctx context.Context, tier string, key []byte, wait time.Duration) (store.Entry, bool, Claim)
	// PurgeID removes every shared entry of id and records the purge (the
	// identifier's generation) for the other nodes.
	PurgeID(id string)
	// PurgedAt is when id was last purged by any node, as known within
	// maxAge; zero when never, or unknown (the store unreachable).
	PurgedAt(id string, maxAge time.Duration) time.Time
	// Stats are the layer's counters.
	Stats() SharedStats
}

// Claim is a render the shared layer waits for.
type Claim interface {
	// Finish hands over the rendered entry (its StoredAt and ETag set), to
	// be written to the shared layer in the background, or nil when the
	// render failed or is not to be stored; either way the key's lease is
	// released.
	Finish(e *store.Entry)
}

// SharedStats are the shared layer's counters since start, and its state.
type SharedStats struct {
	Hits     uint64 `json:"hits"`    // entries found and served
	Misses   uint64 `json:"misses"`  // looks that found nothing usable
	Corrupt  uint64 `json:"corrupt"` // objects that failed verification: deleted, never served
	Purged   uint64 `json:"purged"`  // objects older than their identifier's last purge: deleted, never served
	Writes   uint64 `json:"writes"`  // entries written
	Bytes    uint64 `json:"bytesWritten"`
	Drops    uint64 `json:"drops"`    // writes dropped: the queue was full, or the store failed
	Errors   uint64 `json:"errors"`   // store operations that failed (timeouts, 5xx, 403, refused)
	Rejected uint64 `json:"rejected"` // operations not tried: the breaker was open
	// Refreshes are entries whose age was reset on a read past
	// RefreshAfter of the retention (the sliding lifetime).
	Refreshes uint64 `json:"refreshes"`
	// Leases: won (this node rendered), waited (another node held it),
	// taken over (expired), and waits that ended with the winner's object
	// or timed out (this node rendered after all).
	LeasesWon    uint64 `json:"leasesWon"`
	LeaseWaits   uint64 `json:"leaseWaits"`
	Takeovers    uint64 `json:"leaseTakeovers"`
	WaitHits     uint64 `json:"waitHits"`
	WaitTimeouts uint64 `json:"waitTimeouts"`
	Purges       uint64 `json:"purges"` // identifiers purged from this node
	// Breaker is "closed" (in use), "open" (failing fast) or "half-open"
	// (one probe allowed); BreakerOpens counts its openings.
	Breaker      string `json:"breaker"`
	BreakerOpens uint64 `json:"breakerOpens"`
	// QueueLen and QueueBytes are the writes waiting now.
	QueueLen   int   `json:"queueLen"`
	QueueBytes int64 `json:"queueBytes"`
	// Lifecycle says the bucket's expiry rule for this layer is in place
	// (set at start, or found there).
	Lifecycle bool `json:"lifecycle"`
}

// SharedStats returns the shared layer's counters; ok is false without one.
func (c *Cache) SharedStats() (s SharedStats, ok bool) {
	if c.cfg.Shared == nil {
		return s, false
	}
	return c.cfg.Shared.Stats(), true
}

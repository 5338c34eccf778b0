// Package cachesim replays a request trace through cache eviction policies
// offline, with a byte budget and variable object sizes, and counts hits:
// what a cache of that size would have served had it followed each policy.
//
// A trace is a sequence of accesses to objects (an index into a table of
// sizes). Every policy starts empty, admits every object that fits the
// budget on a miss (objects larger than the budget are never cached) and
// evicts until the bytes it holds are within the budget:
//
//   - FIFO evicts in insertion order; a hit changes nothing.
//   - LRU evicts the least recently used.
//   - SIEVE (Zhang et al., NSDI 2024) is FIFO with a visited bit and a hand
//     that sweeps from the oldest entry, clearing bits and evicting the
//     first unvisited entry; hits only set the bit, so they move nothing.
//   - S3-FIFO (Yang et al., SOSP 2023): a small FIFO of 10 % of the budget
//     that new objects enter, a main FIFO of 90 % with reinsertion on a
//     two-bit counter, and a ghost FIFO of keys recently evicted from the
//     small queue. An object read again while in the small queue moves to
//     the main one; one seen once is evicted early, so a scan passes
//     through the small queue without flushing the main one.
//   - OPT is Belady's rule with variable sizes: evict the entry whose next
//     use is furthest in the future, where the incoming object competes too
//     (an object never used again, or used later than everything cached, is
//     not admitted). For equal sizes this is optimal; for variable sizes the
//     optimum is NP-hard and this is the standard heuristic, not a bound:
//     a cleverer policy could beat it, though rarely by much.
//   - The compulsory-miss bound: every object misses once, on its first
//     request; no policy of any budget does better.
//
// Byte hit ratios are counted beside hit ratios: the bytes of the requests
// that hit over the bytes of all requests.
package cachesim

import (
	"errors"
	"fmt"
)

// Trace is what the simulator needs of a request trace.
type Trace struct {
	// Keys holds each request's object, an index into Sizes.
	Keys []int32
	// Sizes holds each object's size in bytes; every one must be ≥ 0.
	Sizes []int64
}

// Validate checks that every key names a sized object.
func (t Trace) Validate() error {
	for i, k := range t.Keys {
		if k < 0 || int(k) >= len(t.Sizes) {
			return fmt.Errorf("request %d: object %d has no size (%d objects)", i, k, len(t.Sizes))
		}
	}
	for k, s := range t.Sizes {
		if s < 0 {
			return fmt.Errorf("object %d: size %d", k, s)
		}
	}
	return nil
}

// Distinct returns the number of objects the trace asks for and the sum of
// their sizes: the payload a cache would need to hold them all.
func (t Trace) Distinct() (objects int, bytes int64) {
	seen := make([]bool, len(t.Sizes))
	for _, k := range t.Keys {
		if !seen[k] {
			seen[k] = true
			objects++
			bytes += t.Sizes[k]
		}
	}
	return objects, bytes
}

// Result is one policy's outcome on a trace.
type Result struct {
	Policy    string
	Requests  int64
	Hits      int64
	Bytes     int64 // bytes of all requests
	HitBytes  int64 // bytes of the requests that hit
	Evictions int64 // entries evicted (0 for the bound)
}

// HitRatio is Hits / Requests, 0 for an empty trace.
func (r Result) HitRatio() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Hits) / float64(r.Requests)
}

// ByteHitRatio is HitBytes / Bytes, 0 when there are no bytes.
func (r Result) ByteHitRatio() float64 {
	if r.Bytes == 0 {
		return 0
	}
	return float64(r.HitBytes) / float64(r.Bytes)
}

// Policy names, in the order Policies lists them.
const (
	FIFO   = "FIFO"
	LRU    = "LRU"
	SIEVE  = "SIEVE"
	S3FIFO = "S3-FIFO"
	OPT    = "OPT"
	Bound  = "compulsory"
)

// Policies lists the policies Simulate knows, the bound last.
var Policies = []string{FIFO, LRU, SIEVE, S3FIFO, OPT, Bound}

// cache is one eviction policy with a byte budget. access reports whether
// request i, for object k of size size, hits; on a miss it admits the
// object if the policy wants it and evicts to stay within the budget.
type cache interface {
	access(i int, k int32, size int64) bool
	evictions() int64
}

// Simulate runs policy over t with budget bytes.
func Simulate(t Trace, policy string, budget int64) (Result, error) {
	if err := t.Validate(); err != nil {
		return Result{}, err
	}
	if budget < 0 {
		return Result{}, fmt.Errorf("budget %d: must be ≥ 0", budget)
	}
	res := Result{Policy: policy, Requests: int64(len(t.Keys))}
	for _, k := range t.Keys {
		res.Bytes += t.Sizes[k]
	}
	if policy == Bound {
		seen := make([]bool, len(t.Sizes))
		for _, k := range t.Keys {
			if seen[k] {
				res.Hits++
				res.HitBytes += t.Sizes[k]
			}
			seen[k] = true
		}
		return res, nil
	}
	var c cache
	switch policy {
	case FIFO:
		c = newQueueCache(budget, len(t.Sizes), false)
	case LRU:
		c = newQueueCache(budget, len(t.Sizes), true)
	case SIEVE:
		c = newSieve(budget, len(t.Sizes))
	case S3FIFO:
		c = newS3FIFO(budget, len(t.Sizes))
	case OPT:
		c = newOPT(budget, len(t.Sizes), NextUses(t.Keys, len(t.Sizes)))
	default:
		return Result{}, fmt.Errorf("%w %q: want one of %v", ErrPolicy, policy, Policies)
	}
	for i, k := range t.Keys {
		if c.access(i, k, t.Sizes[k]) {
			res.Hits++
			res.HitBytes += t.Sizes[k]
		}
	}
	res.Evictions = c.evictions()
	return res, nil
}

// ErrPolicy says a policy name is unknown.
var ErrPolicy = errors.New("cachesim: unknown policy")

// Never is the next use of a request whose object is not asked for again.
const Never = int(^uint(0) >> 1)

// NextUses returns, for each request, the index of the next request for
// the same object, or Never.
func NextUses(keys []int32, objects int) []int {
	next := make([]int, len(keys))
	last := make([]int, objects)
	for k := range last {
		last[k] = Never
	}
	for i := len(keys) - 1; i >= 0; i-- {
		next[i] = last[keys[i]]
		last[keys[i]] = i
	}
	return next
}

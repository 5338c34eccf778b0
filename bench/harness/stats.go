package harness

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histograms record nanoseconds from 1 µs to an hour with three significant
// digits: a percentile is within 0.1% of the true value.
const (
	histMin    = int64(time.Microsecond)
	histMax    = int64(time.Hour)
	histDigits = 3
)

// NewHistogram returns an empty latency histogram in nanoseconds.
func NewHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

func record(h *hdrhistogram.Histogram, d time.Duration) {
	_ = h.RecordValue(min(max(int64(d), histMin), histMax)) // in range: cannot fail
}

// Stats are the measurements of one target, workload and tier.
type Stats struct {
	// Requests counts responses received, whatever their status.
	Requests int64
	// Errors counts requests that got no response: refused, reset, timed out.
	Errors int64
	// ErrorKinds counts Errors by kind ("timeout", "connection closed", …).
	ErrorKinds map[string]int64
	// Bytes is the sum of response body lengths.
	Bytes int64
	// Status counts responses by status code.
	Status map[int]int64
	// Cache counts responses by the first word of X-Cache, upper case
	// (HIT, MISS, COLLAPSED, …); responses without one are not counted.
	Cache map[string]int64
	// Latency holds each response's latency in nanoseconds: in open loop
	// from the time the schedule meant to send the request, so time spent
	// waiting for a connection counts; in closed loop from the actual send.
	Latency *hdrhistogram.Histogram
	// Service is the latency from the actual send (open loop only, else
	// nil): the difference from Latency is queueing in the harness.
	Service *hdrhistogram.Histogram
}

func newStats(open bool) *Stats {
	s := &Stats{ErrorKinds: map[string]int64{}, Status: map[int]int64{}, Cache: map[string]int64{}, Latency: NewHistogram()}
	if open {
		s.Service = NewHistogram()
	}
	return s
}

// HitRatio is the share of responses with an X-Cache header that say the
// response came from a cache (HIT, REVALIDATED, STALE, UPDATING); ok is false
// when no response carried X-Cache.
func (s *Stats) HitRatio() (ratio float64, ok bool) {
	var hits, all int64
	for w, n := range s.Cache {
		all += n
		if hitWords[w] {
			hits += n
		}
	}
	if all == 0 {
		return 0, false
	}
	return float64(hits) / float64(all), true
}

// Renders counts responses whose X-Cache says the origin made them for
// this request (MISS, EXPIRED, BYPASS).
func (s *Stats) Renders() int64 {
	var n int64
	for w, c := range s.Cache {
		if renderWords[w] {
			n += c
		}
	}
	return n
}

func (s *Stats) add(o *Stats) {
	s.Requests += o.Requests
	s.Errors += o.Errors
	s.Bytes += o.Bytes
	for k, v := range o.ErrorKinds {
		s.ErrorKinds[k] += v
	}
	for k, v := range o.Status {
		s.Status[k] += v
	}
	for k, v := range o.Cache {
		s.Cache[k] += v
	}
	s.Latency.Merge(o.Latency)
	if o.Service != nil {
		if s.Service == nil {
			s.Service = NewHistogram()
		}
		s.Service.Merge(o.Service)
	}
}

func (s *Stats) observe(res response, err error, latency, service time.Duration) {
	if err != nil {
		s.Errors++
		s.ErrorKinds[errKind(err)]++
		return
	}
	s.Requests++
	s.Bytes += int64(res.bytes)
	s.Status[res.status]++
	if res.cache != "" {
		s.Cache[res.cache]++
	}
	record(s.Latency, latency)
	if s.Service != nil {
		record(s.Service, service)
	}
}

// recorder collects Stats by tier for some workers. Workers share a few
// recorders (histograms are large), each behind its mutex.
type recorder struct {
	mu    sync.Mutex // protects tiers and stats
	open  bool
	tiers []string
	stats []*Stats
}

// observe files one outcome under the tier the server named, else the
// request's shape tier. A request without a response is filed by shape.
func (r *recorder) observe(shape string, res response, err error, latency, service time.Duration) {
	tier := res.tier
	if tier == "" {
		tier = shape
	}
	r.mu.Lock()
	r.get(tier).observe(res, err, latency, service)
	r.mu.Unlock()
}

func (r *recorder) get(tier string) *Stats {
	for i, t := range r.tiers {
		if t == tier {
			return r.stats[i]
		}
	}
	s := newStats(r.open)
	r.tiers = append(r.tiers, tier)
	r.stats = append(r.stats, s)
	return s
}

// TierStats are the Stats of one tier.
type TierStats struct {
	Tier  string
	Stats *Stats
}

// merge sums recorders by tier, tiers in the order tile, thumbnail, info,
// other, then any others by name.
func merge(recs []*recorder, open bool) (byTier []TierStats, all *Stats) {
	m := map[string]*Stats{}
	all = newStats(open)
	for _, r := range recs {
		r.mu.Lock()
		for i, t := range r.tiers {
			if m[t] == nil {
				m[t] = newStats(open)
			}
			m[t].add(r.stats[i])
			all.add(r.stats[i])
		}
		r.mu.Unlock()
	}
	for t, s := range m {
		byTier = append(byTier, TierStats{t, s})
	}
	rank := func(t string) int {
		if i := slices.Index(tiers, t); i >= 0 {
			return i
		}
		return len(tiers)
	}
	slices.SortFunc(byTier, func(a, b TierStats) int {
		return cmp.Or(cmp.Compare(rank(a.Tier), rank(b.Tier)), cmp.Compare(a.Tier, b.Tier))
	})
	return byTier, all
}

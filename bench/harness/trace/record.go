package trace

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
)

// Record is what a server answered to one replayed request.
type Record struct {
	Path    string
	Session string
	// Status is the HTTP status, 0 when there was no response (Err says why).
	Status int
	// Cache is X-Cache's first word, upper case ("HIT", "MISS", …); Tier is
	// X-Cache-Tier. Both empty when the server does not send them.
	Cache, Tier string
	// Bytes is the body's length.
	Bytes int64
	// Latency is from the request's scheduled time to its response.
	Latency time.Duration
	Err     string
}

var recordHeader = []string{"path", "session", "status", "x_cache", "tier", "bytes", "latency_us", "error"}

// WriteRecords writes records as CSV with a header line, in trace order.
func WriteRecords(w io.Writer, recs []Record) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(recordHeader); err != nil {
		return err
	}
	for _, r := range recs {
		if err := cw.Write([]string{r.Path, r.Session, strconv.Itoa(r.Status), r.Cache, r.Tier,
			strconv.FormatInt(r.Bytes, 10), strconv.FormatInt(r.Latency.Microseconds(), 10), r.Err}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ReadRecords reads what WriteRecords wrote.
func ReadRecords(r io.Reader) ([]Record, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(recordHeader)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	if !slices.Equal(head, recordHeader) {
		return nil, fmt.Errorf("records: header %v, want %v", head, recordHeader)
	}
	var out []Record
	for n := 2; ; n++ {
		f, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("records: %w", err)
		}
		status, err1 := strconv.Atoi(f[2])
		size, err2 := strconv.ParseInt(f[5], 10, 64)
		us, err3 := strconv.ParseInt(f[6], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("records line %d: bad number in %q", n, f)
		}
		out = append(out, Record{Path: f[0], Session: f[1], Status: status, Cache: f[3], Tier: f[4], Bytes: size,
			Latency: time.Duration(us) * time.Microsecond, Err: f[7]})
	}
}

// HitWords are the X-Cache words counted as hits in a replay: the
// response came from the cache (HIT; REVALIDATED, after checking the
// source; STALE and UPDATING, nginx's stale answers; SHARED, iiif-proxy's
// shared render tier: rendered by another node), or was answered with
// the render of a concurrent request for the same key (COLLAPSED). The
// last is a choice: the simulator admits an object the moment it misses,
// so a request that follows a miss is a hit there whatever the render
// time; counting COLLAPSED as a miss would charge the server for a race the
// simulation cannot have. Summary counts COLLAPSED apart, to undo it.
var HitWords = map[string]bool{"HIT": true, "REVALIDATED": true, "REVALIDATE": true, "STALE": true,
	"UPDATING": true, "COLLAPSED": true, "SHARED": true}

// TierSummary is a replay's outcome for one tier (or all, Tier "all").
type TierSummary struct {
	Tier      string
	Requests  int64 // responses with an X-Cache word
	Hits      int64 // of those, HitWords
	Collapsed int64 // of the hits, COLLAPSED
	Bytes     int64 // body bytes of the responses with an X-Cache word
	HitBytes  int64
	Errors    int64 // no response
	Non2xx    int64
	NoCache   int64 // responses without X-Cache
}

// HitRatio is Hits / Requests.
func (s TierSummary) HitRatio() float64 { return ratio(s.Hits, s.Requests) }

// ByteHitRatio is HitBytes / Bytes.
func (s TierSummary) ByteHitRatio() float64 { return ratio(s.HitBytes, s.Bytes) }

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Summarize counts records by tier: X-Cache-Tier, else ShapeTier. The
// first entry is every tier together, then the tiers in the order tile,
// thumbnail, info, others by name.
func Summarize(recs []Record) []TierSummary {
	by := map[string]*TierSummary{}
	all := &TierSummary{Tier: "all"}
	for _, r := range recs {
		tier := r.Tier
		if tier == "" {
			tier = ShapeTier(r.Path)
		}
		s := by[tier]
		if s == nil {
			s = &TierSummary{Tier: tier}
			by[tier] = s
		}
		for _, s := range []*TierSummary{all, s} {
			switch {
			case r.Status == 0:
				s.Errors++
				continue
			case r.Status < 200 || r.Status > 299:
				s.Non2xx++
			}
			if r.Cache == "" {
				s.NoCache++
				continue
			}
			s.Requests++
			s.Bytes += r.Bytes
			if HitWords[r.Cache] {
				s.Hits++
				s.HitBytes += r.Bytes
				if r.Cache == "COLLAPSED" {
					s.Collapsed++
				}
			}
		}
	}
	out := []TierSummary{*all}
	for _, t := range []string{TierTile, TierThumbnail, TierInfo} {
		if s := by[t]; s != nil {
			out = append(out, *s)
			delete(by, t)
		}
	}
	rest := slices.Sorted(func(yield func(string) bool) {
		for t := range by {
			if !yield(t) {
				return
			}
		}
	})
	for _, t := range rest {
		out = append(out, *by[t])
	}
	return out
}

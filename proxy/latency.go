package proxy

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// RenderLatency is one tier's render-time histogram (iiif_render_seconds)
// as /stats serves it: the cumulative bucket counts, so that a client can
// take the difference of two snapshots and get the percentiles of just
// that interval (the dashboard does), and the percentiles since start.
type RenderLatency struct {
	Count   uint64   `json:"count"`   // renders timed
	Seconds float64  `json:"seconds"` // their total time
	Buckets []Bucket `json:"buckets"` // cumulative, by upper bound; the last bound is +Inf, given as its count in Count
	P50     float64  `json:"p50"`     // seconds, estimated as Prometheus' histogram_quantile does; 0 before any render
	P90     float64  `json:"p90"`
	P99     float64  `json:"p99"`
}

// Bucket is one histogram bucket: Count observations took at most LE seconds.
type Bucket struct {
	LE    float64 `json:"le"`
	Count uint64  `json:"count"`
}

// renderLatency reads tier's series of the render histogram.
func (m *metrics) renderLatency(tier string) RenderLatency {
	var pb dto.Metric
	if err := m.render.WithLabelValues(tier).(prometheus.Metric).Write(&pb); err != nil || pb.Histogram == nil {
		return RenderLatency{}
	}
	h := pb.Histogram
	l := RenderLatency{Count: h.GetSampleCount(), Seconds: h.GetSampleSum()}
	for _, b := range h.Bucket {
		if !math.IsInf(b.GetUpperBound(), +1) {
			l.Buckets = append(l.Buckets, Bucket{LE: b.GetUpperBound(), Count: b.GetCumulativeCount()})
		}
	}
	l.P50, l.P90, l.P99 = quantile(0.5, l.Buckets, l.Count), quantile(0.9, l.Buckets, l.Count), quantile(0.99, l.Buckets, l.Count)
	return l
}

// quantile estimates the q-quantile of count observations in cumulative
// buckets by linear interpolation within the bucket it falls in, as
// Prometheus' histogram_quantile does (the first bucket starts at 0); a
// quantile beyond the last finite bound is that bound. 0 when count is 0.
// web/static/dashboard/dashboard.js has the same function for intervals.
func quantile(q float64, buckets []Bucket, count uint64) float64 {
	if count == 0 || len(buckets) == 0 {
		return 0
	}
	rank := q * float64(count)
	lower, below := 0.0, uint64(0)
	for _, b := range buckets {
		if float64(b.Count) >= rank {
			in := b.Count - below
			if in == 0 {
				return b.LE
			}
			return lower + (b.LE-lower)*(rank-float64(below))/float64(in)
		}
		lower, below = b.LE, b.Count
	}
	return buckets[len(buckets)-1].LE
}

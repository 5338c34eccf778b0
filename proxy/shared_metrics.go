package proxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iiif-proxy/iiif-proxy/cache"
)

// sharedDescs are the shared render tier's metrics (cache.SharedStats).
var sharedDescs = map[string]*prometheus.Desc{
	"ops": prometheus.NewDesc("iiif_shared_total",
		"Shared render tier events: hit, miss, corrupt (deleted, not served), purged (older than the identifier's purge), write, drop (queue full or store failed), error (store failed), rejected (breaker open), refresh (sliding lifetime), lease_won, lease_wait, lease_takeover, wait_hit, wait_timeout, purge.",
		[]string{"event"}, nil),
	"bytes":     prometheus.NewDesc("iiif_shared_written_bytes_total", "Bytes written to the shared render tier.", nil, nil),
	"breaker":   prometheus.NewDesc("iiif_shared_breaker_state", "Shared tier circuit breaker: 0 closed, 1 open, 2 half-open.", nil, nil),
	"opens":     prometheus.NewDesc("iiif_shared_breaker_opens_total", "Times the shared tier's breaker opened.", nil, nil),
	"queue":     prometheus.NewDesc("iiif_shared_queue_writes", "Writes waiting for the shared tier now.", nil, nil),
	"queueB":    prometheus.NewDesc("iiif_shared_queue_bytes", "Bytes waiting to be written to the shared tier now.", nil, nil),
	"lifecycle": prometheus.NewDesc("iiif_shared_lifecycle", "1 when the bucket's lifecycle rule for the shared tier is in place.", nil, nil),
}

// sharedCollector reads the shared tier's counters at scrape time; it
// reports nothing when there is no shared tier.
type sharedCollector struct{ c *cache.Cache }

func (c sharedCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range sharedDescs {
		ch <- d
	}
}

var breakerStates = map[string]float64{"closed": 0, "open": 1, "half-open": 2}

func (c sharedCollector) Collect(ch chan<- prometheus.Metric) {
	s, ok := c.c.SharedStats()
	if !ok {
		return
	}
	for _, e := range []struct {
		event string
		v     uint64
	}{{"hit", s.Hits}, {"miss", s.Misses}, {"corrupt", s.Corrupt}, {"purged", s.Purged}, {"write", s.Writes},
		{"drop", s.Drops}, {"error", s.Errors}, {"rejected", s.Rejected}, {"refresh", s.Refreshes},
		{"lease_won", s.LeasesWon}, {"lease_wait", s.LeaseWaits}, {"lease_takeover", s.Takeovers},
		{"wait_hit", s.WaitHits}, {"wait_timeout", s.WaitTimeouts}, {"purge", s.Purges}} {
		ch <- prometheus.MustNewConstMetric(sharedDescs["ops"], prometheus.CounterValue, float64(e.v), e.event)
	}
	lc := 0.0
	if s.Lifecycle {
		lc = 1
	}
	ch <- prometheus.MustNewConstMetric(sharedDescs["bytes"], prometheus.CounterValue, float64(s.Bytes))
	ch <- prometheus.MustNewConstMetric(sharedDescs["breaker"], prometheus.GaugeValue, breakerStates[s.Breaker])
	ch <- prometheus.MustNewConstMetric(sharedDescs["opens"], prometheus.CounterValue, float64(s.BreakerOpens))
	ch <- prometheus.MustNewConstMetric(sharedDescs["queue"], prometheus.GaugeValue, float64(s.QueueLen))
	ch <- prometheus.MustNewConstMetric(sharedDescs["queueB"], prometheus.GaugeValue, float64(s.QueueBytes))
	ch <- prometheus.MustNewConstMetric(sharedDescs["lifecycle"], prometheus.GaugeValue, lc)
}

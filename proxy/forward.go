package proxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iiif-proxy/iiif-proxy/purge"
)

// Metrics of purge forwarding (Config.Forward), per target ("ban
// http://127.0.0.1:6081"), read from the forwarder's counters at scrape time.
var (
	forwardTotal = prometheus.NewDesc("iiif_purge_forward_total",
		"Requests forwarding purges to a cache in front, by target and result: sent (accepted), "+
			"failed (an attempt failed), retried (an attempt after a failure), dropped (given up: queue full, out of attempts).",
		[]string{"target", "result"}, nil)
	forwardQueued = prometheus.NewDesc("iiif_purge_forward_queued",
		"Requests waiting to be forwarded to a cache in front, by target.", []string{"target"}, nil)
)

// forwardCollector reads the purge forwarder's counters at scrape time.
type forwardCollector struct{ f *purge.Forwarder }

func (c forwardCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- forwardTotal
	ch <- forwardQueued
}

func (c forwardCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.f.Stats() {
		for _, r := range []struct {
			result string
			n      uint64
		}{{"sent", s.Sent}, {"failed", s.Failed}, {"retried", s.Retried}, {"dropped", s.Dropped}} {
			ch <- prometheus.MustNewConstMetric(forwardTotal, prometheus.CounterValue, float64(r.n), s.Target, r.result)
		}
		ch <- prometheus.MustNewConstMetric(forwardQueued, prometheus.GaugeValue, float64(s.Queued), s.Target)
	}
}

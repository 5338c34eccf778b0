package proxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iiif-proxy/iiif-proxy/renderer"
)

// The Fallbacks setting's counters (renderer/fallback), exported only when
// fallbacks are configured.
var (
	fallbackDescribed = prometheus.NewDesc("iiif_fallback_descriptions_total",
		"Undecodable sources described (and then rendered) from a sibling with a Fallbacks extension.", nil, nil)
	fallbackFailed = prometheus.NewDesc("iiif_fallback_failures_total",
		"Undecodable sources that no Fallbacks sibling could stand in for.", nil, nil)
)

func describeFallbacks(ch chan<- *prometheus.Desc) {
	ch <- fallbackDescribed
	ch <- fallbackFailed
}

func collectFallbacks(ch chan<- prometheus.Metric, f *renderer.FallbackStats) {
	if f == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(fallbackDescribed, prometheus.CounterValue, float64(f.Described))
	ch <- prometheus.MustNewConstMetric(fallbackFailed, prometheus.CounterValue, float64(f.Failed))
}

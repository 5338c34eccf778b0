package proxy

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/store"
)

// metrics are the proxy's Prometheus metrics, in a registry of its own so
// that two proxies can live in one process (tests do). Counters used on every
// request are resolved to their label values once, here.
type metrics struct {
	reg           *prometheus.Registry
	hits          map[string]struct{ mem, disk prometheus.Counter }
	misses        map[string]prometheus.Counter
	collapsed     map[string]prometheus.Counter
	tooLarge      map[string]prometheus.Counter
	revalidations map[string]struct{ unchanged, changed prometheus.Counter }
	faults        *prometheus.CounterVec
	responses     *prometheus.CounterVec
	byCode        map[int]prometheus.Counter // responses resolved for common codes; read-only
	render        *prometheus.HistogramVec
}

// response counts one response by status code.
func (m *metrics) response(code int) {
	if c, ok := m.byCode[code]; ok {
		c.Inc()
		return
	}
	m.responses.WithLabelValues(strconv.Itoa(code)).Inc()
}

// StatsSource is what metrics read from the renderer.
type StatsSource interface{ Stats() renderer.Stats }

func newMetrics(tiers []*tier, r Renderer, b *budget) *metrics {
	m := &metrics{
		reg:           prometheus.NewRegistry(),
		hits:          map[string]struct{ mem, disk prometheus.Counter }{},
		misses:        map[string]prometheus.Counter{},
		collapsed:     map[string]prometheus.Counter{},
		tooLarge:      map[string]prometheus.Counter{},
		revalidations: map[string]struct{ unchanged, changed prometheus.Counter }{},
	}
	hits := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iiif_cache_hits_total",
		Help: "Requests answered from the cache, by tier and layer (mem, disk)."}, []string{"tier", "layer"})
	misses := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iiif_cache_misses_total",
		Help: "Renders started because the cache did not have the response, by tier."}, []string{"tier"})
	collapsed := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iiif_cache_collapsed_total",
		Help: "Requests that waited for a concurrent request's render instead of rendering, by tier."}, []string{"tier"})
	reval := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iiif_cache_revalidations_total",
		Help: "Stale entries checked against their source, by tier and result (unchanged, changed)."}, []string{"tier", "result"})
	m.faults = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iiif_cache_faults_total",
		Help: "Cache store failures that made a request go uncached, by tier and operation."}, []string{"tier", "op"})
	m.responses = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iiif_responses_total",
		Help: "Responses by HTTP status code."}, []string{"code"})
	m.render = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "iiif_render_seconds",
		Help:    "Time to render a response that was not cached, by tier.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30}}, []string{"tier"})
	tooLarge := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iiif_cache_too_large_total",
		Help: "Responses served but not stored because they exceeded the tier's MaxEntryBytes, by tier."}, []string{"tier"})
	m.reg.MustRegister(hits, misses, collapsed, reval, tooLarge, m.faults, m.responses, m.render)
	// The runtime and the process (goroutines, heap, RSS, open files), in
	// this registry rather than the global one: two proxies, two registries.
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "iiif_inflight_response_bytes",
			Help: "Bytes of response bodies being written to clients now."},
			func() float64 { return float64(b.used.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "iiif_inflight_response_bytes_limit",
			Help: "MaxInFlightBytes; 0 means no limit."},
			func() float64 { return float64(b.limit.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "iiif_inflight_refused_total",
			Help: "Responses refused with 503 because they would exceed MaxInFlightBytes."},
			func() float64 { return float64(b.refused.Load()) }),
	)
	m.byCode = map[int]prometheus.Counter{}
	for _, code := range []int{200, 204, 303, 304, 400, 404, 405, 422, 500, 503} {
		m.byCode[code] = m.responses.WithLabelValues(strconv.Itoa(code))
	}
	for _, t := range tiers {
		n := t.name
		m.hits[n] = struct{ mem, disk prometheus.Counter }{hits.WithLabelValues(n, "mem"), hits.WithLabelValues(n, "disk")}
		m.misses[n] = misses.WithLabelValues(n)
		m.collapsed[n] = collapsed.WithLabelValues(n)
		m.tooLarge[n] = tooLarge.WithLabelValues(n)
		m.revalidations[n] = struct{ unchanged, changed prometheus.Counter }{reval.WithLabelValues(n, "unchanged"), reval.WithLabelValues(n, "changed")}
		m.render.WithLabelValues(n)
	}
	m.reg.MustRegister(storeCollector{tiers})
	if s, ok := r.(StatsSource); ok {
		m.reg.MustRegister(rendererCollector{s})
	}
	return m
}

var (
	storeDescs = map[string]*prometheus.Desc{
		"bytes":   prometheus.NewDesc("iiif_cache_bytes", "Bytes of live entries in the tier's disk cache.", []string{"tier"}, nil),
		"entries": prometheus.NewDesc("iiif_cache_entries", "Entries in the tier's disk cache.", []string{"tier"}, nil),
		"evicted": prometheus.NewDesc("iiif_cache_evictions_total", "Entries evicted to keep the tier under its byte budget.", []string{"tier"}, nil),
		"expired": prometheus.NewDesc("iiif_cache_expired_total", "Entries dropped for not being read within the retention.", []string{"tier"}, nil),
		"corrupt": prometheus.NewDesc("iiif_cache_corrupt_total", "Entries whose checksum failed; dropped, never served.", []string{"tier"}, nil),
		"errors":  prometheus.NewDesc("iiif_cache_store_errors_total", "Errors from the tier's store.", []string{"tier"}, nil),
		"touches": prometheus.NewDesc("iiif_cache_touches_total", "Access-index keys checkpointed for entries read since (hits themselves write nothing).", []string{"tier"}, nil),
		"disk":    prometheus.NewDesc("iiif_cache_disk_bytes", "Bytes the tier's database holds on disk: entries, bookkeeping, deleted data awaiting compaction, MANIFEST and OPTIONS.", []string{"tier"}, nil),
		"fixed":   prometheus.NewDesc("iiif_cache_fixed_overhead_bytes", "Upper bound of the tier's fixed on-disk overhead (MANIFEST and OPTIONS files).", []string{"tier"}, nil),
		"ratio":   prometheus.NewDesc("iiif_cache_store_hit_ratio", "Hits / lookups of the tier's disk store since start.", []string{"tier"}, nil),
		"removed": prometheus.NewDesc("iiif_cache_removed_total", "Entries removed from the tier's disk store, by cause (budget, retention, purge, corrupt).", []string{"tier", "cause"}, nil),
		"state": prometheus.NewDesc("iiif_cache_state",
			"The tier's disk cache: 0 ok, 1 full (below CacheMinFree: storing nothing, evicting), 2 degraded (a fault: serving uncached), 3 opening.", []string{"tier"}, nil),
		"free":        prometheus.NewDesc("iiif_cache_free_bytes", "Free bytes of the file system holding the tier's disk cache (-1 unknown).", []string{"tier"}, nil),
		"minfree":     prometheus.NewDesc("iiif_cache_min_free_bytes", "CacheMinFree in bytes on the tier's file system.", []string{"tier"}, nil),
		"unavailable": prometheus.NewDesc("iiif_cache_unavailable_total", "Store calls answered uncached because the tier was opening, full or degraded.", []string{"tier"}, nil),
		"faults": prometheus.NewDesc("iiif_cache_store_faults_total",
			"Faults of the tier's cache directory, by kind (nospace, readonly, io, corrupt, locked).", []string{"tier", "kind"}, nil),
	}
	renderDescs = map[string]*prometheus.Desc{
		"renders":     prometheus.NewDesc("iiif_renders_total", "Images rendered by libvips.", nil, nil),
		"passthrough": prometheus.NewDesc("iiif_tile_passthrough_total", "Tiles served as stored, without decoding.", nil, nil),
		"failures":    prometheus.NewDesc("iiif_render_failures_total", "Renders that failed in libvips.", nil, nil),
		"overloaded":  prometheus.NewDesc("iiif_render_overloaded_total", "Renders refused because the queue was full.", nil, nil),
		"cancelled":   prometheus.NewDesc("iiif_renders_cancelled_total", "Renders stopped because every request waiting for them gave up, or RenderTimeout passed.", nil, nil),
		"inflight":    prometheus.NewDesc("iiif_renders_in_flight", "Renders running now.", nil, nil),
		"queued":      prometheus.NewDesc("iiif_renders_queued", "Renders waiting for a worker now.", nil, nil),
	}
)

// storeCollector reads the tier stores' counters at scrape time.
type storeCollector struct{ tiers []*tier }

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range storeDescs {
		ch <- d
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range c.tiers {
		if t.cfg.Store != nil {
			collectStore(ch, t.name, t.cfg.Store.Stats())
		}
	}
}

func collectStore(ch chan<- prometheus.Metric, n string, s store.Stats) {
	ch <- prometheus.MustNewConstMetric(storeDescs["bytes"], prometheus.GaugeValue, float64(s.Bytes), n)
	ch <- prometheus.MustNewConstMetric(storeDescs["entries"], prometheus.GaugeValue, float64(s.Entries), n)
	ch <- prometheus.MustNewConstMetric(storeDescs["evicted"], prometheus.CounterValue, float64(s.Evicted), n)
	ch <- prometheus.MustNewConstMetric(storeDescs["expired"], prometheus.CounterValue, float64(s.Expired), n)
	ch <- prometheus.MustNewConstMetric(storeDescs["corrupt"], prometheus.CounterValue, float64(s.Corrupt), n)
	ch <- prometheus.MustNewConstMetric(storeDescs["errors"], prometheus.CounterValue, float64(s.Errors), n)
	ch <- prometheus.MustNewConstMetric(storeDescs["touches"], prometheus.CounterValue, float64(s.Touches), n)
	ch <- prometheus.MustNewConstMetric(storeDescs["disk"], prometheus.GaugeValue, float64(s.DiskBytes), n)
	ch <- prometheus.MustNewConstMetric(storeDescs["fixed"], prometheus.GaugeValue, float64(s.FixedOverhead), n)
	ch <- prometheus.MustNewConstMetric(storeDescs["ratio"], prometheus.GaugeValue, s.HitRatio, n)
	for _, c := range []struct {
		cause string
		v     uint64
	}{{"budget", s.Evicted}, {"retention", s.Expired}, {"purge", s.Purged}, {"corrupt", s.Corrupt}} {
		ch <- prometheus.MustNewConstMetric(storeDescs["removed"], prometheus.CounterValue, float64(c.v), n, c.cause)
	}
	ch <- prometheus.MustNewConstMetric(storeDescs["state"], prometheus.GaugeValue, float64(s.State), n)
	ch <- prometheus.MustNewConstMetric(storeDescs["free"], prometheus.GaugeValue, float64(s.FreeBytes), n)
	ch <- prometheus.MustNewConstMetric(storeDescs["minfree"], prometheus.GaugeValue, float64(s.MinFreeBytes), n)
	ch <- prometheus.MustNewConstMetric(storeDescs["unavailable"], prometheus.CounterValue, float64(s.Unavailable), n)
	for f := store.FaultNoSpace; f < store.NumFaults; f++ {
		ch <- prometheus.MustNewConstMetric(storeDescs["faults"], prometheus.CounterValue, float64(s.Faults.Of(f)), n, f.String())
	}
}

// rendererCollector reads the renderer's counters at scrape time.
type rendererCollector struct{ r StatsSource }

func (c rendererCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range renderDescs {
		ch <- d
	}
}

func (c rendererCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.r.Stats()
	ch <- prometheus.MustNewConstMetric(renderDescs["renders"], prometheus.CounterValue, float64(s.Renders))
	ch <- prometheus.MustNewConstMetric(renderDescs["passthrough"], prometheus.CounterValue, float64(s.Passthrough))
	ch <- prometheus.MustNewConstMetric(renderDescs["failures"], prometheus.CounterValue, float64(s.Failures))
	ch <- prometheus.MustNewConstMetric(renderDescs["overloaded"], prometheus.CounterValue, float64(s.Overloaded))
	ch <- prometheus.MustNewConstMetric(renderDescs["cancelled"], prometheus.CounterValue, float64(s.Cancelled))
	ch <- prometheus.MustNewConstMetric(renderDescs["inflight"], prometheus.GaugeValue, float64(s.InFlight))
	ch <- prometheus.MustNewConstMetric(renderDescs["queued"], prometheus.GaugeValue, float64(s.Queued))
}

// tierNames in rules.Tier order.
func tierNames() []string {
	out := make([]string, rules.NumTiers)
	for t := range rules.NumTiers {
		out[t] = t.String()
	}
	return out
}

// value reads a counter's current value.
func value(c prometheus.Counter) uint64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return uint64(m.GetCounter().GetValue())
}

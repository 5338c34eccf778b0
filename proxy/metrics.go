package proxy

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/iiif-proxy/iiif-proxy/cache"
	"github.com/iiif-proxy/iiif-proxy/purge"
	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/store"
)

// metrics are the proxy's Prometheus metrics, in a registry of its own so
// that two proxies can live in one process (tests do). The cache's and the
// renderer's counters are plain structs, read at scrape time.
type metrics struct {
	reg       *prometheus.Registry
	responses *prometheus.CounterVec
	byCode    map[int]prometheus.Counter // responses resolved for common codes; read-only
	render    *prometheus.HistogramVec
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

func newMetrics(c *cache.Cache, r Renderer, b *budget, fwd *purge.Forwarder) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.responses = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iiif_responses_total",
		Help: "Responses by HTTP status code."}, []string{"code"})
	m.render = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "iiif_render_seconds",
		Help:    "Time to render a response that was not cached, by tier.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30}}, []string{"tier"})
	m.reg.MustRegister(m.responses, m.render, cacheCollector{c}, sharedCollector{c})
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
	for _, code := range []int{200, 204, 303, 304, 400, 404, 405, 422, 500, 502, 503, 504} {
		m.byCode[code] = m.responses.WithLabelValues(strconv.Itoa(code))
	}
	for _, t := range c.Tiers() {
		m.render.WithLabelValues(t.Name())
	}
	m.reg.MustRegister(storeCollector{c})
	if s, ok := r.(StatsSource); ok {
		m.reg.MustRegister(rendererCollector{s})
	}
	if fwd != nil {
		m.reg.MustRegister(forwardCollector{fwd})
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
		"budget":  prometheus.NewDesc("iiif_cache_max_bytes", "The tier's byte budget in force (MaxBytes; 0 none). The directory is kept under 1.2 × it + iiif_cache_disk_slack_bytes.", []string{"tier"}, nil),
		"slack":   prometheus.NewDesc("iiif_cache_disk_slack_bytes", "The constant in the bound on the tier's directory (1.2 × budget + this, transients included): the fixed overhead plus 2 MiB for files Pebble has not accounted yet.", []string{"tier"}, nil),
		"declined": prometheus.NewDesc("iiif_cache_declined_total",
			"Entries not stored because the tier's directory was over its bound while compactions caught up (served all the same).", []string{"tier"}, nil),
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
type storeCollector struct{ c *cache.Cache }

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range storeDescs {
		ch <- d
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range c.c.Tiers() {
		if st := t.Store(); st != nil {
			collectStore(ch, t.Name(), st.Stats())
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
	ch <- prometheus.MustNewConstMetric(storeDescs["budget"], prometheus.GaugeValue, float64(s.MaxBytes), n)
	ch <- prometheus.MustNewConstMetric(storeDescs["slack"], prometheus.GaugeValue, float64(store.DiskSlack), n)
	ch <- prometheus.MustNewConstMetric(storeDescs["declined"], prometheus.CounterValue, float64(s.Declined), n)
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
	for _, d := range upstreamDescs {
		ch <- d
	}
	for _, d := range pyramidDescs {
		ch <- d
	}
	describeFallbacks(ch)
	for _, d := range sourceDescs {
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
	collectFallbacks(ch, s.Fallbacks)
	if u := s.Upstream; u != nil {
		up := 0.0
		if u.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(upstreamDescs["up"], prometheus.GaugeValue, up)
		ch <- prometheus.MustNewConstMetric(upstreamDescs["failuresInARow"], prometheus.GaugeValue, float64(u.FailuresInARow))
		for name, v := range map[string]uint64{"downs": u.Downs, "requests": u.Requests, "notModified": u.NotModified,
			"notFound": u.NotFound, "errors": u.Errors, "timeouts": u.Timeouts, "refused": u.Refused} {
			ch <- prometheus.MustNewConstMetric(upstreamDescs[name], prometheus.CounterValue, float64(v))
		}
		ch <- prometheus.MustNewConstMetric(upstreamDescs["latency"], prometheus.CounterValue, float64(u.LatencyNs)/1e9)
	}
	if p := s.Pyramids; p != nil {
		for name, v := range map[string]uint64{"started": p.Started, "succeeded": p.Succeeded, "failed": p.Failed,
			"cancelled": p.Cancelled, "skipped": p.Skipped, "evicted": p.Evicted, "dropped": p.Dropped, "served": p.Served} {
			ch <- prometheus.MustNewConstMetric(pyramidDescs[name], prometheus.CounterValue, float64(v))
		}
		ch <- prometheus.MustNewConstMetric(pyramidDescs["building"], prometheus.GaugeValue, float64(p.Building))
		ch <- prometheus.MustNewConstMetric(pyramidDescs["queued"], prometheus.GaugeValue, float64(p.Queued))
		ch <- prometheus.MustNewConstMetric(pyramidDescs["bytes"], prometheus.GaugeValue, float64(p.Bytes))
		ch <- prometheus.MustNewConstMetric(pyramidDescs["files"], prometheus.GaugeValue, float64(p.Files))
		ch <- prometheus.MustNewConstMetric(pyramidDescs["seconds"], prometheus.CounterValue, float64(p.BuildNs)/1e9)
		for _, b := range p.InProgress { // as many as builds run at once: a few
			ch <- prometheus.MustNewConstMetric(pyramidDescs["progress"], prometheus.GaugeValue, float64(b.Percent)/100, b.ID)
		}
	}
	if so := s.Sources; so != nil {
		for name, v := range map[string]uint64{"stats": so.Stats, "gets": so.Gets, "notModified": so.NotModified,
			"notFound": so.NotFound, "errors": so.Errors, "timeouts": so.Timeouts, "refused": so.Refused,
			"stale": so.Stale, "uncached": so.Uncached, "evicted": so.Evicted, "fetched": so.FetchedBytes,
			"opens": so.BreakerOpens} {
			ch <- prometheus.MustNewConstMetric(sourceDescs[name], prometheus.CounterValue, float64(v))
		}
		for name, v := range map[string]float64{"bytes": float64(so.Bytes), "maxBytes": float64(so.MaxBytes),
			"objects": float64(so.Objects), "whole": float64(so.Whole), "failuresInARow": float64(so.FailuresInARow)} {
			ch <- prometheus.MustNewConstMetric(sourceDescs[name], prometheus.GaugeValue, v)
		}
		for _, state := range []string{"closed", "open", "half-open"} {
			v := 0.0
			if so.Breaker == state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(sourceDescs["breaker"], prometheus.GaugeValue, v, state)
		}
	}
}

// sourceDescs describe the S3 source store and its local source cache.
var sourceDescs = map[string]*prometheus.Desc{
	"stats":          prometheus.NewDesc("iiif_source_s3_stats_total", "Conditional requests that describe an S3 source (first block, If-None-Match).", nil, nil),
	"gets":           prometheus.NewDesc("iiif_source_s3_gets_total", "Ranged GETs of S3 source blocks.", nil, nil),
	"notModified":    prometheus.NewDesc("iiif_source_s3_not_modified_total", "Revalidations of S3 sources answered 304 (no bytes moved).", nil, nil),
	"notFound":       prometheus.NewDesc("iiif_source_s3_not_found_total", "S3 requests answered 404.", nil, nil),
	"errors":         prometheus.NewDesc("iiif_source_s3_errors_total", "S3 requests that failed: no answer, 5xx, 403, missing bucket.", nil, nil),
	"timeouts":       prometheus.NewDesc("iiif_source_s3_timeouts_total", "S3 requests that went longer than S3Timeout without a byte.", nil, nil),
	"refused":        prometheus.NewDesc("iiif_source_s3_refused_total", "S3 requests not sent because the circuit breaker was open.", nil, nil),
	"stale":          prometheus.NewDesc("iiif_source_s3_stale_total", "S3 sources served from the source cache without revalidation because the store failed.", nil, nil),
	"uncached":       prometheus.NewDesc("iiif_source_cache_uncached_reads_total", "Reads sent to S3 uncached because the source cache had no room (SourceCacheMaxBytes or CacheMinFree).", nil, nil),
	"evicted":        prometheus.NewDesc("iiif_source_cache_evictions_total", "Originals removed from the source cache (budget, free space, or a new version).", nil, nil),
	"fetched":        prometheus.NewDesc("iiif_source_s3_fetched_bytes_total", "Bytes of S3 source data received.", nil, nil),
	"opens":          prometheus.NewDesc("iiif_source_s3_breaker_opens_total", "Times the S3 circuit breaker opened.", nil, nil),
	"bytes":          prometheus.NewDesc("iiif_source_cache_bytes", "Bytes of S3 sources held in the source cache.", nil, nil),
	"maxBytes":       prometheus.NewDesc("iiif_source_cache_max_bytes", "The source cache's budget (SourceCacheMaxBytes).", nil, nil),
	"objects":        prometheus.NewDesc("iiif_source_cache_objects", "S3 sources with at least one block in the source cache.", nil, nil),
	"whole":          prometheus.NewDesc("iiif_source_cache_whole_objects", "S3 sources held whole in the source cache.", nil, nil),
	"failuresInARow": prometheus.NewDesc("iiif_source_s3_failures_in_a_row", "S3 failures since the last success.", nil, nil),
	"breaker":        prometheus.NewDesc("iiif_source_s3_breaker", "The S3 circuit breaker's state: 1 for the state it is in (closed, open, half-open).", []string{"state"}, nil),
}

// pyramidDescs describe the automatic pyramids of large flat sources.
var pyramidDescs = map[string]*prometheus.Desc{
	"started":   prometheus.NewDesc("iiif_pyramid_builds_started_total", "Automatic pyramid builds started.", nil, nil),
	"succeeded": prometheus.NewDesc("iiif_pyramid_builds_succeeded_total", "Automatic pyramid builds that finished.", nil, nil),
	"failed":    prometheus.NewDesc("iiif_pyramid_builds_failed_total", "Automatic pyramid builds that failed (each source is retried at most twice).", nil, nil),
	"cancelled": prometheus.NewDesc("iiif_pyramid_builds_cancelled_total", "Automatic pyramid builds killed at shutdown.", nil, nil),
	"skipped":   prometheus.NewDesc("iiif_pyramid_builds_skipped_total", "Automatic pyramid builds not started: over PyramidMaxBytes or below CacheMinFree.", nil, nil),
	"evicted":   prometheus.NewDesc("iiif_pyramid_evictions_total", "Automatic pyramids removed to stay under PyramidMaxBytes.", nil, nil),
	"dropped":   prometheus.NewDesc("iiif_pyramid_dropped_total", "Automatic pyramids removed because their source changed.", nil, nil),
	"served":    prometheus.NewDesc("iiif_pyramid_renders_total", "Renders served from an automatic pyramid.", nil, nil),
	"building":  prometheus.NewDesc("iiif_pyramid_builds_in_progress", "Automatic pyramid builds running now.", nil, nil),
	"queued":    prometheus.NewDesc("iiif_pyramid_builds_queued", "Automatic pyramid builds waiting for a slot.", nil, nil),
	"bytes":     prometheus.NewDesc("iiif_pyramid_bytes", "Bytes of automatic pyramids on disk.", nil, nil),
	"files":     prometheus.NewDesc("iiif_pyramid_files", "Automatic pyramids on disk.", nil, nil),
	"seconds":   prometheus.NewDesc("iiif_pyramid_build_seconds_total", "Time spent building automatic pyramids.", nil, nil),
	"progress": prometheus.NewDesc("iiif_pyramid_build_progress_ratio",
		"Progress of each automatic pyramid build running now (0-1, the full-resolution pass; the series ends with the build).", []string{"id"}, nil),
}

// upstreamDescs describe the upstream server in sidecar mode.
var upstreamDescs = map[string]*prometheus.Desc{
	"up":             prometheus.NewDesc("iiif_upstream_up", "1 while the upstream is healthy, 0 while it is marked down (requests fail at once but for one probe per backoff).", nil, nil),
	"failuresInARow": prometheus.NewDesc("iiif_upstream_failures_in_a_row", "Upstream failures since its last success.", nil, nil),
	"downs":          prometheus.NewDesc("iiif_upstream_downs_total", "Times the upstream was marked down.", nil, nil),
	"requests":       prometheus.NewDesc("iiif_upstream_requests_total", "Requests sent to the upstream.", nil, nil),
	"notModified":    prometheus.NewDesc("iiif_upstream_not_modified_total", "Conditional requests the upstream answered 304 (a revalidation that moved no bytes).", nil, nil),
	"notFound":       prometheus.NewDesc("iiif_upstream_not_found_total", "404s from the upstream.", nil, nil),
	"errors":         prometheus.NewDesc("iiif_upstream_errors_total", "Upstream requests refused, timed out or answered 5xx.", nil, nil),
	"timeouts":       prometheus.NewDesc("iiif_upstream_timeouts_total", "Upstream requests that timed out.", nil, nil),
	"refused":        prometheus.NewDesc("iiif_upstream_skipped_total", "Requests not sent because the upstream was marked down.", nil, nil),
	"latency":        prometheus.NewDesc("iiif_upstream_seconds_total", "Total time spent waiting for the upstream, bodies included; divide by iiif_upstream_requests_total for the mean.", nil, nil),
}

var cacheDescs = map[string]*prometheus.Desc{
	"hits":       prometheus.NewDesc("iiif_cache_hits_total", "Requests answered from the cache, by tier and layer (mem, disk, shared: the fleet's shared tier).", []string{"tier", "layer"}, nil),
	"misses":     prometheus.NewDesc("iiif_cache_misses_total", "Renders started because the cache did not have the response, by tier.", []string{"tier"}, nil),
	"collapsed":  prometheus.NewDesc("iiif_cache_collapsed_total", "Requests that waited for a concurrent request's render instead of rendering, by tier.", []string{"tier"}, nil),
	"reval":      prometheus.NewDesc("iiif_cache_revalidations_total", "Old entries checked against their source, by tier and result (unchanged, changed).", []string{"tier", "result"}, nil),
	"stale":      prometheus.NewDesc("iiif_cache_stale_total", "Entries served past their revalidation age: the source unreachable (stale-if-error) or being checked in the background (stale-while-revalidate), by tier.", []string{"tier"}, nil),
	"background": prometheus.NewDesc("iiif_cache_background_revalidations_total", "Revalidations run in the background (stale-while-revalidate), by tier.", []string{"tier"}, nil),
	"tooLarge":   prometheus.NewDesc("iiif_cache_too_large_total", "Responses served but not stored because they exceeded the tier's MaxEntryBytes, by tier.", []string{"tier"}, nil),
	"faults":     prometheus.NewDesc("iiif_cache_faults_total", "Cache store failures that made a request go uncached, by tier and operation.", []string{"tier", "op"}, nil),
}

// cacheCollector reads the cache's counters at scrape time.
type cacheCollector struct{ c *cache.Cache }

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range cacheDescs {
		ch <- d
	}
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d string, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(cacheDescs[d], prometheus.CounterValue, float64(v), labels...)
	}
	for _, t := range c.c.Tiers() {
		n, s := t.Name(), t.Stats()
		counter("hits", s.MemHits, n, "mem")
		counter("hits", s.DiskHits, n, "disk")
		counter("hits", s.SharedHits, n, "shared")
		counter("misses", s.Misses, n)
		counter("collapsed", s.Collapsed, n)
		counter("reval", s.Unchanged, n, "unchanged")
		counter("reval", s.Changed, n, "changed")
		counter("stale", s.Stale, n)
		counter("background", s.Background, n)
		counter("tooLarge", s.TooLarge, n)
		for op, v := range s.Faults {
			counter("faults", v, n, op)
		}
	}
}

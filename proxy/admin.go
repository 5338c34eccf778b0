package proxy

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/iiif-proxy/iiif-proxy/cache"
	"github.com/iiif-proxy/iiif-proxy/purge"
	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/store"
)

// Admin endpoints, served on their own listener (RAIS's AdminAddress):
//
//	GET    /                     the live dashboard (dashboard.go)
//	GET    /metrics              Prometheus text format
//	GET    /stats                per-tier and renderer counters as JSON
//	DELETE /cache/ids/{id}       purge one identifier (percent-encoded) in every tier
//	DELETE /cache/tiers/{tier}   purge one tier (tile, thumbnail, info, other)
//	DELETE /cache                purge everything
//
// POST is accepted wherever DELETE is. Every purge is also forwarded to the
// caches in front (Config.Forward), in the background. With a token configured, every
// request needs "Authorization: Bearer {token}" (see auth.go); without one,
// a listener beyond loopback serves GET only (Config.AdminPublic).

// AdminServer returns a fasthttp server for the admin endpoints; token ""
// means no authentication, and no purges where Config.AdminPublic.
// SetAdminToken changes the token while it serves.
func (p *Proxy) AdminServer(token string) *fasthttp.Server {
	p.SetAdminToken(token)
	metrics := fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(p.metrics.reg, promhttp.HandlerOpts{}))
	dash := newDashboard()
	return &fasthttp.Server{
		Name:                 "iiif-proxy-admin",
		ReadTimeout:          30 * time.Second,
		WriteTimeout:         5 * time.Minute,
		NoDefaultContentType: true,
		CloseOnShutdown:      true,
		Logger:               slogPrinter{p.log},
		Handler: func(ctx *fasthttp.RequestCtx) {
			if dash.serve(ctx) { // the page holds no data; its /stats requests carry the token
				return
			}
			if !p.authorize(ctx) {
				return
			}
			path := string(ctx.Path())
			write := ctx.IsDelete() || ctx.IsPost()
			switch {
			case path == "/metrics" && ctx.IsGet():
				metrics(ctx)
			case path == "/stats" && ctx.IsGet():
				adminJSON(ctx, p.Stats())
			case path == "/cache" && write:
				for t := range rules.NumTiers {
					p.cache.PurgeTier(t)
				}
				p.cache.ForgetSources()
				p.cfg.Forward.All(purge.ReasonAdmin)
				adminJSON(ctx, map[string]any{"purged": "all"})
			case strings.HasPrefix(path, "/cache/tiers/") && write:
				name := strings.TrimPrefix(path, "/cache/tiers/")
				t, ok := rules.ParseTier(name)
				if !ok {
					adminError(ctx, fasthttp.StatusNotFound, "no tier "+name+": use tile, thumbnail, info or other")
					return
				}
				p.cache.PurgeTier(t)
				p.cfg.Forward.Tier(t.String(), purge.ReasonAdmin)
				adminJSON(ctx, map[string]any{"purged": name})
			case strings.HasPrefix(path, "/cache/ids/") && write:
				raw := strings.TrimPrefix(string(ctx.URI().PathOriginal()), "/cache/ids/")
				id, err := url.PathUnescape(raw)
				if err != nil || id == "" || strings.ContainsRune(id, 0) {
					adminError(ctx, fasthttp.StatusBadRequest, "the identifier must be one percent-encoded path segment")
					return
				}
				n := p.cache.PurgeID(id)
				// Forwarded whether or not anything was cached here: a
				// cache in front may hold what this one evicted.
				p.cfg.Forward.ID(id, purge.ReasonAdmin)
				adminJSON(ctx, map[string]any{"id": id, "purged": n})
			default:
				adminError(ctx, fasthttp.StatusNotFound,
					"admin endpoints: GET / (dashboard), GET /metrics, GET /stats, DELETE /cache/ids/{id}, DELETE /cache/tiers/{tier}, DELETE /cache")
			}
		},
	}
}

// IsAdminPath reports whether path is one of the admin endpoints'. When
// AdminAddress is Address (RAIS allows one port for both), the public
// listener hands these paths to the admin handler and the rest to Handle.
func IsAdminPath(path []byte) bool {
	switch s := string(path); {
	case s == "/metrics", s == "/stats", s == "/cache", isDashboardPath(s):
		return true
	default:
		return strings.HasPrefix(s, "/cache/")
	}
}

// SetAdminToken sets the bearer token the admin endpoints require; ""
// means none.
func (p *Proxy) SetAdminToken(token string) { p.adminToken.Store(&token) }

func adminJSON(ctx *fasthttp.RequestCtx, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		adminError(ctx, fasthttp.StatusInternalServerError, err.Error())
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

func adminError(ctx *fasthttp.RequestCtx, code int, msg string) {
	ctx.SetStatusCode(code)
	adminJSON(ctx, map[string]string{"error": msg})
}

// TierStats are one tier's counters. Every request that reaches a tier
// counts once in MemoryHits, DiskHits, SharedHits, Misses or Collapsed, so
// HitRatio is (MemoryHits+DiskHits+SharedHits) / all five. The store's own counters (Store) count
// its lookups: one per request that reached the disk (the flight's second
// look does not count a miss again), so Store.HitRatio is the disk's.
type TierStats struct {
	Cached        bool         `json:"cached"`
	Memory        int          `json:"memoryEntries"`
	MemoryHits    uint64       `json:"memoryHits"`
	DiskHits      uint64       `json:"diskHits"`
	SharedHits    uint64       `json:"sharedHits"` // from the fleet's shared tier
	Misses        uint64       `json:"misses"`
	Collapsed     uint64       `json:"collapsed"`
	HitRatio      float64      `json:"hitRatio"`
	TooLarge      uint64       `json:"tooLarge"`
	Stale         uint64       `json:"stale"`
	Faults        uint64       `json:"faults"`
	Store         *store.Stats `json:"store,omitempty"`
	CacheControl  string       `json:"cacheControl"`
	Revalidate    string       `json:"revalidate"`
	MaxEntryBytes int64        `json:"maxEntryBytes"`
	MaxBytes      int64        `json:"maxBytes"`            // the store's budget in force
	Retention     string       `json:"retention,omitempty"` // the store's retention in force

	// For the dashboard: revalidations of old entries against their source
	// by result, those run in the background (stale-while-revalidate), and
	// the time of this tier's renders (latency.go).
	RevalidatedUnchanged    uint64        `json:"revalidatedUnchanged"`
	RevalidatedChanged      uint64        `json:"revalidatedChanged"`
	BackgroundRevalidations uint64        `json:"backgroundRevalidations"`
	Render                  RenderLatency `json:"render"`
}

// limitsReader is a store that reports its budget and retention in force.
type limitsReader interface {
	Limits() (maxBytes int64, retention time.Duration)
}

// InFlightStats describe the response bytes being written to clients.
type InFlightStats struct {
	Bytes     int64  `json:"bytes"`
	Responses int64  `json:"responses"`
	Limit     int64  `json:"limit"`
	Refused   uint64 `json:"refused"`
}

// Stats are the proxy's counters, as /stats serves them.
type Stats struct {
	Tiers    map[string]TierStats `json:"tiers"`
	InFlight InFlightStats        `json:"inFlight"`
	Renderer *renderer.Stats      `json:"renderer,omitempty"`
	// PurgeForward are the counters of each cache in front that purges
	// are forwarded to (PurgeForward), in configuration order.
	PurgeForward []purge.TargetStats `json:"purgeForward,omitempty"`
	// Shared is the shared render tier's counters and state, when there
	// is one.
	Shared *cache.SharedStats `json:"shared,omitempty"`
}

// Stats returns a snapshot of the proxy's counters.
func (p *Proxy) Stats() Stats {
	s := Stats{Tiers: map[string]TierStats{}, InFlight: InFlightStats{Bytes: p.budget.used.Load(),
		Responses: p.budget.inFlight.Load(), Limit: p.budget.limit.Load(), Refused: p.budget.refused.Load()}}
	for _, t := range p.cache.Tiers() {
		live := t.Conf()
		cs := t.Stats()
		ts := TierStats{Cached: t.Cached(), Memory: cs.Memory, Faults: cs.FaultTotal(),
			MemoryHits: cs.MemHits, DiskHits: cs.DiskHits, SharedHits: cs.SharedHits,
			Misses: cs.Misses, Collapsed: cs.Collapsed, TooLarge: cs.TooLarge, Stale: cs.Stale,
			CacheControl: live.CacheControl, Revalidate: live.Revalidate.String(), MaxEntryBytes: live.MaxEntryBytes}
		if all := ts.MemoryHits + ts.DiskHits + ts.SharedHits + ts.Misses + ts.Collapsed; all > 0 {
			ts.HitRatio = float64(ts.MemoryHits+ts.DiskHits+ts.SharedHits) / float64(all)
		}
		if st := t.Store(); st != nil {
			sst := st.Stats()
			ts.Store = &sst
			if l, ok := st.(limitsReader); ok {
				max, ret := l.Limits()
				ts.MaxBytes, ts.Retention = max, ret.String()
			}
		}
		ts.RevalidatedUnchanged, ts.RevalidatedChanged, ts.BackgroundRevalidations = cs.Unchanged, cs.Changed, cs.Background
		ts.Render = p.metrics.renderLatency(t.Name())
		s.Tiers[t.Name()] = ts
	}
	if r, ok := p.r.(StatsSource); ok {
		rs := r.Stats()
		s.Renderer = &rs
	}
	s.PurgeForward = p.cfg.Forward.Stats()
	if ss, ok := p.cache.SharedStats(); ok {
		s.Shared = &ss
	}
	return s
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/iiif-proxy/iiif-proxy/cache/shared"
	"github.com/iiif-proxy/iiif-proxy/internal/config"
	"github.com/iiif-proxy/iiif-proxy/internal/s3conf"
	"github.com/iiif-proxy/iiif-proxy/proxy"
	"github.com/iiif-proxy/iiif-proxy/purge"
	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/renderer/fallback"
	"github.com/iiif-proxy/iiif-proxy/renderer/upstream"
	"github.com/iiif-proxy/iiif-proxy/renderer/vips"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/store"
)

// A pyramid build runs in a child process of this same binary (see
// renderer/vips/builder.go): such a child builds and exits here, before
// main parses a flag.
func init() { vips.MaybeBuildPyramid() }

// App is every part of a running iiif-proxy, built from one Config.
type App struct {
	cfg     config.Config // in force: the start-up one with SIGHUP's live changes
	started config.Config // as started: what a restart would change is measured from it
	log     *slog.Logger
	level   *slog.LevelVar // the log level, live
	render  appRenderer
	vips    bool // libvips was started (embedded mode)
	stores  []*store.Tier
	shared  *shared.Layer               // the fleet's shared render tier; nil: none
	tiers   [rules.NumTiers]*store.Tier // the open stores by tier; nil: none
	proxy   *proxy.Proxy
	forward *purge.Forwarder // nil: purges are not forwarded

	// reload re-reads the configuration from the start-up sources (file,
	// environment, flags); hup delivers SIGHUP. Nil: no reloading.
	reload func() (config.Config, []string, error)
	hup    <-chan os.Signal
}

// appRenderer is what the app needs of either renderer.
type appRenderer interface {
	renderer.Renderer
	SetLimits(rules.Limits) error
	Close() error
}

// newRenderer makes the renderer cfg asks for: the upstream client when
// Upstream is set (sidecar mode), else libvips, started here. Both take
// their configuration from cfg's adapters (cfg.Sidecar, cfg.Vips), which
// hold the mapping from the keys.
func newRenderer(cfg config.Config, log *slog.Logger) (appRenderer, bool, error) {
	if cfg.Upstream != "" {
		u, err := upstream.New(cfg.Sidecar())
		return u, false, err
	}
	if err := vips.Startup(vips.Options{Concurrency: cfg.VipsConcurrency, Debug: cfg.LogLevel == "DEBUG", Logger: log}); err != nil {
		return nil, false, err
	}
	vc := cfg.Vips()
	vc.Logger = log
	if vc.S3 != nil {
		// The credentials and region of the standard AWS_* variables, read
		// by package sources and here, as RAIS reads them.
		vc.S3.Region = s3conf.Region(os.Getenv)
		vc.S3.Logger = log
	}
	r, err := vips.New(vc)
	if err != nil {
		vips.Shutdown()
		return nil, false, err
	}
	return r, true, nil
}

// withFallbacks wraps r so that undecodable sources are served from a
// sibling with one of exts (Fallbacks), whichever renderer r is; no exts
// leaves r as it is.
func withFallbacks(r appRenderer, exts []string, log *slog.Logger) (appRenderer, error) {
	if len(exts) == 0 {
		return r, nil
	}
	w, err := fallback.New(r, exts, log)
	if err != nil {
		return r, err
	}
	return w.(appRenderer), nil
}

// New starts the renderer (libvips, or the upstream client), starts opening the cache tiers in the background and
// builds the parts. A tier whose store is opening or faulty runs uncached:
// a cache fault never stops or delays the server. level is the logger's
// level, which SIGHUP sets.
func New(cfg config.Config, log *slog.Logger, level *slog.LevelVar) (*App, error) {
	signer, err := proxy.NewSigner(cfg.SignedPrefixes, cfg.SigningKeys)
	if err != nil {
		return nil, err
	}
	r, started, err := newRenderer(cfg, log)
	if err != nil {
		return nil, err
	}
	r, err = withFallbacks(r, cfg.Fallbacks, log)
	if err != nil {
		r.Close()
		if started {
			vips.Shutdown()
		}
		return nil, err
	}
	a := &App{cfg: cfg, started: cfg, log: log, level: level, render: r, vips: started}
	pcfg := proxyConfig(cfg, log)
	pcfg.Signer = signer
	pc := cfg.Purge()
	pc.Logger = log
	if a.forward, err = purge.New(pc); err != nil {
		a.close()
		return nil, err
	}
	pcfg.Forward = a.forward
	for _, t := range a.forward.Stats() {
		log.Info("forwarding purges", "target", t.Target)
	}
	minFree := cfg.CacheMinFree
	if minFree.Bytes == 0 && minFree.Percent == 0 {
		minFree.Bytes = 1 // "0": no headroom beyond the store's small reserve (zero would mean the store's default)
	}
	tiers := cfg.CacheTiers()
	for t := range rules.NumTiers {
		tc, pt := tiers[t], pcfg.Tiers[t]
		if !tc.Enabled {
			continue
		}
		switch t {
		case rules.TierTile:
			pt.MemLen = cfg.TileCacheLen
		case rules.TierInfo:
			pt.MemLen = cfg.InfoCacheLen
		}
		if cfg.CacheDir != "" {
			// New opens the tier's database in the background: start-up never
			// waits on the cache, and a tier that is opening or faulty serves
			// uncached until it is usable (see store/tier.go).
			s, err := store.New(store.Config{Dir: filepath.Join(cfg.CacheDir, t.String()), MaxBytes: tc.MaxBytes,
				Retention: tc.Retention, MinFreeBytes: minFree.Bytes, MinFreePercent: minFree.Percent,
				Logger: log.With("tier", t.String())})
			if err != nil {
				log.Warn("cache tier misconfigured: serving it uncached", "tier", t.String(), "error", err)
			} else {
				pt.Store = s
				a.stores = append(a.stores, s)
				a.tiers[t] = s
			}
		}
		pcfg.Tiers[t] = pt
	}
	if cfg.SharedCache != "" {
		l, err := newShared(cfg, log)
		if err != nil {
			a.close()
			return nil, err
		}
		a.shared, pcfg.Shared = l, l
	}
	p, err := proxy.New(pcfg, r)
	if err != nil {
		a.close()
		return nil, err
	}
	a.proxy = p
	return a, nil
}

// errorRate maps AccessLogErrorRate (0: no bound) onto the proxy's
// ErrorLinesPerSecond (0: its default, negative: no bound).
func errorRate(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// proxyConfig maps cfg onto the proxy's Config, without stores or signer:
// the front's settings (cfg.Front), the tiers' policies (cfg.CacheTiers),
// the classifier, and what only the app knows (access log, admin
// listener, demo page).
func proxyConfig(cfg config.Config, log *slog.Logger) proxy.Config {
	pcfg := proxy.Config{
		AccessLog:      proxy.AccessLogConfig{Off: !cfg.AccessLog, ErrorLinesPerSecond: errorRate(cfg.AccessLogErrorRate)},
		AdminPublic:    cfg.AdminAddress != "" && !config.Loopback(cfg.AdminAddress),
		Unversioned:    rules.Version(cfg.UnversionedVersion),
		SourceCacheLen: cfg.InfoCacheLen,
		Classifier:     cfg.Classifier(),
		Logger:         log,
	}
	pcfg, _ = pcfg.WithFront(cfg.Front()) // TrustedProxies: validated with the rest by config.Load
	if cfg.DemoPage {
		pcfg.Demo = true
		if cfg.Upstream == "" {
			pcfg.DemoRoot = cfg.TilePath
		}
	}
	for t, tc := range cfg.CacheTiers() {
		pcfg.Tiers[t] = proxy.TierConfig{Policy: tc.Policy}
	}
	return pcfg
}

// newShared makes the shared render tier cfg asks for, connecting as S3
// sources do (S3Endpoint, S3DisableSSL, S3ForcePathStyle; AWS_* credentials
// and region). It does not wait on the store.
func newShared(cfg config.Config, log *slog.Logger) (*shared.Layer, error) {
	// The same connection settings as S3 sources (S3Endpoint,
	// S3DisableSSL, S3ForcePathStyle: file, RAIS_S3_* or flags), the
	// region and credentials of the AWS_* variables.
	s3 := s3conf.Config{Endpoint: cfg.S3Endpoint, DisableSSL: cfg.S3DisableSSL,
		ForcePathStyle: cfg.S3ForcePathStyle, Region: s3conf.Region(os.Getenv)}
	if err := s3.Validate(); err != nil {
		return nil, fmt.Errorf("SharedCache: %w", err)
	}
	refresh := 1.0 // never
	if cfg.SharedRefreshAfter > 0 {
		refresh = float64(cfg.SharedRefreshAfter) / float64(cfg.SharedRetention)
	}
	// A shared hit is checked against its identifier's last purge at most
	// as often as the tiers revalidate (the shortest, an hour by default).
	genTTL := time.Duration(0)
	for _, tc := range cfg.CacheTiers() {
		if rv := tc.Revalidate; tc.Enabled && rv > 0 && (genTTL == 0 || rv < genTTL) {
			genTTL = rv
		}
	}
	timeout := cfg.SharedTimeout.Std()
	return shared.New(shared.Config{URL: cfg.SharedCache, S3: s3, Timeout: timeout,
		Retention: cfg.SharedRetention.Std(), RefreshAfter: refresh, Lifecycle: cfg.SharedLifecycle,
		QueueLen: cfg.SharedQueueLen, QueueBytes: int64(cfg.SharedQueueBytes), Writers: cfg.SharedWriters,
		// A lease outlives the longest render and its write.
		LeaseTTL:      cfg.RenderTimeout.Std() + 3*timeout,
		GenerationTTL: genTTL,
		Logger:        log.With("tier", "shared")})
}

// sharedDrain is how long shutdown waits for queued shared-tier writes.
const sharedDrain = 5 * time.Second

func (a *App) close() {
	a.forward.Close() // after the listeners: no purge comes any more
	if a.shared != nil {
		a.shared.Close(sharedDrain)
	}
	// The tiers close side by side: each may wait for a database that
	// cannot flush (a full disk) up to its own bound, and one after the
	// other those bounds would add up past the shutdown grace.
	done := make(chan struct{}, len(a.stores))
	for _, s := range a.stores {
		go func() {
			if err := s.Close(); err != nil {
				a.log.Warn("closing cache", "error", err)
			}
			done <- struct{}{}
		}()
	}
	for range a.stores {
		<-done
	}
	a.render.Close()
	if a.vips {
		vips.Shutdown()
	}
}

// shutdownGrace is how long in-flight requests get to finish on SIGTERM.
const shutdownGrace = 30 * time.Second

// Run serves until ctx ends, then shuts down gracefully: the listeners
// close, in-flight requests finish, then the caches close and libvips stops.
func (a *App) Run(ctx context.Context) error {
	defer a.close()
	ln, err := net.Listen("tcp", a.cfg.Address)
	if err != nil {
		return fmt.Errorf("Address: %w", err)
	}
	servers := []*fasthttp.Server{a.proxy.Server()}
	lns := []net.Listener{ln}
	if a.cfg.AdminAddress != "" && a.cfg.AdminAddress == a.cfg.Address {
		// One port for both, as RAIS allows: the admin paths go to the
		// admin handler (its token rules included), the rest to IIIF.
		pub, adm := servers[0].Handler, a.proxy.AdminServer(a.cfg.AdminToken).Handler
		servers[0].Handler = func(ctx *fasthttp.RequestCtx) {
			if proxy.IsAdminPath(ctx.Path()) {
				adm(ctx)
				return
			}
			pub(ctx)
		}
		a.log.Info("serving admin on the IIIF listener", "address", ln.Addr().String(), "token", a.cfg.AdminToken != "", "dashboard", "/dashboard/")
	} else if a.cfg.AdminAddress != "" {
		aln, err := net.Listen("tcp", a.cfg.AdminAddress)
		if err != nil {
			ln.Close()
			return fmt.Errorf("AdminAddress: %w", err)
		}
		servers = append(servers, a.proxy.AdminServer(a.cfg.AdminToken))
		lns = append(lns, aln)
		a.log.Info("serving admin", "address", aln.Addr().String(), "token", a.cfg.AdminToken != "", "dashboard", "/")
	}
	errc := make(chan error, len(servers))
	for i, s := range servers {
		go func() { errc <- s.Serve(lns[i]) }()
	}
	wp := strings.TrimRight(a.cfg.IIIFWebPath, "/") // as the proxy reads it: "/iiif/" is "/iiif", "/" is ""
	a.log.Info("serving IIIF", "address", ln.Addr().String(), "tilePath", a.cfg.TilePath, "upstream", a.cfg.Upstream, "cacheDir", a.cfg.CacheDir,
		"sharedCache", a.cfg.SharedCache,
		"v3", wp+"/3/{identifier}/info.json", "v2", wp+"/2/{identifier}/info.json",
		"unversioned", unversionedForm(wp, a.cfg.UnversionedVersion))
	if a.cfg.DemoPage {
		a.log.Info("demo page at / (DemoPage)", "address", ln.Addr().String())
	}
	for done := false; !done; {
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			done = true
		case <-a.hup:
			a.reloadNow()
		}
	}
	a.log.Info("shutting down: finishing in-flight requests", "grace", shutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, s := range servers {
		if err := s.ShutdownWithContext(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
	a.log.Info("stopped")
	return nil
}

// unversionedForm is the start-up line's word on RAIS's URLs without a
// version: their pattern and the version they speak, or "off".
func unversionedForm(webPath string, v int) string {
	switch v {
	case 2:
		return webPath + "/{identifier}/info.json (2.1)"
	case 3:
		return webPath + "/{identifier}/info.json (3.0)"
	}
	return "off"
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/iiif-proxy/iiif-proxy/internal/config"
	"github.com/iiif-proxy/iiif-proxy/proxy"
	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// App is every part of a running iiif-proxy, built from one Config.
type App struct {
	cfg    config.Config
	log    *slog.Logger
	render *renderer.Vips
	proxy  *proxy.Proxy
}

// New starts libvips and builds the parts.
func New(cfg config.Config, log *slog.Logger) (*App, error) {
	if err := renderer.Startup(renderer.Options{Concurrency: cfg.VipsConcurrency, Debug: cfg.LogLevel == "DEBUG", Logger: log}); err != nil {
		return nil, err
	}
	r, err := renderer.New(renderer.Config{
		TilePath:        cfg.TilePath,
		Concurrency:     cfg.RenderConcurrency,
		QueueLen:        cfg.RenderQueueLen,
		JPGQuality:      cfg.JPGQuality,
		Limits:          rules.Limits{MaxArea: cfg.ImageMaxArea, MaxWidth: cfg.ImageMaxWidth, MaxHeight: cfg.ImageMaxHeight},
		UntiledTileSize: cfg.UntiledTileSize,
		TilePassthrough: cfg.TilePassthrough,
	})
	if err != nil {
		renderer.Shutdown()
		return nil, err
	}
	p, err := proxy.New(proxy.Config{
		WebPath:       cfg.IIIFWebPath,
		BaseURL:       cfg.IIIFBaseURL,
		RenderTimeout: cfg.RenderTimeout.Std(),
		Logger:        log,
	}, r)
	if err != nil {
		r.Close()
		renderer.Shutdown()
		return nil, err
	}
	return &App{cfg: cfg, log: log, render: r, proxy: p}, nil
}

// shutdownGrace is how long in-flight requests get to finish on SIGTERM.
const shutdownGrace = 30 * time.Second

// Run serves until ctx ends, then shuts down gracefully: the listener
// closes, in-flight requests finish, then libvips stops.
func (a *App) Run(ctx context.Context) error {
	defer renderer.Shutdown()
	defer a.render.Close()
	ln, err := net.Listen("tcp", a.cfg.Address)
	if err != nil {
		return fmt.Errorf("Address: %w", err)
	}
	srv := a.proxy.Server()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("serving IIIF", "address", ln.Addr().String(), "tilePath", a.cfg.TilePath,
		"v3", a.cfg.IIIFWebPath+"/3/{identifier}/info.json", "v2", a.cfg.IIIFWebPath+"/2/{identifier}/info.json")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down: finishing in-flight requests", "grace", shutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.ShutdownWithContext(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	a.log.Info("stopped")
	return nil
}

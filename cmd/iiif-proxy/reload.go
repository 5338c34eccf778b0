package main

import (
	"log/slog"
	"strings"

	"github.com/iiif-proxy/iiif-proxy/internal/config"
	"github.com/iiif-proxy/iiif-proxy/proxy"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// SIGHUP re-reads the configuration from the sources it came from at start
// (the same file, the environment, the same flags) and applies what can
// change in a running server: the log level, tier budgets, retention,
// revalidation ages, Cache-Control and MaxEntryBytes, render timeouts, image
// limits, the in-flight budget, the admin token and signing keys. It logs
// what it applied and which changed keys need a restart (listen addresses,
// TilePath, CacheDir, …); those keep their running values. A configuration
// that does not load is rejected whole, with its errors logged, and the
// running one stays. The server never stops for a SIGHUP: logrotate and
// `systemctl reload` are safe.

// reloadNow reloads from the start-up sources.
func (a *App) reloadNow() {
	if a.reload == nil {
		return
	}
	next, warnings, err := a.reload()
	for _, w := range warnings {
		a.log.Warn(w)
	}
	if err != nil {
		a.log.Error("SIGHUP: configuration rejected; the running one stays",
			"error", strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	a.Reload(next)
}

// Reload applies next's live settings and returns the keys it applied and
// those that changed but need a restart.
func (a *App) Reload(next config.Config) (applied, restart []string) {
	signer, err := proxy.NewSigner(next.SignedPrefixes, next.SigningKeys)
	if err != nil {
		a.log.Error("SIGHUP: configuration rejected; the running one stays", "error", err)
		return nil, nil
	}
	// The admin listener keeps its start-up address until a restart. A
	// token dropped there follows the start-up rule, not a refusal: on a
	// listener beyond loopback, reads stay open and purges are refused
	// (proxy.Config's AdminPublic); config.Load's warning says so on every
	// load, start-up and SIGHUP alike.
	for _, k := range config.Diff(a.started, next) {
		if !config.Live(k) {
			restart = append(restart, k)
		}
	}
	for _, k := range config.Diff(a.cfg, next) {
		if config.Live(k) {
			applied = append(applied, k)
		}
	}
	lim := next.Limits()
	if lim != a.render.Limits() {
		if err := a.render.SetLimits(lim); err != nil {
			a.log.Error("SIGHUP: image limits", "error", err)
		} else {
			// info.json advertises the limits: cached documents go.
			a.proxy.PurgeTier(rules.TierInfo)
		}
	}
	tiers := next.CacheTiers()
	for t := range rules.NumTiers {
		if s, tc := a.tiers[t], tiers[t]; s != nil {
			if err := s.SetLimits(tc.MaxBytes, tc.Retention); err != nil {
				a.log.Error("SIGHUP: tier limits", "tier", t.String(), "error", err)
			}
		}
	}
	a.proxy.Reload(proxyConfig(next, a.log))
	a.proxy.SetSigner(signer)
	if a.cfg.AdminAddress != "" {
		a.proxy.SetAdminToken(next.AdminToken)
	}
	// What is in force now: next's live keys on the running rest.
	config.CopyLive(&a.cfg, next)
	// Logged at the more verbose of the old and new levels, then the new
	// one applies: an operator who turns INFO down to WARN, or WARN up to
	// INFO, sees what the reload did.
	level := logLevel(next.LogLevel)
	a.level.Set(min(a.level.Level(), level))
	a.log.Info("SIGHUP: configuration reloaded", "applied", strings.Join(applied, ","), "needsRestart", strings.Join(restart, ","))
	a.level.Set(level)
	return applied, restart
}

func logLevel(level string) slog.Level {
	switch level {
	case "DEBUG":
		return slog.LevelDebug
	case "WARN":
		return slog.LevelWarn
	case "ERROR", "CRIT":
		return slog.LevelError
	}
	return slog.LevelInfo
}

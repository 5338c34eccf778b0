// Command iiif-proxy is a caching IIIF Image API 3.0 and 2.1 server.
//
//	iiif-proxy [-config conf/rais.toml] [flags]   serve (see -help)
//	iiif-proxy samples [-dir samples] [-small]    generate the sample images
//	iiif-proxy purge IDENTIFIER…                  purge cached derivatives (admin API)
//	iiif-proxy stats [-json]                       print counters and hit ratios (admin API)
//	iiif-proxy sign URL-PATH [-expires 24h]        print a signed URL (SignedPrefixes)
//
// SIGTERM and SIGINT drain and stop; SIGHUP reloads the configuration
// (reload.go).
//
// Configuration: built-in defaults, then the TOML file, then RAIS_*
// environment variables, then flags; see conf/rais.toml for every key.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/iiif-proxy/iiif-proxy/internal/config"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "samples":
			return samplesCmd(args[1:])
		case "purge", "stats":
			return adminCmd(args[0], args[1:])
		case "sign":
			return signCmd(args[1:])
		}
	}
	if len(args) > 0 && (args[0] == "-help" || args[0] == "--help" || args[0] == "-h") {
		fmt.Fprint(os.Stderr, `usage:
  iiif-proxy [flags]                        serve
  iiif-proxy samples [-dir DIR] [-small]    generate sample images
  iiif-proxy purge IDENTIFIER…              purge an image's cached derivatives (also -tier T, -all)
  iiif-proxy stats [-json]                  print cache and renderer counters, per-tier hit ratios
  iiif-proxy sign URL-PATH [-expires 24h]   print a signed URL of a protected image

flags:
`)
		fs := config.Flags()
		fs.SetOutput(os.Stderr)
		fs.PrintDefaults()
		return 0
	}
	file, given, rest, err := config.ConfigFlag(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "iiif-proxy:", err)
		return 2
	}
	if !given {
		file = config.Find()
	}
	// SIGHUP's default action ends the process: catch it before anything
	// else, so a reload during start-up is queued, not fatal.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cfg, warnings, err := config.Load(file, os.Environ(), rest)
	logger, level := newLogger(cfg.LogLevel)
	for _, w := range warnings {
		logger.Warn(w)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "iiif-proxy: configuration (%s) has problems:\n  %s\n", orNone(file),
			strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return 2
	}
	logger.Info("configuration loaded", "file", orNone(file))

	// The live heap is small (the cache is on disk), so Go's default GC
	// target collects every few megabytes of per-request garbage; a higher
	// target trades a little memory for a lot of CPU. GOGC still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	app, err := New(cfg, logger, level)
	if err != nil {
		logger.Error("start-up failed", "error", err)
		return 1
	}
	app.hup = hup
	app.reload = func() (config.Config, []string, error) { return config.Load(file, os.Environ(), rest) }
	if err := app.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("stopped", "error", err)
		return 1
	}
	return 0
}

func orNone(file string) string {
	if file == "" {
		return "no file, defaults and environment only"
	}
	return file
}

// newLogger logs to stderr at level; the returned LevelVar changes it live.
func newLogger(level string) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	lv.Set(logLevel(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv})), lv
}

// newFlagSet is a FlagSet for a subcommand that prints its own usage.
func newFlagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: iiif-proxy %s\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

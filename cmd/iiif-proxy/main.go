// Command iiif-proxy is a caching IIIF Image API 3.0 and 2.1 server.
//
//	iiif-proxy [-config conf/rais.toml] [flags]   serve (see -help)
//	iiif-proxy samples [-dir samples] [-small]    generate the sample images
//	iiif-proxy purge IDENTIFIER…                  purge cached derivatives (admin API)
//	iiif-proxy stats [-json]                       print counters and hit ratios (admin API)
//	iiif-proxy sign URL-PATH [-expires 24h]        print a signed URL (SignedPrefixes)
//	iiif-proxy check [-url BASE] [IDENTIFIER…]     describe and render every image, report failures
//	iiif-proxy warm [-url BASE] IDENTIFIER…        pre-render what viewers ask for first
//	iiif-proxy classify URL…                       the tier, rule and cache key of each URL
//	iiif-proxy config [SERVER FLAGS…]              the effective configuration and its sources
//	iiif-proxy health [-address HOST:PORT]         probe a running server's /healthz (exit 0 or 1)
//	iiif-proxy -version                            print the version and commit
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
	"io"
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
		case "check":
			return checkCmd(args[1:])
		case "warm":
			return warmCmd(args[1:])
		case "classify":
			return classifyCmd(args[1:])
		case "config":
			return configCmd(args[1:])
		case "health":
			return healthCmd(args[1:])
		default:
			// The server takes flags only: a first word that is no flag is
			// a command mistyped ("stat", "version"), not a configuration
			// problem, which is what the flag parser would call it.
			if !strings.HasPrefix(args[0], "-") {
				fmt.Fprintf(os.Stderr, "iiif-proxy: unknown command %q: commands are samples, purge, stats, sign, check, warm, classify, config and health; the server takes flags only (see -help)\n", args[0])
				return 2
			}
		}
	}
	for _, a := range args {
		switch a {
		case "-help", "--help", "-h":
			printHelp(os.Stdout)
			return 0
		case "-version", "--version":
			fmt.Println(versionLine())
			return 0
		}
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
	logger, level := newLogger(cfg.LogLevel, cfg.LogFormat)
	for _, w := range warnings {
		logger.Warn(w)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "iiif-proxy: configuration (%s) has problems:\n  %s\n", orNone(file),
			strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return 2
	}
	logger.Info("configuration loaded", "file", orNone(file), "version", version, "commit", commit)

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
	app.reload = reloader(file, rest, warnings)
	if err := app.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("stopped", "error", err)
		return 1
	}
	return 0
}

// reloader re-reads the configuration for a SIGHUP. Warnings that a RAIS
// key is not implemented were said at start (or at the last reload) and
// are not repeated on every reload; new ones, and every other warning (a
// public admin listener without a token is said on every load), are.
func reloader(file string, rest, startWarnings []string) func() (config.Config, []string, error) {
	said := map[string]bool{}
	for _, w := range startWarnings {
		said[w] = true
	}
	return func() (config.Config, []string, error) {
		cfg, warnings, err := config.Load(file, os.Environ(), rest)
		var out []string
		now := map[string]bool{}
		for _, w := range warnings {
			now[w] = true
			if !said[w] || !strings.Contains(w, "is not implemented by iiif-proxy") {
				out = append(out, w)
			}
		}
		said = now
		return cfg, out, err
	}
}

func orNone(file string) string {
	if file == "" {
		return "no file: defaults, environment and flags"
	}
	return file
}

// newLogger logs to stderr at level, as text or JSON (LogFormat); the
// returned LevelVar changes the level live.
func newLogger(level, format string) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	lv.Set(logLevel(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), lv
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts)), lv
}

// newFlagSet is a FlagSet for a subcommand that prints its own usage.
func newFlagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: iiif-proxy %s\n\nflags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses a subcommand's args. Asked for help (-h, -help), it
// prints the usage on stdout and says done with status 0; on a bad flag,
// the usage goes to stderr and the status is 2.
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	fs.SetOutput(io.Discard) // the error and usage are printed below, once
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(os.Stdout)
		fs.Usage()
		return 0, true
	case err != nil:
		fs.SetOutput(os.Stderr)
		fmt.Fprintf(os.Stderr, "iiif-proxy %s: %v\n", fs.Name(), err)
		fs.Usage()
		return 2, true
	}
	fs.SetOutput(os.Stderr)
	return 0, false
}

// printHelp writes the server's usage and every flag, each with its
// sentence, key and environment variable.
func printHelp(w io.Writer) {
	fmt.Fprintf(w, `%s: a caching IIIF Image API 3.0 and 2.1 server that reads RAIS's configuration.

usage:
  iiif-proxy [-config FILE] [flags]         serve
  iiif-proxy samples [-dir DIR] [-small]    generate sample images
  iiif-proxy purge IDENTIFIER…              purge an image's cached derivatives (also -tier T, -all)
  iiif-proxy stats [-json]                  print cache and renderer counters, per-tier hit ratios
  iiif-proxy sign URL-PATH [-expires 24h]   print a signed URL of a protected image
  iiif-proxy check [-url BASE] [ID…]        describe and render every image (TilePath or a list); report failures
  iiif-proxy warm [-url BASE] ID…           pre-render info.json, sizes and the first views' tiles of each image
  iiif-proxy classify URL…                  say which cache tier each URL lands in, under which rule, and its key
  iiif-proxy config [FLAGS…]                print the effective configuration and where each value came from
  iiif-proxy health [-address HOST:PORT]    probe a running server's /healthz: exit 0 when it answers, 1 when not
  iiif-proxy -version                       print the version and commit
  iiif-proxy COMMAND -h                     a command's own flags

Settings come from built-in defaults, then the TOML file, then RAIS_*
environment variables, then these flags; conf/rais.toml documents each.

flags:
`, versionLine())
	fs := config.Flags()
	fs.SetOutput(w)
	fs.PrintDefaults()
}

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/iiif-proxy/iiif-proxy/internal/config"
	"github.com/iiif-proxy/iiif-proxy/renderer/vips"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// What the operator tools (check, warm, classify) share: the configuration
// as the server reads it, a renderer built as the server builds it, and
// lists of identifiers.

// loadToolConfig reads the configuration from file, the environment and
// the server's own flags in args (-tile-path, -fallbacks, …), as the server
// would: a tool checks what the server would serve. Its problems are
// printed, and stop the tool, only when it needs the configuration (in
// process); against a running server the defaults stand in for what is bad.
func loadToolConfig(name, file string, args []string, needed bool) (config.Config, bool) {
	cfg, _, err := config.Load(file, os.Environ(), args)
	if err != nil && needed {
		fmt.Fprintf(os.Stderr, "iiif-proxy %s: configuration (%s) has problems:\n  %s\n", name, orNone(file),
			strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return cfg, false
	}
	return cfg, true
}

// serverFlags turns a tool's own flags that mirror the server's (name,
// value pairs) into server flags for loadToolConfig, leaving out the ones
// not given.
func serverFlags(pairs ...string) []string {
	var args []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			args = append(args, "-"+pairs[i], pairs[i+1])
		}
	}
	return args
}

// toolRenderer builds the renderer cfg asks for, as the server does
// (Fallbacks included), for workers at once: as many render slots and no
// automatic pyramid builds (a tool must not write into the server's cache
// directory). The logger gets the renderer's warnings.
func toolRenderer(cfg config.Config, workers int, log *slog.Logger) (appRenderer, func(), error) {
	cfg.RenderConcurrency = workers
	cfg.RenderQueueLen = workers
	cfg.PyramidMinPixels = 0
	r, started, err := newRenderer(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	r, err = withFallbacks(r, cfg.Fallbacks, log)
	closeAll := func() {
		r.Close()
		if started {
			vips.Shutdown()
		}
	}
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return r, closeAll, nil
}

// readIDs reads identifiers one a line from file ("-" is stdin); blank
// lines and lines starting with # are skipped.
func readIDs(file string) ([]string, error) {
	var r io.Reader = os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var ids []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			ids = append(ids, line)
		}
	}
	return ids, sc.Err()
}

// walkIDs lists the identifiers under root: every regular file (or
// symlink to one), as a slash-separated path relative to root, in lexical
// order. Names starting with "." (.git, .DS_Store, editors' files) are
// skipped, directories included.
func walkIDs(root string) ([]string, error) {
	var ids []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
				return nil
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		ids = append(ids, filepath.ToSlash(rel))
		return nil
	})
	return ids, err
}

// toolIDs are the identifiers a tool works on: its arguments, else the
// list file, else (when walk is set) every file under TilePath.
func toolIDs(args []string, list string, cfg config.Config, walk bool) ([]string, error) {
	switch {
	case len(args) > 0:
		return args, nil
	case list != "":
		return readIDs(list)
	case !walk:
		return nil, errors.New("no identifiers: give them as arguments or in -list FILE (- for stdin)")
	case cfg.TilePath == "":
		return nil, errors.New("no identifiers and no TilePath to walk: give them as arguments or in -list FILE")
	}
	return walkIDs(cfg.TilePath)
}

// escapedPath is the request path of id after the version: the identifier
// as one escaped segment, then rest ("/info.json", "/full/!256,256/0/default.jpg").
func escapedPath(id, rest string) string {
	return string(rules.AppendEscapedID(nil, id)) + rest
}

// oneLine flattens a multi-line message (libvips' errors are several
// lines) for a table cell.
func oneLine(s string) string {
	var parts []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

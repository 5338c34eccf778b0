package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/iiif-proxy/iiif-proxy/internal/config"
	"github.com/iiif-proxy/iiif-proxy/proxy"
)

// classifyCmd runs "iiif-proxy classify URL…": for each URL (a path such as
// /iiif/3/scan.tif/full/1024,/0/default.jpg, or a full URL), the tier it
// lands in, under which rule, and its cache key, found by the proxy's own
// routing, parsing and classifier (proxy.Explain) with the configured
// settings; images are described by the configured renderer, since a
// request's tier depends on the image's size. For tuning the tiers'
// MaxSize and Formats.
func classifyCmd(args []string) int {
	fs := newFlagSet("classify", "classify [-config FILE] [-json] URL…\n\n"+
		"Says which cache tier each URL lands in, under which rule, and its cache key, with the configured tiers.")
	file := fs.String("config", config.Find(), "Configuration file (IIIFWebPath, the tiers' MaxSize and Formats, TilePath or Upstream).")
	asJSON := fs.Bool("json", false, "Print JSON, one object per URL, instead of a table.")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	cfg, ok := loadToolConfig("classify", *file, nil, true)
	if !ok {
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	r, closeR, err := toolRenderer(cfg, 1, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "iiif-proxy classify:", err)
		return 1
	}
	defer closeR()
	p, err := proxy.New(proxyConfig(cfg, log), r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "iiif-proxy classify:", err)
		return 1
	}
	var rows []classified
	failed := false
	for _, u := range fs.Args() {
		e, err := p.Explain(context.Background(), u)
		row := classified{URL: u, Kind: e.Kind, ID: e.ID, Canonical: e.Canonical, Rule: e.Rule, Key: e.Key}
		if e.Kind != "" && e.Kind != "base" && err == nil {
			row.Tier = e.Tier.String()
		}
		if err != nil {
			failed = true
			row.Status, row.Error = proxy.Status(err)
			row.Error = oneLine(err.Error())
		}
		rows = append(rows, row)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, row := range rows {
			enc.Encode(row)
		}
	} else {
		printClassified(os.Stdout, rows)
	}
	if failed {
		return 1
	}
	return 0
}

// classified is one URL's answer.
type classified struct {
	URL       string `json:"url"`
	Kind      string `json:"kind,omitempty"` // image, info or base
	ID        string `json:"id,omitempty"`
	Canonical string `json:"canonical,omitempty"`
	Tier      string `json:"tier,omitempty"`
	Rule      string `json:"rule,omitempty"`
	Key       string `json:"key,omitempty"` // the identifier, NUL, the request's key
	Status    int    `json:"status,omitempty"`
	Error     string `json:"error,omitempty"`
}

// printClassified prints rows as a table; a key's NUL byte shows as \x00.
func printClassified(w io.Writer, rows []classified) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "URL\tTIER\tKEY\tRULE")
	for _, r := range rows {
		switch {
		case r.Error != "":
			fmt.Fprintf(tw, "%s\t-\t-\t%d: %s\n", r.URL, r.Status, r.Error)
		case r.Kind == "base":
			fmt.Fprintf(tw, "%s\t-\t-\t%s\n", r.URL, r.Rule)
		default:
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.URL, r.Tier, strings.ReplaceAll(r.Key, "\x00", `\x00`), r.Rule)
		}
	}
	tw.Flush()
}

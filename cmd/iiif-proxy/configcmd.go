package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/iiif-proxy/iiif-proxy/internal/config"
)

// configCmd runs "iiif-proxy config": the effective configuration, every
// key with its value and where it came from (default, the file and line,
// an environment variable, a flag, or another key), exactly as the server
// would load it with the same file, environment and flags:
//
//	iiif-proxy config -config /etc/rais.toml -tile-path /data
//
// Secrets (AdminToken, SigningKeys) show as "(set)". Problems are listed
// after the table, and make the exit status 2, as they stop the server.
func configCmd(args []string) int {
	fs := newFlagSet("config", "config [-config FILE] [-json] [SERVER FLAGS…]\n\n"+
		"Prints the effective configuration: every key, its value and where it came from (default, file:line,\n"+
		"environment, flag). Server flags (see iiif-proxy -help) may follow, as the server would be started with them.")
	fs.String("config", "", "Configuration file (default: conf/rais.toml, rais.toml or /etc/rais.toml, whichever exists).")
	fs.Bool("json", false, "Print JSON, one object per key, instead of a table.")
	asJSON := false
	var rest []string
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help":
			fs.SetOutput(os.Stdout)
			fs.Usage()
			return 0
		case "-json", "--json", "-json=true", "--json=true":
			asJSON = true
		default:
			rest = append(rest, a)
		}
	}
	file, given, rest, err := config.ConfigFlag(rest)
	if err != nil {
		fmt.Fprintln(os.Stderr, "iiif-proxy config:", err)
		return 2
	}
	if !given {
		file = config.Find()
	}
	cfg, src, warnings, err := config.LoadSources(file, os.Environ(), rest)
	settings := config.Settings(cfg, src)
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, s := range settings {
			enc.Encode(s)
		}
	} else {
		fmt.Printf("# configuration file: %s\n", orNone(file))
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tVALUE\tFROM")
		for _, s := range settings {
			v := s.Value
			if v == "" {
				v = `""`
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Key, v, s.Source)
		}
		tw.Flush()
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "iiif-proxy config: the server would not start; problems:\n  %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return 2
	}
	return 0
}

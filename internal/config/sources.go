package config

import (
	"bufio"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
)

// Where each setting came from, for `iiif-proxy config`: the value in force
// of every key, and whether it is the built-in default or was set by the
// file (with its line), an environment variable or a flag (the last one
// applied wins, as in Load).

// SourceKind says which layer of the configuration set a key.
type SourceKind string

// The layers, in the order they apply.
const (
	FromDefault     SourceKind = "default"
	FromFile        SourceKind = "file"
	FromEnvironment SourceKind = "environment"
	FromFlag        SourceKind = "flag"
	// FromDerived: computed from another key (IIIFURL gives IIIFBaseURL
	// and IIIFWebPath; AdminTokenFile gives AdminToken).
	FromDerived SourceKind = "derived"
)

// Source is where one key's value came from.
type Source struct {
	Kind SourceKind `json:"source"`
	// Where names it: "conf/rais.toml:12", "RAIS_TILEPATH", "-tile-path",
	// "IIIFURL"; empty for a default.
	Where string `json:"where,omitempty"`
}

func (s Source) String() string {
	if s.Where == "" {
		return string(s.Kind)
	}
	return string(s.Kind) + " " + s.Where
}

// Sources are the keys ("LogLevel", "Tiers.Tile.MaxBytes") that were set,
// and by what; a key not in it has its default. A nil Sources records
// nothing.
type Sources map[string]Source

func (s Sources) set(path []string, src Source) {
	if s != nil {
		s[strings.Join(path, ".")] = src
	}
}

// derived records the keys Load computes from others, once every layer has
// applied.
func (s Sources) derived(cfg Config) {
	if s == nil {
		return
	}
	if from, ok := s["IIIFURL"]; ok && cfg.IIIFURL != "" {
		for _, k := range []string{"IIIFBaseURL", "IIIFWebPath"} {
			s[k] = Source{Kind: FromDerived, Where: "IIIFURL (" + from.String() + ")"}
		}
	}
	if _, ok := s["AdminTokenFile"]; ok && cfg.AdminToken != "" {
		if _, direct := s["AdminToken"]; !direct {
			s["AdminToken"] = Source{Kind: FromDerived, Where: "AdminTokenFile " + cfg.AdminTokenFile}
		}
	}
	if _, ok := s["SigningKeyFile"]; ok && len(cfg.SigningKeys) > 0 {
		if _, direct := s["SigningKeys"]; !direct {
			s["SigningKeys"] = Source{Kind: FromDerived, Where: "SigningKeyFile " + cfg.SigningKeyFile}
		}
	}
}

// LoadSources is Load that also says where each key set came from.
func LoadSources(file string, environ []string, args []string) (Config, Sources, []string, error) {
	src := Sources{}
	cfg, warnings, err := load(file, environ, args, src)
	return cfg, src, warnings, err
}

// Setting is one key of the effective configuration.
type Setting struct {
	Key   string `json:"key"`
	Value string `json:"value"` // as the file would say it; secrets masked
	Source
}

// secrets are the keys whose values are never printed.
var secrets = map[string]bool{"AdminToken": true, "SigningKeys": true}

// Settings lists every key of cfg in declaration order, with its value
// (secrets masked: "(set)") and where it came from.
func Settings(cfg Config, src Sources) []Setting {
	var fs []field
	leaves(reflect.ValueOf(&cfg).Elem(), nil, &fs)
	out := make([]Setting, 0, len(fs))
	for _, f := range fs {
		key := strings.Join(f.path, ".")
		s := Setting{Key: key, Value: valueText(f.v), Source: Source{Kind: FromDefault}}
		if from, ok := src[key]; ok {
			s.Source = from
		}
		if secrets[key] && s.Value != "" {
			s.Value = "(set)"
		}
		out = append(out, s)
	}
	return out
}

// valueText is v written as a flag or environment variable takes it.
func valueText(v reflect.Value) string {
	if v.Kind() == reflect.Slice {
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
		}
		return strings.Join(parts, ",")
	}
	return flagValue{v: v}.String()
}

// keyLines finds the line of each key assignment in a TOML file, by
// lower-case dotted path ("tiers.tile.maxbytes"): a line scan that knows
// table headers and dotted keys, enough for a configuration file (a key
// inside a multi-line value is not looked for). Lines count from 1.
func keyLines(file string) map[string]int {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	lines := map[string]int{}
	table := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if m := tableHeader.FindStringSubmatch(line); m != nil {
			table = strings.ToLower(strings.ReplaceAll(m[1], " ", "")) + "."
			continue
		}
		if m := keyAssign.FindStringSubmatch(line); m != nil {
			key := table + strings.ToLower(strings.ReplaceAll(strings.Trim(m[1], `"`), " ", ""))
			if _, seen := lines[key]; !seen {
				lines[key] = n
			}
		}
	}
	return lines
}

var (
	tableHeader = regexp.MustCompile(`^\[\s*([A-Za-z0-9_.\- ]+?)\s*\]\s*(#.*)?$`)
	keyAssign   = regexp.MustCompile(`^("?[A-Za-z0-9_\-]+"?(?:\s*\.\s*"?[A-Za-z0-9_\-]+"?)*)\s*=`)
)

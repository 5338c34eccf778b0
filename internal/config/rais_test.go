package config

import (
	"flag"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestRAISSampleFilesStart: configurations written from RAIS 2, 3 and 4's
// documentation load unchanged (TilePath set by the environment, as RAIS's
// Docker image sets it), with one warning for each key not implemented and
// set to something (CapabilitiesFile = "" and Plugins = "" ask for nothing
// and warn about nothing).
func TestRAISSampleFilesStart(t *testing.T) {
	for _, tc := range []struct {
		file  string
		warns []string // each warning, by the key it names
		check func(t *testing.T, c Config)
	}{
		{"testdata/rais2.toml", []string{"Plugins", "S3Bucket", "S3Cache", "S3Zone"},
			func(t *testing.T, c Config) {
				if c.IIIFBaseURL != "http://images.example.org" || c.IIIFWebPath != "/images/iiif" {
					t.Errorf("IIIFURL read as base %q path %q", c.IIIFBaseURL, c.IIIFWebPath)
				}
				if c.UnversionedVersion != 2 || c.LogLevel != "DEBUG" || c.TileCacheLen != 0 {
					t.Errorf("cfg %+v", c)
				}
			}},
		{"testdata/rais3.toml", []string{"AdminToken", "DatadogAddress", "DatadogServiceName",
			"MaxTraces", "S3Cache", "S3Zone", "TraceFlushMinutes", "TracerOutputDirectory"},
			func(t *testing.T, c Config) {
				if c.AdminAddress != ":12416" || c.AdminToken != "" || c.IIIFWebPath != "/iiif" || c.IIIFBaseURL != "" {
					t.Errorf("cfg %+v", c)
				}
			}},
		{"testdata/rais4.toml", []string{"AdminToken", "CapabilitiesFile", "S3Cache", "S3Zone"},
			func(t *testing.T, c Config) {
				if c.IIIFBaseURL != "https://images.example.org" || c.IIIFWebPath != "/images/iiif" || c.TileCacheLen != 500 {
					t.Errorf("cfg %+v", c)
				}
				// RAIS 4's S3 keys are implemented (S3 sources).
				if c.S3Endpoint != "minio:9000" || !c.S3DisableSSL || !c.S3ForcePathStyle {
					t.Errorf("S3 keys read as %q %v %v", c.S3Endpoint, c.S3DisableSSL, c.S3ForcePathStyle)
				}
			}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cfg, warns, err := Load(tc.file, []string{"RAIS_TILEPATH=" + t.TempDir()}, nil)
			if err != nil {
				t.Fatalf("does not start: %v", err)
			}
			var named []string
			for _, w := range warns {
				if strings.Contains(w, "\n") {
					t.Errorf("warning of more than one line: %q", w)
				}
				key := ""
				if _, after, ok := strings.Cut(w, "RAIS setting "); ok {
					key, _, _ = strings.Cut(after, " ")
				} else if strings.HasPrefix(w, "AdminToken: ") {
					key = "AdminToken"
				}
				named = append(named, key)
			}
			slices.Sort(named)
			if !slices.Equal(named, tc.warns) {
				t.Errorf("warnings name %q, want %q:\n%s", named, tc.warns, strings.Join(warns, "\n"))
			}
			tc.check(t, cfg)
		})
	}
}

// TestRAISSettingsInTheEnvironmentAndFlagsWarn: RAIS's plugin switches
// and its flags for keys we do not implement warn by name instead of
// failing; RAIS 4's own spelling of its S3 settings (RAIS_S3_ENDPOINT) and
// IIIFURL work there too.
func TestRAISSettingsInTheEnvironmentAndFlagsWarn(t *testing.T) {
	env := []string{"RAIS_TILEPATH=s3://images/scans", "RAIS_PLUGINS=*.so", "RAIS_S3_ENDPOINT=minio:9000",
		"RAIS_S3_DISABLESSL=t", "RAIS_S3_FORCEPATHSTYLE=true", "RAIS_CACHEDIR=" + t.TempDir(),
		"RAIS_ALLOW_INSECURE_PLUGINS=1", "RAIS_IIIFURL=https://x.example/iiif", "RAIS_S3CACHE="}
	cfg, warns, err := Load("", env, []string{"--plugins", "datadog.so", "--capabilities-file=/etc/cap.toml"})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(warns, "\n")
	if strings.Contains(all, "RAIS_S3_") {
		t.Errorf("RAIS 4's S3 settings warned:\n%s", all)
	}
	if strings.Contains(all, "RAIS_S3CACHE") {
		t.Errorf("an empty RAIS_S3CACHE, which asks for nothing, warned:\n%s", all)
	}
	if cfg.S3Endpoint != "minio:9000" || !cfg.S3DisableSSL || !cfg.S3ForcePathStyle || cfg.SourceCache() == "" {
		t.Errorf("RAIS_S3_* read as %q %v %v, source cache %q", cfg.S3Endpoint, cfg.S3DisableSSL, cfg.S3ForcePathStyle, cfg.SourceCache())
	}
	for _, want := range []string{"environment: RAIS setting RAIS_PLUGINS", "RAIS_ALLOW_INSECURE_PLUGINS",
		"flag -plugins: RAIS setting Plugins", "flag -capabilities-file: RAIS setting CapabilitiesFile"} {
		if !strings.Contains(all, want) {
			t.Errorf("no warning %q in:\n%s", want, all)
		}
	}
	if cfg.IIIFBaseURL != "https://x.example" || cfg.IIIFWebPath != "/iiif" {
		t.Errorf("RAIS_IIIFURL read as %q %q", cfg.IIIFBaseURL, cfg.IIIFWebPath)
	}
}

func TestIIIFURLProblems(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ env, want string }{
		{"RAIS_IIIFURL=images.example.org/iiif", "must be http(s)://host[:port]/path"},
		{"RAIS_IIIFURL=http://images.example.org", "must be http(s)://host[:port]/path"},
		{"RAIS_IIIFWEBPATH=/other", `IIIFWebPath says "/other"`},
		{"RAIS_IIIFBASEURL=http://elsewhere.example", `IIIFBaseURL says "http://elsewhere.example"`},
	} {
		env := []string{"RAIS_TILEPATH=" + dir, tc.env}
		if !strings.HasPrefix(tc.env, "RAIS_IIIFURL") {
			env = append(env, "RAIS_IIIFURL=http://images.example.org/iiif")
		}
		if _, _, err := Load("", env, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.env, err, tc.want)
		}
	}
	// Saying the same thing twice is no conflict.
	if _, _, err := Load("", []string{"RAIS_TILEPATH=" + dir, "RAIS_IIIFURL=http://a.example/iiif/",
		"RAIS_IIIFWEBPATH=/iiif", "RAIS_IIIFBASEURL=http://a.example"}, nil); err != nil {
		t.Errorf("agreeing keys: %v", err)
	}
}

// TestEveryKindOfProblemIsListed: type, duration, size, unknown-key and
// value problems from the file, the environment and flags, all in one error.
func TestEveryKindOfProblemIsListed(t *testing.T) {
	_, _, err := Load("testdata/every-error.toml",
		[]string{"RAIS_IMAGEMAXAREA=lots", "RAIS_WRITETIMEOUT=soon", "RAIS_TIERS_OTHER_MAXBYTES=12 zorks"},
		[]string{"-image-max-width", "wide", "-render-wait=later", "-nonsense", "-max-in-flight-bytes", "-1"})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		"unknown key Typo", "JPGQuality:", "InfoCacheLen:", "LogLevel:", "TilePath:", "RenderTimeout:",
		"RenderWait:", "MaxInFlightBytes:", "CacheMinFree:", "TilePassthrough:", "UnversionedVersion:",
		"Tiers.Tile.MaxBytes:", "Tiers.Tile.Retention:", "unknown key Tiers.Tile.Colour", "Tiers.Thumbnail.Formats:",
		"RAIS_IMAGEMAXAREA", "RAIS_WRITETIMEOUT", "RAIS_TIERS_OTHER_MAXBYTES",
		"flag -image-max-width", "flag -render-wait", "unknown flag -nonsense", "flag -max-in-flight-bytes",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not list %q", want)
		}
	}
	// A wrong type is said as the environment's errors say it: the value,
	// what was wanted, and the file's line.
	for _, want := range []string{`JPGQuality: line 4: "high" is not a whole number`,
		"InfoCacheLen: line 5: 1.5 is not a whole number", `TilePassthrough: line 11: "yes" is not true or false`,
		`Tiers.Thumbnail.Formats: line 20: "jpg" is not a list`} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q", want)
		}
	}
	if strings.Contains(msg, "incompatible types") {
		t.Error("the error speaks the TOML library's words (incompatible types … destination)")
	}
	if t.Failed() {
		t.Logf("the error:\n%s", msg)
	}
}

// TestEveryFlagHasAUsage: -help says a sentence for every key, never just
// its name.
func TestEveryFlagHasAUsage(t *testing.T) {
	Flags().VisitAll(func(f *flag.Flag) {
		if !strings.Contains(f.Usage, ". (") && f.Name != "config" {
			t.Errorf("-%s: usage %q is no sentence", f.Name, f.Usage)
		}
	})
	// Only the tile and thumbnail tiers have MaxSize and Formats (validate
	// refuses the others'): -help does not offer them.
	for _, name := range []string{"tiers-info-maxsize", "tiers-info-formats", "tiers-other-maxsize", "tiers-other-formats"} {
		if Flags().Lookup(name) != nil {
			t.Errorf("-help offers -%s, which validate always refuses", name)
		}
	}
	if Flags().Lookup("tiers-thumbnail-formats") == nil {
		t.Error("-help lost -tiers-thumbnail-formats")
	}
	for k := range usages {
		if _, ok := reflect.TypeFor[Config]().FieldByName(k); !ok {
			t.Errorf("usage for %s, which is no key", k)
		}
	}
}

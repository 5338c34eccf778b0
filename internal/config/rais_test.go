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
// Docker image sets it), with one warning for each key not implemented.
func TestRAISSampleFilesStart(t *testing.T) {
	for _, tc := range []struct {
		file  string
		warns []string // each warning, by the key it names
		check func(t *testing.T, c Config)
	}{
		{"testdata/rais2.toml", []string{"CapabilitiesFile", "Plugins", "S3Bucket", "S3Cache", "S3Zone"},
			func(t *testing.T, c Config) {
				if c.IIIFBaseURL != "http://images.example.org" || c.IIIFWebPath != "/images/iiif" {
					t.Errorf("IIIFURL read as base %q path %q", c.IIIFBaseURL, c.IIIFWebPath)
				}
				if c.UnversionedVersion != 2 || c.LogLevel != "DEBUG" || c.TileCacheLen != 0 {
					t.Errorf("cfg %+v", c)
				}
			}},
		{"testdata/rais3.toml", []string{"AdminToken", "CapabilitiesFile", "DatadogAddress", "DatadogServiceName",
			"MaxTraces", "Plugins", "S3Cache", "S3Endpoint", "S3Zone", "TraceFlushMinutes", "TracerOutputDirectory"},
			func(t *testing.T, c Config) {
				if c.AdminAddress != ":12416" || c.AdminToken != "" || c.IIIFWebPath != "/iiif" || c.IIIFBaseURL != "" {
					t.Errorf("cfg %+v", c)
				}
			}},
		{"testdata/rais4.toml", []string{"AdminToken", "CapabilitiesFile", "S3Cache", "S3DisableSSL", "S3Endpoint",
			"S3ForcePathStyle", "S3Zone"},
			func(t *testing.T, c Config) {
				if c.IIIFBaseURL != "https://images.example.org" || c.IIIFWebPath != "/images/iiif" || c.TileCacheLen != 500 {
					t.Errorf("cfg %+v", c)
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

// TestRAISSettingsInTheEnvironmentAndFlagsWarn: RAIS's own environment
// names for its plugin switches and its flags for keys we do not implement
// warn by name instead of failing; IIIFURL works there too. RAIS's S3
// variables (RAIS_S3_ENDPOINT) are read by internal/s3conf: no warning.
func TestRAISSettingsInTheEnvironmentAndFlagsWarn(t *testing.T) {
	env := []string{"RAIS_TILEPATH=" + t.TempDir(), "RAIS_PLUGINS=*.so", "RAIS_S3_ENDPOINT=minio:9000",
		"RAIS_ALLOW_INSECURE_PLUGINS=1", "RAIS_IIIFURL=https://x.example/iiif"}
	cfg, warns, err := Load("", env, []string{"--plugins", "datadog.so", "--capabilities-file=/etc/cap.toml"})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(warns, "\n")
	if strings.Contains(all, "RAIS_S3_ENDPOINT") {
		t.Errorf("RAIS_S3_ENDPOINT, read for S3, warned:\n%s", all)
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
	for k := range usages {
		if _, ok := reflect.TypeFor[Config]().FieldByName(k); !ok {
			t.Errorf("usage for %s, which is no key", k)
		}
	}
}

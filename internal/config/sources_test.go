package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSettingsSayWhereEachValueCameFrom: a key set by the file names its
// line; the environment overrides the file and a flag both; a key nobody
// set is a default; keys computed from others say so; secrets are masked.
func TestSettingsSayWhereEachValueCameFrom(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rais.toml")
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	toml := `# a site's configuration
TilePath = "` + dir + `"
JPGQuality = 90
logLevel = "debug"
IIIFURL = "https://example.org/images/iiif"
AdminTokenFile = "` + token + `"
Tiers.Info.Revalidate = "2h"

[Tiers.Tile]
  MaxBytes = "1GB"
`
	if err := os.WriteFile(file, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"RAIS_JPGQUALITY=80", "RAIS_LOGLEVEL=WARN", "HOME=/root"}
	cfg, src, _, err := LoadSources(file, env, []string{"-log-level", "ERROR", "-fallbacks=.jpg,.png"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Setting{}
	for _, s := range Settings(cfg, src) {
		got[s.Key] = s
	}
	for key, want := range map[string]Setting{
		"TilePath":              {Value: dir, Source: Source{FromFile, file + ":2"}},
		"JPGQuality":            {Value: "80", Source: Source{FromEnvironment, "RAIS_JPGQUALITY"}},
		"LogLevel":              {Value: "ERROR", Source: Source{FromFlag, "-log-level"}},
		"Fallbacks":             {Value: ".jpg,.png", Source: Source{FromFlag, "-fallbacks"}},
		"Address":               {Value: ":12415", Source: Source{Kind: FromDefault}},
		"Tiers.Tile.MaxBytes":   {Value: "1GB", Source: Source{FromFile, file + ":10"}},
		"Tiers.Info.Revalidate": {Value: "2h0m0s", Source: Source{FromFile, file + ":7"}},
		"Tiers.Tile.Revalidate": {Value: "24h0m0s", Source: Source{Kind: FromDefault}},
		"IIIFWebPath":           {Value: "/images/iiif", Source: Source{FromDerived, "IIIFURL (file " + file + ":5)"}},
		"AdminToken":            {Value: "(set)", Source: Source{FromDerived, "AdminTokenFile " + token}},
		"SigningKeys":           {Value: "", Source: Source{Kind: FromDefault}},
	} {
		if g := got[key]; g.Value != want.Value || g.Source != want.Source {
			t.Errorf("%s = %q from %q, want %q from %q", key, g.Value, g.Source, want.Value, want.Source)
		}
	}
	if len(got) != len(Settings(Default(), nil)) {
		t.Errorf("%d settings, want every key", len(got))
	}
	// Load says the same as LoadSources.
	plain, _, _ := Load(file, env, []string{"-log-level", "ERROR", "-fallbacks=.jpg,.png"})
	if d := Diff(plain, cfg); len(d) != 0 {
		t.Errorf("Load and LoadSources differ in %v", d)
	}
}

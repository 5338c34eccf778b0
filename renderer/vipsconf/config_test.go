package vipsconf

import (
	"runtime"
	"strings"
	"testing"
)

func TestDefaultIsValidAndWhatZeroFieldsTake(t *testing.T) {
	dir := t.TempDir()
	d := Default()
	d.TilePath = dir
	if err := d.Validate(); err != nil {
		t.Fatalf("Default fails its own checks: %v", err)
	}
	z := Config{TilePath: dir}.WithDefaults()
	// Zero fields take Default's values; Limits and TilePassthrough keep
	// their zero (no limit; off), and the workers are resolved.
	d.Limits, d.TilePassthrough = z.Limits, false
	d.Concurrency, d.QueueLen = runtime.GOMAXPROCS(0), 8*runtime.GOMAXPROCS(0)
	if z != d {
		t.Errorf("WithDefaults of the zero Config =\n%+v\nwant\n%+v", z, d)
	}
	if err := z.Validate(); err != nil {
		t.Errorf("the zero Config with its defaults fails: %v", err)
	}
	if q := (Config{QueueLen: -1, Concurrency: 2}).WithDefaults().QueueLen; q != 0 {
		t.Errorf("QueueLen -1 → %d, want 0 (no queue)", q)
	}
}

func TestValidateBoundsAndMessages(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want string // "" means valid
	}{
		{"smallest untiled tile", func(c *Config) { c.UntiledTileSize = MinUntiledTileSize }, ""},
		{"largest untiled tile", func(c *Config) { c.UntiledTileSize = MaxUntiledTileSize }, ""},
		{"untiled tile too small", func(c *Config) { c.UntiledTileSize = MinUntiledTileSize - 1 }, "UntiledTileSize: 15 must be between 16 and 4096"},
		{"untiled tile too large", func(c *Config) { c.UntiledTileSize = 4097 }, "UntiledTileSize: 4097 must be between 16 and 4096"},
		{"quality 0", func(c *Config) { c.JPGQuality = 0 }, "JPGQuality: 0 must be between 1 and 100"},
		{"quality 101", func(c *Config) { c.JPGQuality = 101 }, "JPGQuality: 101 must be between 1 and 100"},
		{"no queue", func(c *Config) { c.QueueLen = -1 }, ""},
		{"bad queue", func(c *Config) { c.QueueLen = -2 }, "RenderQueueLen: -2"},
		{"negative workers", func(c *Config) { c.Concurrency = -1 }, "RenderConcurrency: -1 must be >= 0"},
		{"negative limit", func(c *Config) { c.Limits.MaxArea = -1 }, "ImageMaxArea: -1 must be >= 0"},
		{"profiles", func(c *Config) { c.ColourProfiles = "keep" }, `ColourProfiles: "keep"`},
		{"no builds", func(c *Config) { c.PyramidBuilds = 0 }, "PyramidBuilds: 0 must be >= 1"},
		{"no limit on sources", func(c *Config) { c.MaxSourcePixels = -1 }, ""},
		{"missing directory", func(c *Config) { c.TilePath = dir + "/nope" }, "does not exist"},
		{"no directory", func(c *Config) { c.TilePath = "" }, "TilePath: must name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.TilePath = dir
			tc.set(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("rejected: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	// Every problem at once.
	err := Config{Concurrency: -1, JPGQuality: 200, UntiledTileSize: 1}.Validate()
	for _, key := range []string{"TilePath", "RenderConcurrency", "JPGQuality", "UntiledTileSize", "ColourProfiles", "PyramidBuilds"} {
		if err == nil || !strings.Contains(err.Error(), key+":") {
			t.Errorf("no %s in %v", key, err)
		}
	}
}

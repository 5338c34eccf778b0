package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/iiif-proxy/iiif-proxy/cache/cacheconf"
	"github.com/iiif-proxy/iiif-proxy/proxy/proxyconf"
	"github.com/iiif-proxy/iiif-proxy/purge"
	"github.com/iiif-proxy/iiif-proxy/renderer/upstream"
	"github.com/iiif-proxy/iiif-proxy/renderer/vipsconf"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/sources"
)

// TestDefaultsAreTheOwnersDefaults: what the adapter hands each owner from
// the built-in defaults is the owner's own Default, so the two cannot
// drift apart again (issue 12: UntiledTileSize's minimum and
// TilePassthrough's default once differed).
func TestDefaultsAreTheOwnersDefaults(t *testing.T) {
	def := Default()

	v := def.Vips()
	if v.TilePath != def.TilePath || v.S3 != nil {
		t.Errorf("Vips sources: %q %v", v.TilePath, v.S3)
	}
	// Where the pyramids go is the adapter's (CacheDir), not a default.
	if v.PyramidDir == "" || v.PyramidMinFreePercent != def.CacheMinFree.Percent {
		t.Errorf("pyramid tier not under CacheDir: %+v", v)
	}
	v.TilePath, v.PyramidDir, v.PyramidMinFreeBytes, v.PyramidMinFreePercent = "", "", 0, 0
	if want := vipsconf.Default(); !reflect.DeepEqual(v, want) {
		t.Errorf("Default().Vips() =\n%+v\nvipsconf.Default() =\n%+v", v, want)
	}
	if !def.TilePassthrough || def.UntiledTileSize != vipsconf.DefaultUntiledTileSize {
		t.Errorf("TilePassthrough %v, UntiledTileSize %d", def.TilePassthrough, def.UntiledTileSize)
	}

	u := def.Sidecar()
	if u.Limits != rules.DefaultLimits {
		t.Errorf("Sidecar limits %+v", u.Limits)
	}
	u.Limits = rules.Limits{}
	if want := upstream.Default(); !reflect.DeepEqual(u, want) {
		t.Errorf("Default().Sidecar() =\n%+v\nupstream.Default() =\n%+v", u, want)
	}

	if got, want := def.Classifier(), rules.DefaultClassifier(); !reflect.DeepEqual(got, want) {
		t.Errorf("Default().Classifier() = %+v, rules.DefaultClassifier() = %+v", got, want)
	}

	s := def.S3Sources()
	if s.MaxBytes != sources.DefaultMaxBytes || s.Timeout != sources.DefaultTimeout ||
		s.BreakerFailures != sources.DefaultBreakerFailures || s.BreakerCooldown != sources.DefaultBreakerCooldown {
		t.Errorf("Default().S3Sources() = %+v", s)
	}

	if got, want := def.Front(), proxyconf.Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Default().Front() = %+v, proxyconf.Default() = %+v", got, want)
	}

	for tr, got := range def.CacheTiers() {
		if want := cacheconf.DefaultTier(rules.Tier(tr)); got != want {
			t.Errorf("Default().CacheTiers()[%s] = %+v, cacheconf.DefaultTier = %+v", rules.Tier(tr), got, want)
		}
	}

	p := def.Purge()
	if p.QueueLen != purge.DefaultQueueLen || p.Attempts != purge.DefaultAttempts || p.Backoff != purge.DefaultBackoff ||
		p.Timeout != purge.DefaultTimeout {
		t.Errorf("Default().Purge() = %+v", p)
	}

	// And the defaults pass every owner's checks.
	def.TilePath = t.TempDir()
	def.Upstream = "http://127.0.0.1:8182/iiif/2"
	for name, err := range map[string]error{"vips": def.Vips().Validate(), "upstream": def.Sidecar().Validate(),
		"classifier": def.Classifier().Validate(), "purge": def.Purge().Validate(), "limits": def.Limits().Validate(),
		"front": def.Front().Validate(), "tile tier": def.CacheTiers()[rules.TierTile].Validate(rules.TierTile),
		"other tier": def.CacheTiers()[rules.TierOther].Validate(rules.TierOther)} {
		if err != nil {
			t.Errorf("%s: the defaults fail: %v", name, err)
		}
	}
}

// TestOwnersMessageOnce: one bad value per owner reports the owner's own
// message, once, with the key name the operator wrote.
func TestOwnersMessageOnce(t *testing.T) {
	dir := t.TempDir()
	side := "http://127.0.0.1:8182/iiif/2"
	withVips := func(f func(*vipsconf.Config)) error {
		c := vipsconf.Default()
		c.TilePath = dir
		f(&c)
		return c.Validate()
	}
	withUpstream := func(f func(*upstream.Config)) error {
		c := upstream.Default()
		c.URL = side
		f(&c)
		return c.Validate()
	}
	for _, tc := range []struct {
		name  string
		env   []string
		owner error // what the owner says of the same value
		key   string
	}{
		{"vips UntiledTileSize", []string{"RAIS_UNTILEDTILESIZE=8"},
			withVips(func(c *vipsconf.Config) { c.UntiledTileSize = 8 }), "UntiledTileSize"},
		{"vips JPGQuality", []string{"RAIS_JPGQUALITY=0"},
			withVips(func(c *vipsconf.Config) { c.JPGQuality = 0 }), "JPGQuality"},
		{"vips ColourProfiles", []string{"RAIS_COLOURPROFILES=keep"},
			withVips(func(c *vipsconf.Config) { c.ColourProfiles = "keep" }), "ColourProfiles"},
		{"vips PyramidBuilds", []string{"RAIS_PYRAMIDBUILDS=0"},
			withVips(func(c *vipsconf.Config) { c.PyramidBuilds = 0 }), "PyramidBuilds"},
		{"vips RenderQueueLen", []string{"RAIS_RENDERQUEUELEN=-2"},
			withVips(func(c *vipsconf.Config) { c.QueueLen = -2 }), "RenderQueueLen"},
		{"vips TilePath", []string{"RAIS_TILEPATH=" + dir + "/nope"},
			func() error { c := vipsconf.Default(); c.TilePath = dir + "/nope"; return c.Validate() }(), "TilePath"},
		// Both renderers check the limits; in sidecar mode both are asked.
		{"limits, sidecar", []string{"RAIS_UPSTREAM=" + side, "RAIS_IMAGEMAXWIDTH=-5"},
			rules.Limits{MaxWidth: -5}.Validate(), "ImageMaxWidth"},
		{"limits", []string{"RAIS_IMAGEMAXWIDTH=-5"}, rules.Limits{MaxWidth: -5}.Validate(), "ImageMaxWidth"},
		{"upstream MaxConns", []string{"RAIS_UPSTREAM=" + side, "RAIS_UPSTREAMMAXCONNS=0"},
			withUpstream(func(c *upstream.Config) { c.MaxConns = 0 }), "UpstreamMaxConns"},
		{"upstream URL", []string{"RAIS_UPSTREAM=ftp://x"},
			withUpstream(func(c *upstream.Config) { c.URL = "ftp://x" }), "Upstream"},
		{"classifier", []string{"RAIS_TIERS_TILE_MAXSIZE=0"},
			func() error { c := rules.DefaultClassifier(); c.TileMaxSize = 0; return c.Validate() }(), "Tiers.Tile.MaxSize"},
		{"sources", []string{"RAIS_TILEPATH=s3://bucket?x=1", "RAIS_CACHEDIR=" + dir},
			sources.Config{URL: "s3://bucket?x=1", Dir: dir}.Validate(), "TilePath"},
		{"front WriteTimeout", []string{"RAIS_WRITETIMEOUT=0s"},
			func() error { c := proxyconf.Default(); c.WriteTimeout = 0; return c.Validate() }(), "WriteTimeout"},
		{"front signing key", []string{"RAIS_SIGNINGKEYS=short"},
			proxyconf.CheckSigning(nil, []string{"short"}), "SigningKeys"},
		{"front IIIFWebPath", []string{"RAIS_IIIFWEBPATH=iiif", "RAIS_PURGEFORWARD=ban http://127.0.0.1:6081"},
			proxyconf.CheckWebPath("iiif"), "IIIFWebPath"},
		{"tier CacheControl", []string{"RAIS_TIERS_INFO_CACHECONTROL=a\nb"},
			func() error {
				c := cacheconf.DefaultTier(rules.TierInfo)
				c.CacheControl = "a\nb"
				return c.Validate(rules.TierInfo)
			}(), "Tiers.Info.CacheControl"},
		{"purge", []string{"RAIS_PURGEFORWARD=bogus"},
			purge.Config{Targets: []string{"bogus"}}.Validate(), "PurgeForward"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.owner == nil {
				t.Fatal("the owner accepts the bad value")
			}
			want := tc.owner.Error()
			if strings.Contains(want, "\n") || !strings.HasPrefix(want, tc.key+":") {
				t.Fatalf("owner's message %q: want one line starting %s:", want, tc.key)
			}
			env := tc.env
			if !slices.ContainsFunc(env, func(s string) bool { return strings.HasPrefix(s, "RAIS_TILEPATH=") }) {
				env = append(env, "RAIS_TILEPATH="+dir)
			}
			_, _, err := Load("", env, nil)
			if err == nil {
				t.Fatal("accepted")
			}
			got := strings.Split(err.Error(), "\n")
			if n := slices.Index(got, want); n < 0 || slices.Index(got[n+1:], want) >= 0 {
				t.Errorf("want %q once in:\n%s", want, err)
			}
		})
	}
}

// TestTiersInOneOrder: the tiers are iterated in rules' order, each with
// its own settings, and the problems of a file come out in the same order
// every time.
func TestTiersInOneOrder(t *testing.T) {
	var ts Tiers
	ts.Tile.MaxBytes, ts.Thumbnail.MaxBytes, ts.Info.MaxBytes, ts.Other.MaxBytes = 1, 2, 3, 4
	var order []rules.Tier
	for tier, tc := range ts.All() {
		order = append(order, tier)
		if tc.MaxBytes != ByteSize(tier)+1 {
			t.Errorf("tier %s has the settings of another: %+v", tier, tc)
		}
	}
	if !slices.Equal(order, []rules.Tier{rules.TierTile, rules.TierThumbnail, rules.TierInfo, rules.TierOther}) {
		t.Errorf("order %v", order)
	}
	f := write(t, `TilePath = "`+t.TempDir()+`"
[Tiers.Tile]
Formats = ["bmp"]
CacheControl = "a\nb"
[Tiers.Thumbnail]
Formats = ["bmp"]
MaxSize = 0
[Tiers.Info]
MaxSize = 10
CacheControl = "a\nb"
[Tiers.Other]
Formats = ["png"]
CacheControl = "a\nb"
`)
	var first string
	for i := range 20 {
		_, _, err := Load(f, nil, nil)
		if err == nil {
			t.Fatal("accepted")
		}
		if i == 0 {
			first = err.Error()
			if n := strings.Count(first, "\n") + 1; n != 8 {
				t.Errorf("%d problems, want 8:\n%s", n, first)
			}
		} else if err.Error() != first {
			t.Fatalf("load %d listed the problems in another order:\n%s\nfirst:\n%s", i, err, first)
		}
	}
}

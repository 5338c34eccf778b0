//go:build cgo

package proxy

import (
	"strings"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/rules"
)

// Reload changes the live settings under traffic: the next response has
// them, and it reports each change once.
func TestReloadAppliesLiveSettings(t *testing.T) {
	cp := serveCached(t, tilePath, 0, "")
	tile := cp.base + "pattern.tif/0,0,256,256/256,/0/default.jpg"
	if r := get(t, tile); r.header.Get("Cache-Control") != "public, max-age=tile" {
		t.Fatalf("before: Cache-Control %q", r.header.Get("Cache-Control"))
	}
	cfg := cp.p.cfg
	for i := range cfg.Tiers {
		cfg.Tiers[i] = *cp.p.cache.Tier(rules.Tier(i)).Conf()
	}
	cfg.Tiers[rules.TierTile].CacheControl = "public, max-age=60"
	cfg.Tiers[rules.TierTile].MaxEntryBytes = 1 << 20
	cfg.MaxInFlightBytes = 64 << 20
	cfg.RenderWait = 5 * time.Second
	applied := cp.p.Reload(cfg)
	if got := strings.Join(applied, "\n"); !strings.Contains(got, "Tiers.tile") || !strings.Contains(got, "MaxInFlightBytes") ||
		!strings.Contains(got, "RenderWait=5s") || strings.Contains(got, "Tiers.info") {
		t.Errorf("applied:\n%s", got)
	}
	if r := get(t, tile); r.header.Get("Cache-Control") != "public, max-age=60" || r.header.Get("X-Cache") != xHit {
		t.Errorf("after: Cache-Control %q X-Cache %s", r.header.Get("Cache-Control"), r.header.Get("X-Cache"))
	}
	if s := cp.p.Stats(); s.InFlight.Limit != 64<<20 || s.Tiers["tile"].MaxEntryBytes != 1<<20 {
		t.Errorf("stats after reload: %+v %d", s.InFlight, s.Tiers["tile"].MaxEntryBytes)
	}
	if again := cp.p.Reload(cfg); len(again) != 0 {
		t.Errorf("an unchanged reload applied %q", again)
	}
}

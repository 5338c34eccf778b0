// Package cacheconf is the cache's own settings: each tier's (Tier: its
// budget and retention on disk, and the Policy the cache serves it by) with
// their defaults (DefaultTier) and checks (Tier.Validate), and the cache's
// render timeouts' defaults. It holds no store and imports neither Pebble
// nor cgo, so that the configuration package (internal/config) and
// proxy/proxyconf take these values from their one owner, as
// renderer/vipsconf does for the renderer; package cache embeds Policy in
// its TierConfig.
package cacheconf

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/iiif-proxy/iiif-proxy/rules"
)

// Defaults of cache.Config's timeouts (also the front's, proxyconf).
const (
	// DefaultRenderTimeout bounds one fill: a render, queueing included.
	DefaultRenderTimeout = 60 * time.Second
	// DefaultRenderWait bounds how long a request waits for a fill another
	// request started.
	DefaultRenderWait = 30 * time.Second
)

// Policy is how the cache serves a tier's entries; it may change while
// serving (cache.SetTierConfig).
type Policy struct {
	// Revalidate is the age after which an entry's source is checked before
	// the entry is served. Zero means never.
	Revalidate time.Duration
	// CacheControl is sent with the tier's responses (by the proxy). Empty
	// means none.
	CacheControl string
	// MaxEntryBytes is the largest response the tier stores, on disk and in
	// memory; larger ones are served but not stored (and counted). Zero
	// means no bound beyond the store's own budget.
	MaxEntryBytes int64
}

// Tier is one cache tier's settings as an operator writes them
// (Tiers.<Name>.<Field> in the configuration).
type Tier struct {
	// Enabled caches the tier's responses; false serves them uncached.
	Enabled bool
	// MaxBytes is the tier's budget on disk (store.Config). Zero means no
	// budget.
	MaxBytes int64
	// Retention drops entries not read for this long (store.Config). Zero
	// keeps them until the budget evicts them.
	Retention time.Duration
	Policy
}

// DefaultTier returns tier t's defaults: budgets that add up to 28 GB,
// tiles and thumbnails revalidated daily (their sources rarely change, and
// a check costs a stat), info.json and the rest hourly; each MaxEntryBytes
// a little above the largest response the tier sees under the default
// image limits (other's 256 MB: the largest PNG they allow is about
// 180 MB).
func DefaultTier(t rules.Tier) Tier {
	switch t {
	case rules.TierTile:
		return Tier{Enabled: true, MaxBytes: 20 << 30, Retention: 4320 * time.Hour,
			Policy: Policy{Revalidate: 24 * time.Hour, CacheControl: "public, max-age=86400", MaxEntryBytes: 4 << 20}}
	case rules.TierThumbnail:
		return Tier{Enabled: true, MaxBytes: 5 << 30, Retention: 8760 * time.Hour,
			Policy: Policy{Revalidate: 24 * time.Hour, CacheControl: "public, max-age=604800", MaxEntryBytes: 16 << 20}}
	case rules.TierInfo:
		return Tier{Enabled: true, MaxBytes: 1 << 30, Retention: 8760 * time.Hour,
			Policy: Policy{Revalidate: time.Hour, CacheControl: "public, max-age=3600", MaxEntryBytes: 1 << 20}}
	default:
		return Tier{Enabled: true, MaxBytes: 2 << 30, Retention: 168 * time.Hour,
			Policy: Policy{Revalidate: time.Hour, CacheControl: "public, max-age=3600", MaxEntryBytes: 256 << 20}}
	}
}

// Key is tier t's table in the configuration: "Tiers.Tile", "Tiers.Thumbnail", ….
func Key(t rules.Tier) string {
	s := t.String()
	return "Tiers." + strings.ToUpper(s[:1]) + s[1:]
}

// Validate reports every problem with tier t's settings c at once, each
// message starting with the key the operator writes ("Tiers.Tile.MaxBytes: …").
func (c Tier) Validate(t rules.Tier) error {
	key := Key(t)
	var errs []error
	for _, n := range []struct {
		field string
		neg   bool
	}{{"MaxBytes", c.MaxBytes < 0}, {"Retention", c.Retention < 0}, {"Revalidate", c.Revalidate < 0},
		{"MaxEntryBytes", c.MaxEntryBytes < 0}} {
		if n.neg {
			errs = append(errs, fmt.Errorf("%s.%s: must be >= 0", key, n.field))
		}
	}
	// A header value of two lines would split the response.
	if strings.ContainsAny(c.CacheControl, "\r\n") {
		errs = append(errs, fmt.Errorf("%s.CacheControl: must be one line", key))
	}
	return errors.Join(errs...)
}

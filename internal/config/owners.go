package config

import (
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"slices"
	"strings"

	"github.com/iiif-proxy/iiif-proxy/cache/cacheconf"
	"github.com/iiif-proxy/iiif-proxy/proxy/proxyconf"
	"github.com/iiif-proxy/iiif-proxy/renderer/upstream"
	"github.com/iiif-proxy/iiif-proxy/renderer/vipsconf"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/sources"
)

// One owner per setting: each part's own Config carries its defaults and
// its checks (the libvips renderer's in renderer/vipsconf, the IIIF
// front's in proxy/proxyconf, the sidecar client's in renderer/upstream,
// S3 sources' in sources, the cache tiers' in cache/cacheconf, the tiers'
// classifier in rules, the purge forwarder's in purge). Default takes its
// values from them and validate calls their Validate, so a default or a
// bound is written once. The methods below are the adapter from the keys
// onto those Configs; what stays in this package is only what the keys
// themselves mean: a key whose zero means something else to its owner
// ("MaxSourcePixels = 0" is no limit; the renderer's 0 is its default),
// and how the keys are laid out (MaxSize only on two tiers).

// Limits are the output limits (ImageMaxArea, ImageMaxWidth,
// ImageMaxHeight; 0: no limit), as both renderers take them.
func (c Config) Limits() rules.Limits {
	return rules.Limits{MaxArea: c.ImageMaxArea, MaxWidth: c.ImageMaxWidth, MaxHeight: c.ImageMaxHeight}
}

// Vips is the libvips renderer's configuration, without its Logger; for
// TilePath "s3://…" its S3 is S3Sources (without Region and Logger).
func (c Config) Vips() vipsconf.Config {
	v := vipsconf.Default() // the settings no key names keep their defaults
	v.Concurrency, v.QueueLen = c.RenderConcurrency, c.RenderQueueLen
	v.JPGQuality, v.Limits, v.MaxSourcePixels = c.JPGQuality, c.Limits(), c.MaxSourcePixels
	v.UntiledTileSize, v.TilePassthrough, v.ColourProfiles = c.UntiledTileSize, c.TilePassthrough, c.ColourProfiles
	v.PyramidMinPixels, v.PyramidMaxBytes, v.PyramidBuilds = c.PyramidMinPixels, int64(c.PyramidMaxBytes), c.PyramidBuilds
	if v.MaxSourcePixels == 0 {
		v.MaxSourcePixels = -1 // the key's "no limit" (the renderer's 0 is its default)
	}
	if sources.IsS3(c.TilePath) {
		v.S3 = c.S3Sources()
	} else {
		v.TilePath = c.TilePath
	}
	if c.CacheDir != "" && c.PyramidMinPixels > 0 {
		// The pyramid tier: files under CacheDir, beside the tiers'
		// databases, kept to the same free-space minimum.
		v.PyramidDir = filepath.Join(c.CacheDir, "pyramid")
		v.PyramidMaxBytes = max(v.PyramidMaxBytes, 1) // "0": nothing fits (the renderer's 0 is its default)
		v.PyramidMinFreeBytes = c.CacheMinFree.Bytes
		v.PyramidMinFreePercent = c.CacheMinFree.Percent
	} else if v.PyramidMinPixels == 0 {
		v.PyramidMinPixels = -1 // the key's "no automatic pyramids"
	}
	return v
}

// S3Sources is the S3 source store of TilePath "s3://bucket/prefix", its
// cache beside the tiers and kept to the same free-space minimum; Region
// (AWS_REGION) and Logger are the caller's.
func (c Config) S3Sources() *sources.Config {
	return &sources.Config{
		URL:             c.TilePath,
		Endpoint:        c.S3Endpoint,
		DisableSSL:      c.S3DisableSSL,
		ForcePathStyle:  c.S3ForcePathStyle,
		Dir:             c.SourceCache(),
		MaxBytes:        int64(c.SourceCacheMaxBytes),
		MinFreeBytes:    c.CacheMinFree.Bytes,
		MinFreePercent:  c.CacheMinFree.Percent,
		Timeout:         c.S3Timeout.Std(),
		BreakerFailures: c.S3BreakerFailures,
		BreakerCooldown: c.S3BreakerCooldown.Std(),
	}
}

// Sidecar is the upstream client's configuration (Upstream…), for sidecar
// mode.
func (c Config) Sidecar() upstream.Config {
	d := upstream.Default()
	d.URL = c.Upstream
	d.Timeout = c.UpstreamTimeout.Std()
	d.ConnectTimeout = c.UpstreamConnectTimeout.Std()
	d.MaxConns = c.UpstreamMaxConns
	d.NotFoundTTL = c.UpstreamNotFoundTTL.Std()
	if d.NotFoundTTL == 0 {
		d.NotFoundTTL = -1 // the key's "not at all" (the client's 0 is its default)
	}
	d.Limits = c.Limits()
	return d
}

// Front is the IIIF front's own settings (package proxy): web path, base
// URL, timeouts, the in-flight budget, trusted proxies, signing.
func (c Config) Front() proxyconf.Config {
	return proxyconf.Config{
		WebPath: c.IIIFWebPath, BaseURL: c.IIIFBaseURL,
		RenderTimeout: c.RenderTimeout.Std(), RenderWait: c.RenderWait.Std(), WriteTimeout: c.WriteTimeout.Std(),
		MaxInFlightBytes: int64(c.MaxInFlightBytes), StaleWhileRevalidate: c.StaleWhileRevalidate.Std(),
		TrustedProxies: c.TrustedProxies, SignedPrefixes: c.SignedPrefixes, SigningKeys: c.SigningKeys,
	}
}

// Classifier sorts requests into the tiers (Tiers.Tile and
// Tiers.Thumbnail's MaxSize and Formats).
func (c Config) Classifier() rules.Classifier {
	return rules.Classifier{
		TileMaxSize: c.Tiers.Tile.MaxSize, TileFormats: formats(c.Tiers.Tile.Formats),
		ThumbnailMaxSize: c.Tiers.Thumbnail.MaxSize, ThumbnailFormats: formats(c.Tiers.Thumbnail.Formats),
	}
}

// CacheTiers is each cache tier's own settings (package cache/cacheconf:
// Enabled, MaxBytes, Retention and the Policy the cache serves it by),
// indexed by rules.Tier. MaxSize and Formats are the classifier's
// (Classifier).
func (c Config) CacheTiers() [rules.NumTiers]cacheconf.Tier {
	var out [rules.NumTiers]cacheconf.Tier
	for t, tc := range c.Tiers.All() {
		out[t] = cacheconf.Tier{Enabled: tc.Enabled, MaxBytes: int64(tc.MaxBytes), Retention: tc.Retention.Std(),
			Policy: cacheconf.Policy{Revalidate: tc.Revalidate.Std(), CacheControl: tc.CacheControl,
				MaxEntryBytes: int64(tc.MaxEntryBytes)}}
	}
	return out
}

// tierDefault is tier t's default keys: the cache's defaults
// (cacheconf.DefaultTier) and the classifier's maxSize and formats.
func tierDefault(t rules.Tier, maxSize int, fs []rules.Format) Tier {
	d := cacheconf.DefaultTier(t)
	tc := Tier{Enabled: d.Enabled, MaxBytes: ByteSize(d.MaxBytes), Retention: Duration(d.Retention),
		Revalidate: Duration(d.Revalidate), CacheControl: d.CacheControl, MaxEntryBytes: ByteSize(d.MaxEntryBytes),
		MaxSize: maxSize}
	if fs != nil {
		tc.Formats = extensions(fs)
	}
	return tc
}

// ByTier returns the tiers' settings indexed by rules.Tier, so that every
// loop over them runs in rules' one fixed order (tile, thumbnail, info,
// other).
func (t Tiers) ByTier() [rules.NumTiers]Tier {
	var out [rules.NumTiers]Tier
	out[rules.TierTile], out[rules.TierThumbnail], out[rules.TierInfo], out[rules.TierOther] = t.Tile, t.Thumbnail, t.Info, t.Other
	return out
}

// All yields each tier's settings in rules' fixed order (tile, thumbnail,
// info, other): a loop over the tiers never depends on a map's order.
func (t Tiers) All() iter.Seq2[rules.Tier, Tier] {
	return func(yield func(rules.Tier, Tier) bool) {
		for i, tc := range t.ByTier() {
			if !yield(rules.Tier(i), tc) {
				return
			}
		}
	}
}

// formats are exts as rules' formats; nil stays nil (the classifier's
// default), unknown names are left out (validate reports them).
func formats(exts []string) []rules.Format {
	if exts == nil {
		return nil
	}
	out := []rules.Format{}
	for _, e := range exts {
		if f, ok := rules.ParseFormat(e); ok {
			out = append(out, f)
		}
	}
	return out
}

func extensions(fs []rules.Format) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Ext()
	}
	return out
}

// validateOwners asks each owner to check its settings, and checks what
// only the keys know; one error per problem.
func (c Config) validateOwners() []error {
	var errs []error
	v := c.Vips()
	switch {
	case c.Upstream != "":
		// Sidecar mode: the upstream has the images; the renderer's
		// settings are still checked, so a file is valid in either mode.
		errs = append(errs, lines(c.Sidecar().Validate())...)
		errs = append(errs, lines(v.ValidateSettings())...)
	case c.TilePath == "":
		errs = append(errs, errors.New("TilePath: required: the directory of source images (env RAIS_TILEPATH, flag -tile-path), or Upstream for sidecar mode"))
		errs = append(errs, lines(v.ValidateSettings())...)
	default:
		errs = append(errs, lines(v.Validate())...)
	}
	if sources.IsS3(c.TilePath) && c.Upstream == "" {
		// The store's zero is its default; the key's zero is a mistake.
		for _, z := range []struct {
			key  string
			zero bool
		}{{"SourceCacheMaxBytes", c.SourceCacheMaxBytes == 0}, {"S3Timeout", c.S3Timeout == 0},
			{"S3BreakerCooldown", c.S3BreakerCooldown == 0}, {"S3BreakerFailures", c.S3BreakerFailures == 0}} {
			if z.zero {
				errs = append(errs, fmt.Errorf("%s: must be > 0 for S3 sources", z.key))
			}
		}
	}
	for _, n := range []struct {
		key string
		n   int64
	}{{"MaxSourcePixels", c.MaxSourcePixels}, {"PyramidMinPixels", c.PyramidMinPixels}} {
		if n.n < 0 { // the key's 0 is "none"; its owner's negatives are
			errs = append(errs, fmt.Errorf("%s: %d must be >= 0 (0: none)", n.key, n.n))
		}
	}
	errs = append(errs, lines(c.Classifier().Validate())...)
	names := rules.FormatNames()
	cached := c.CacheTiers()
	for t, tc := range c.Tiers.All() {
		key := cacheconf.Key(t)
		switch t {
		case rules.TierInfo, rules.TierOther:
			if tc.MaxSize != 0 || len(tc.Formats) != 0 {
				errs = append(errs, fmt.Errorf("%s: MaxSize and Formats only apply to the Tile and Thumbnail tiers", key))
			}
		default:
			for _, f := range tc.Formats {
				if !slices.Contains(names, f) {
					errs = append(errs, fmt.Errorf("%s.Formats: %q is not one of %s", key, f, strings.Join(names, ", ")))
				}
			}
		}
		errs = append(errs, lines(cached[t].Validate(t))...)
	}
	return errs
}

// lines flattens an owner's joined errors into one error per problem, so
// they sort with the rest, one a line.
func lines(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, lines(e)...)
		}
		return out
	}
	return []error{err}
}

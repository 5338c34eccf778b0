// Package config loads iiif-proxy's configuration in RAIS's style: built-in
// defaults, then a TOML file (conf/rais.toml), then RAIS_* environment
// variables, then command-line flags. A site's existing rais.toml starts as
// it is: RAIS keys we do not implement are accepted with a warning naming
// each; keys nobody knows and bad values fail, all listed in one error.
//
// Every key's environment name is RAIS_ and the key upper-cased, nested
// tables joined by "_" (Tiers.Tile.MaxBytes → RAIS_TIERS_TILE_MAXBYTES).
//
// The package is the adapter from those keys onto each part's own Config
// (owners.go: Vips, Front, Sidecar, S3Sources, Classifier, Purge): the
// defaults and checks of those settings are their owners', written once.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iiif-proxy/iiif-proxy/internal/s3conf"
	"github.com/iiif-proxy/iiif-proxy/proxy/proxyconf"
	"github.com/iiif-proxy/iiif-proxy/purge"
	"github.com/iiif-proxy/iiif-proxy/renderer/fallback"
	"github.com/iiif-proxy/iiif-proxy/renderer/upstream"
	"github.com/iiif-proxy/iiif-proxy/renderer/vipsconf"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/sources"
)

// Config is the whole configuration. Field names are the TOML keys.
type Config struct {
	// Address is where the IIIF service listens (RAIS). Default ":12415".
	Address string
	// AdminAddress is where the admin endpoints listen (RAIS). Default
	// "127.0.0.1:12416" (RAIS listens on all interfaces; we keep admin on
	// loopback unless told otherwise).
	AdminAddress string
	// LogFormat is the log's format: "text" (key=value lines) or "json"
	// (one object a line, for a log collector). Default "text".
	LogFormat string
	// AccessLog logs one INFO line per request (client, method, path,
	// status, bytes, duration, cache status, tier). Default false, which
	// keeps only the lines of requests that failed (status 400 or more):
	// at full load, successful requests' lines cost about a fifth of the
	// warm-hit throughput and 8 MB of log a second.
	AccessLog bool
	// AccessLogErrorRate is the most access-log lines per second for
	// requests that failed, so that a flood of 404s cannot fill the disk;
	// past it lines are dropped and the next one logged counts them
	// ("suppressed"). Default 100; 0 means no bound.
	AccessLogErrorRate int
	// LogLevel is DEBUG, INFO, WARN, ERROR or CRIT (RAIS). Default "INFO".
	LogLevel string
	// TilePath is the directory of source images (RAIS). Required; the
	// shipped conf/rais.toml points it at ./samples. "s3://bucket/prefix"
	// reads them from an S3 bucket instead (see the S3 keys below).
	TilePath string
	// IIIFWebPath is the path prefix of the IIIF service (RAIS). Default
	// "/iiif": 3.0 at /iiif/3/{id}/…, 2.1 at /iiif/2/{id}/….
	IIIFWebPath string
	// UnversionedVersion is the IIIF Image API version that URLs without a
	// version segment speak ({IIIFWebPath}/{id}/…, RAIS's own form, which
	// every manifest a RAIS site published points at): 2 (2.1, as RAIS),
	// 3, or 0 to serve only /2/ and /3/. Default 2.
	UnversionedVersion int
	// IIIFBaseURL is the public scheme://host[:port] for ids in info.json
	// and Link headers (RAIS). Empty: taken from each request.
	IIIFBaseURL string
	// IIIFURL is RAIS 2's one key for the public URL of the IIIF service,
	// e.g. "http://example.org/images/iiif": when set, it is read as
	// IIIFBaseURL ("http://example.org") and IIIFWebPath ("/images/iiif"),
	// which must not then say otherwise. Default "": RAIS 3's two keys.
	IIIFURL string
	// InfoCacheLen is how many sources' info stay in memory (RAIS).
	// Default 10000; 0 turns it off.
	InfoCacheLen int
	// TileCacheLen is how many tiles stay in memory in front of the disk
	// tier (RAIS's meaning). Default 1000 (about 20 MB; RAIS's default is
	// 0, which a site's rais.toml that says so keeps); 0 turns it off.
	TileCacheLen int
	// JPGQuality is the JPEG and WebP quality, 1–100 (RAIS). Default 75.
	JPGQuality int
	// ImageMaxArea is the most pixels one response may have (RAIS).
	// Default 104857600 (100 megapixels); 0 means no limit.
	ImageMaxArea int64
	// ImageMaxWidth is the widest response (RAIS). Default 20480; 0 = no limit.
	ImageMaxWidth int
	// ImageMaxHeight is the tallest response (RAIS). Default 20480; 0 = no limit.
	ImageMaxHeight int
	// MaxSourcePixels is the most pixels a render may decode from a source
	// with no tiles (plain JPEG, PNG, WebP, GIF, stripped TIFF, one-tile
	// JPEG 2000), counted at the pyramid level or JPEG shrink it reads;
	// such a decode goes through every pixel whatever the request. Requests
	// over it get 422 before anything is decoded. Default 1073741824 (1
	// gigapixel); 0 means no limit.
	MaxSourcePixels int64

	// RenderConcurrency is how many renders run at once. Default 0 = one per core.
	RenderConcurrency int
	// RenderQueueLen is how many renders may wait; more get 503 with
	// Retry-After. Default 0 = 8 per worker; -1 = no queue.
	RenderQueueLen int
	// RenderTimeout bounds a request's wait for its render. Default "60s".
	RenderTimeout Duration
	// VipsConcurrency is libvips' threads per render. Default 1.
	VipsConcurrency int
	// UntiledTileSize is the tile size advertised for sources without
	// internal tiles (plain JPEG, PNG), 16 to 4096 (why:
	// vipsconf.MinUntiledTileSize). Default 1024.
	UntiledTileSize int
	// TilePassthrough serves a request for exactly one stored JPEG tile of a
	// pyramidal TIFF as stored, without decoding. Default true.
	TilePassthrough bool
	// ColourProfiles is what happens to a source's embedded ICC profile:
	// "convert" (to sRGB, no profile sent), "embed" (pixels as stored, the
	// profile written into the output) or "strip" (ignored). Default
	// "convert".
	ColourProfiles string
	// PyramidMinPixels is the size from which a flat source (plain JPEG,
	// PNG, WebP, stripped TIFF; 8-bit gray or RGB) gets an automatic tiled
	// pyramid, built in the background under CacheDir/pyramid, and
	// advertises 256-pixel tiles from the start. Default 33554432 (32
	// megapixels); 0 = no automatic pyramids.
	PyramidMinPixels int64
	// PyramidMaxBytes is the byte budget of the automatic pyramids; the
	// least recently used go first. Default "10GB".
	PyramidMaxBytes ByteSize
	// PyramidBuilds is how many pyramids are built at once, each in a child
	// process at the lowest CPU priority. Default 1.
	PyramidBuilds int

	// CacheDir holds one Pebble database per tier (CacheDir/tile, …).
	// Default: $CACHE_DIRECTORY when systemd set it (the unit's
	// CacheDirectory=, /var/cache/iiif-proxy), else "cache" (relative to
	// the working directory); "" turns the disk cache off.
	CacheDir string
	// CacheMinFree is the free space the cache file system must keep, as
	// nginx's proxy_cache_path min_free: a size ("1GB") or a percentage of
	// the file system ("5%"). Below it the tiers store nothing and evict
	// until it is back. Default "5%".
	CacheMinFree FreeSpace
	// AdminToken is the bearer token the admin endpoints require. "" means
	// none: on loopback every admin request is let in; on any other
	// AdminAddress (RAIS's ":12416") /metrics and /stats are served
	// read-only, as RAIS serves them, and purges are refused until a token
	// is set, with a warning at start.
	// Prefer AdminTokenFile or RAIS_ADMINTOKEN: a flag shows in ps.
	AdminToken string
	// AdminTokenFile is a file holding AdminToken (surrounding white space
	// trimmed), so the token shows neither in ps nor in this file. Default
	// "": none. Setting both is an error.
	AdminTokenFile string
	// RenderWait bounds how long a request waits for another request's
	// render of the same key (a collapsed miss) before it gets 503.
	// Default "30s".
	RenderWait Duration
	// MaxInFlightBytes bounds the bytes of response bodies being written to
	// clients at once ("512MB"). A body stays in memory until its client
	// has read it, so without a bound slow readers of large images pin
	// gigabytes; a response that would go over it gets 503 with
	// Retry-After. Default "512MB": room for two of the largest responses
	// the default image limits allow (a 100-megapixel PNG is about 180 MB)
	// beside thousands of tiles, and a quarter of a 2 GB machine. "0"
	// means no bound.
	MaxInFlightBytes ByteSize
	// WriteTimeout bounds how long writing one response may take; a client
	// that reads slower is cut off and its bytes released. Default "2m".
	WriteTimeout Duration
	// SignedPrefixes are identifier prefixes whose images are served only
	// to signed URLs ({IIIFWebPath}/signed/{expiry}.{mac}/3/{identifier}/…,
	// made by `iiif-proxy sign`); others get 403. "" protects every
	// image. Default none.
	SignedPrefixes []string
	// SigningKeys are the HMAC-SHA256 keys of signed URLs, at least 32
	// bytes each: the first signs, every one verifies, so a new key can be
	// put first while URLs signed with the old one still work. Prefer
	// SigningKeyFile or RAIS_SIGNINGKEYS. Default none.
	SigningKeys []string
	// SigningKeyFile is a file of signing keys, one a line (blank lines and
	// lines starting with # skipped), used instead of SigningKeys. Default "".
	SigningKeyFile string

	// Upstream switches to sidecar mode: instead of rendering with libvips,
	// iiif-proxy asks this existing IIIF server, "http://host:port/prefix"
	// (the prefix its images' ids start with, version included, e.g.
	// "http://127.0.0.1:8182/iiif/2"). TilePath is then not needed. Default
	// "": render in process.
	Upstream string
	// UpstreamTimeout bounds one request to the upstream, body included;
	// past it the client gets the stale entry or 504. Default "30s".
	UpstreamTimeout Duration
	// UpstreamConnectTimeout bounds connecting to the upstream. Default "2s".
	UpstreamConnectTimeout Duration
	// UpstreamMaxConns bounds the connections open to the upstream.
	// Default 64.
	UpstreamMaxConns int
	// UpstreamNotFoundTTL is how long the upstream's 404 for an identifier
	// is remembered, so requests for missing images do not each reach it;
	// likewise an info.json it answers 5xx or unusable. Default "10s";
	// "0s" means not at all.
	UpstreamNotFoundTTL Duration
	// TrustedProxies are the addresses or networks ("10.0.0.0/8",
	// "127.0.0.1") whose X-Forwarded-Proto and X-Forwarded-Host are
	// believed when ids are made from the request (IIIFBaseURL empty).
	// Default loopback ("127.0.0.0/8", "::1"); "" trusts nobody.
	TrustedProxies []string
	// StaleWhileRevalidate is how long past its tier's Revalidate an entry
	// is still served at once while one background request checks its
	// source (both modes). Default "0s": checked before serving.
	StaleWhileRevalidate Duration

	// Purge forwarding (issue 12): every purge, from the admin API or a
	// source found changed, passed on to the caches in front (purge
	// package).

	// PurgeForward are the caches in front that purges are passed on to,
	// each "KIND URL": "ban http://127.0.0.1:6081" (a BAN request, the regex
	// of every URL of the identifier in X-Ban-Url: Varnish), "purge URL"
	// (PURGE of each version form's info.json and base: nginx, Varnish),
	// "webhook URL" (a POST of JSON, for a CDN's invalidation API). A ban or
	// purge URL's path, if any, replaces IIIFWebPath in what is sent.
	// Default none.
	PurgeForward []string
	// PurgeForwardQueueLen bounds the requests waiting per target; more
	// are dropped and counted. Default 1000.
	PurgeForwardQueueLen int
	// PurgeForwardAttempts bounds the tries of one request. Default 5.
	PurgeForwardAttempts int
	// PurgeForwardBackoff is the wait before the first retry, doubled for
	// each next one (at most a minute). Default "1s".
	PurgeForwardBackoff Duration
	// PurgeForwardTimeout bounds one request to a target. Default "5s".
	PurgeForwardTimeout Duration
	// PurgeForwardToken, when set, is sent to webhook targets as
	// "Authorization: Bearer {token}". Prefer RAIS_PURGEFORWARDTOKEN to
	// writing it here. Default "".
	PurgeForwardToken string
	// Demo page (issue 12).
	// DemoPage serves the demo page at "/" of the IIIF listener: the images
	// under TilePath, one folder at a time, each opening in OpenSeadragon
	// or Mirador, served by the binary itself. It lists identifiers (not
	// those under SignedPrefixes), so it is off unless asked for.
	// Default false: a RAIS site's file, which has no such key, lists
	// nothing (conf/rais.toml turns it on for `make run`).
	DemoPage bool
	// Operator tools (issue 12): fallbacks for undecodable sources.

	// Fallbacks are extensions tried, in order, for a source that exists
	// but cannot be decoded: "box/scan.tif" is then served from
	// "box/scan.jpg" under its own identifier, logged once per source and
	// counted (renderer/fallback). A missing source is still 404. Default
	// none.
	Fallbacks []string
	// S3 sources (issue 10): TilePath = "s3://bucket/prefix". Credentials
	// and region come from the standard AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN), ~/.aws/credentials and
	// AWS_REGION, as RAIS reads them.

	// S3Endpoint is the S3-compatible store's host[:port] (RAIS 4; env
	// RAIS_S3_ENDPOINT as RAIS spells it, or RAIS_S3ENDPOINT). Default "":
	// AWS.
	S3Endpoint string
	// S3DisableSSL talks plain HTTP to S3Endpoint (RAIS 4;
	// RAIS_S3_DISABLESSL). Default false.
	S3DisableSSL bool
	// S3ForcePathStyle addresses buckets as endpoint/bucket/key (RAIS 4;
	// RAIS_S3_FORCEPATHSTYLE), as MinIO and most S3-compatible stores on
	// one host need. Default false.
	S3ForcePathStyle bool
	// S3Timeout bounds how long a request to the store may go without a
	// byte (headers, then every read of the body, so large downloads are
	// not cut off while they progress). Default "5s".
	S3Timeout Duration
	// S3BreakerFailures is how many failures of the store in a row (no
	// answer, 5xx, 403, a missing bucket) open the circuit breaker: requests
	// for sources not cached locally then fail at once (502), cached ones
	// are served. Default 5.
	S3BreakerFailures int
	// S3BreakerCooldown is how long the breaker stays open before one probe
	// request; a failed probe doubles it, up to 16 times. Default "5s".
	S3BreakerCooldown Duration
	// SourceCacheDir holds the local copies of S3 sources (whole, or the
	// ranges read of pyramidal TIFFs and JPEG 2000s). Default "": CacheDir/sources.
	SourceCacheDir string
	// SourceCacheMaxBytes is the source cache's budget; the least recently
	// used originals go first, and nothing is cached below CacheMinFree.
	// It must hold the largest flat (untiled) original, which is fetched
	// whole to render. Default "10GB".
	SourceCacheMaxBytes ByteSize
	// Shared render tier (issue 10): an S3 bucket behind every node's
	// local tiers. The connection (endpoint, TLS, path style, region,
	// credentials) is RAIS's environment: RAIS_S3_ENDPOINT,
	// RAIS_S3_DISABLESSL, RAIS_S3_FORCEPATHSTYLE and the AWS_* variables
	// (internal/s3conf).

	// SharedCache is the shared render tier, "s3://bucket/prefix": a local
	// miss looks there before rendering, and renders are written there in
	// the background. Default "": each node caches alone.
	SharedCache string
	// SharedTimeout bounds each operation on the shared tier's store; a
	// slower store is treated as failing (three failures in a row open
	// the circuit breaker). Default "2s".
	SharedTimeout Duration
	// SharedRetention is how long a shared entry lives unread (the
	// bucket's lifecycle rule, in whole days). Default "4320h" (180 days).
	SharedRetention Duration
	// SharedRefreshAfter is the age past which a read of a shared entry
	// resets its age (the sliding lifetime: rokka's four months of six).
	// Default "2880h" (120 days); "0s" means never; must be below
	// SharedRetention.
	SharedRefreshAfter Duration
	// SharedLifecycle sets the bucket's lifecycle rule that expires the
	// tier's entries at start (needs s3:PutLifecycleConfiguration).
	// Default true; false leaves the bucket's rules to you (README).
	SharedLifecycle bool
	// SharedQueueBytes bounds the rendered bytes waiting to be written to
	// the shared tier; past it writes are dropped and counted. Default
	// "64MB".
	SharedQueueBytes ByteSize
	// SharedQueueLen bounds the writes waiting likewise. Default 1024.
	SharedQueueLen int
	// SharedWriters is how many writes go to the shared tier at once.
	// Default 4.
	SharedWriters int

	// Tiers configures each cache tier.
	Tiers Tiers
}

// Tiers are the four cache tiers' settings.
type Tiers struct {
	Tile, Thumbnail, Info, Other Tier
}

// Tier is one cache tier's settings.
type Tier struct {
	// Enabled caches this tier's responses. Default true.
	Enabled bool
	// MaxBytes is the tier's budget on disk ("20GB", "512MB"); past it
	// entries go in S3-FIFO order (read once before read again). "0" means
	// no budget.
	MaxBytes ByteSize
	// Retention drops entries not read for this long ("4320h"); a read
	// extends it. "0s" means keep until the budget evicts them.
	Retention Duration
	// Revalidate is the age after which an entry is checked against its
	// source (its identity: inode, size, modification and change times)
	// before it is served. "0s" means never.
	Revalidate Duration
	// CacheControl is the Cache-Control header of this tier's responses.
	CacheControl string
	// MaxEntryBytes is the largest response the tier stores ("64MB");
	// larger ones are served but not stored, and counted. Defaults
	// (cache/cacheconf): tile 4MB, thumbnail 16MB, info 1MB, other 256MB
	// (the largest PNG the default image limits allow is about 180 MB).
	// "0" means no bound.
	MaxEntryBytes ByteSize
	// MaxSize (tile and thumbnail only) is the largest output, in pixels on
	// each side, that still belongs to the tier.
	MaxSize int
	// Formats (tile and thumbnail only) are the output formats the tier
	// takes.
	Formats []string
}

// Default returns the built-in defaults. The settings of the renderers,
// the S3 sources, the cache tiers, the tiers' classifier and the purge
// forwarder take their defaults from the package that owns them
// (owners.go).
func Default() Config {
	vd, ud, cl, pd := vipsconf.Default(), upstream.Default(), rules.DefaultClassifier(), proxyconf.Default()
	return Config{
		Address:                ":12415",
		AdminAddress:           "127.0.0.1:12416",
		LogLevel:               "INFO",
		LogFormat:              "text",
		AccessLog:              false,
		AccessLogErrorRate:     100,
		IIIFWebPath:            pd.WebPath,
		UnversionedVersion:     2,
		InfoCacheLen:           10000,
		TileCacheLen:           1000,
		JPGQuality:             vd.JPGQuality,
		ImageMaxArea:           vd.Limits.MaxArea,
		ImageMaxWidth:          vd.Limits.MaxWidth,
		ImageMaxHeight:         vd.Limits.MaxHeight,
		MaxSourcePixels:        vd.MaxSourcePixels,
		RenderConcurrency:      vd.Concurrency,
		RenderQueueLen:         vd.QueueLen,
		RenderTimeout:          Duration(pd.RenderTimeout),
		VipsConcurrency:        vipsconf.DefaultVipsConcurrency,
		UntiledTileSize:        vd.UntiledTileSize,
		TilePassthrough:        vd.TilePassthrough,
		ColourProfiles:         vd.ColourProfiles,
		PyramidMinPixels:       vd.PyramidMinPixels,
		PyramidMaxBytes:        ByteSize(vd.PyramidMaxBytes),
		PyramidBuilds:          vd.PyramidBuilds,
		CacheDir:               "cache",
		CacheMinFree:           FreeSpace{Percent: 5},
		RenderWait:             Duration(pd.RenderWait),
		MaxInFlightBytes:       ByteSize(pd.MaxInFlightBytes),
		WriteTimeout:           Duration(pd.WriteTimeout),
		UpstreamTimeout:        Duration(ud.Timeout),
		UpstreamConnectTimeout: Duration(ud.ConnectTimeout),
		UpstreamMaxConns:       ud.MaxConns,
		UpstreamNotFoundTTL:    Duration(ud.NotFoundTTL),
		TrustedProxies:         pd.TrustedProxies,
		PurgeForwardQueueLen:   purge.DefaultQueueLen,
		PurgeForwardAttempts:   purge.DefaultAttempts,
		PurgeForwardBackoff:    Duration(purge.DefaultBackoff),
		PurgeForwardTimeout:    Duration(purge.DefaultTimeout),
		S3Timeout:              Duration(sources.DefaultTimeout),
		S3BreakerFailures:      sources.DefaultBreakerFailures,
		S3BreakerCooldown:      Duration(sources.DefaultBreakerCooldown),
		SourceCacheMaxBytes:    sources.DefaultMaxBytes,
		// Shared render tier (issue 10).
		SharedTimeout:      Duration(2 * time.Second),
		SharedRetention:    Duration(4320 * time.Hour),
		SharedRefreshAfter: Duration(2880 * time.Hour),
		SharedLifecycle:    true,
		SharedQueueBytes:   64 << 20,
		SharedQueueLen:     1024,
		SharedWriters:      4,
		Tiers: Tiers{
			Tile:      tierDefault(rules.TierTile, cl.TileMaxSize, cl.TileFormats),
			Thumbnail: tierDefault(rules.TierThumbnail, cl.ThumbnailMaxSize, cl.ThumbnailFormats),
			Info:      tierDefault(rules.TierInfo, 0, nil),
			Other:     tierDefault(rules.TierOther, 0, nil),
		},
	}
}

// raisOnly are RAIS keys (RAIS 2, 3 and 4, its plugins included) that
// iiif-proxy accepts but does not implement: each one found in a file, the
// environment or a flag gets a one-line warning and is otherwise ignored.
var raisOnly = []string{
	"CapabilitiesFile",                                 // IIIF features to turn off: iiif-proxy serves level 2
	"Plugins",                                          // RAIS 3's Go plugins
	"SchemeMap",                                        // RAIS 4's cloud sources
	"S3Cache", "S3Zone", "S3Bucket", "S3CacheLifetime", // RAIS 3's s3-images plugin (RAIS 4's S3 keys are ours)
	"DatabaseURL",
	"DatadogAddress", "DatadogServiceName", // datadog plugin
	"TracerOutputDirectory", "TraceFlushMinutes", "MaxTraces", // json-tracer plugin
}

// raisOnlyEnv are RAIS's plugins' switches, in the environment.
var raisOnlyEnv = []string{"RAIS_ALLOW_INSECURE_PLUGINS"}

// envAliases are RAIS's environment names that do not follow envName (RAIS
// 4 reads its S3 settings with an underscore), by key.
var envAliases = map[string]string{
	"RAIS_S3_ENDPOINT": "S3Endpoint", "RAIS_S3_DISABLESSL": "S3DisableSSL", "RAIS_S3_FORCEPATHSTYLE": "S3ForcePathStyle",
}

// raisOnlyFlags are RAIS's command-line flags for keys in raisOnly.
var raisOnlyFlags = map[string]string{"capabilities-file": "CapabilitiesFile", "plugins": "Plugins"}

func raisOnlyWarning(where, key string) string {
	return fmt.Sprintf("%s: RAIS setting %s is not implemented by iiif-proxy and is ignored", where, key)
}

// Duration is a time.Duration written in Go's notation ("90s", "24h").
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like \"90s\" or \"24h\"", b)
	}
	if v < 0 {
		return fmt.Errorf("%q must not be negative", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// ByteSize is a size in bytes written with a unit: "20GB", "512MB", "64KiB",
// "1024" (bytes). KB, MB, GB, TB are powers of 1024 as operators expect
// from disk budgets; KiB, MiB, GiB, TiB say the same explicitly.
type ByteSize int64

var units = []struct {
	suffix string
	mult   int64
}{{"TIB", 1 << 40}, {"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10},
	{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"T", 1 << 40}, {"G", 1 << 30},
	{"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(t []byte) error {
	s := strings.ToUpper(strings.TrimSpace(string(t)))
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v*float64(mult) > 1<<62 {
		return fmt.Errorf("%q is not a size like \"20GB\" or \"512MB\"", t)
	}
	*b = ByteSize(v * float64(mult))
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (b ByteSize) MarshalText() ([]byte, error) {
	for _, u := range units[4:8] {
		if b >= ByteSize(u.mult) && int64(b)%u.mult == 0 {
			return []byte(strconv.FormatInt(int64(b)/u.mult, 10) + u.suffix), nil
		}
	}
	return []byte(strconv.FormatInt(int64(b), 10)), nil
}

// FreeSpace is an amount of free disk space: a size ("1GB", as ByteSize) or
// a percentage of the file system's size ("5%").
type FreeSpace struct {
	Bytes   int64
	Percent float64
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *FreeSpace) UnmarshalText(t []byte) error {
	s := strings.TrimSpace(string(t))
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v < 0 || v >= 100 {
			return fmt.Errorf("%q is not a percentage from 0%% to below 100%%", t)
		}
		*f = FreeSpace{Percent: v}
		return nil
	}
	var b ByteSize
	if err := b.UnmarshalText(t); err != nil {
		return fmt.Errorf("%q is not a size like \"1GB\" or a percentage like \"5%%\"", t)
	}
	*f = FreeSpace{Bytes: int64(b)}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (f FreeSpace) MarshalText() ([]byte, error) {
	if f.Bytes == 0 {
		return []byte(strconv.FormatFloat(f.Percent, 'f', -1, 64) + "%"), nil
	}
	return ByteSize(f.Bytes).MarshalText()
}

// Load builds the configuration. file is the TOML file to read ("" = none);
// environ is os.Environ() (or a test's); args are the command-line flags
// after the program name. Warnings are things the operator should know that
// do not stop start-up.
func Load(file string, environ []string, args []string) (cfg Config, warnings []string, err error) {
	return load(file, environ, args, nil)
}

// load is Load, recording in src (when not nil) where each key set came from.
func load(file string, environ []string, args []string, src Sources) (cfg Config, warnings []string, err error) {
	cfg = Default()
	if dir := systemdCacheDirectory(environ); dir != "" {
		// Under a systemd unit with CacheDirectory= (packaging/), the
		// platform's place is the default; the file, RAIS_CACHEDIR and
		// -cache-dir still win.
		cfg.CacheDir = dir
	}
	var errs []error
	read := true
	if file != "" {
		w, fileErrs, ok := decodeFile(file, &cfg, src)
		warnings = append(warnings, w...)
		errs = append(errs, fileErrs...)
		read = ok
	}
	w, envErrs := applyEnv(&cfg, environ, src)
	warnings = append(warnings, w...)
	errs = append(errs, envErrs...)
	w, flagErrs := applyFlags(&cfg, args, src)
	warnings = append(warnings, w...)
	errs = append(errs, flagErrs...)
	errs = append(errs, cfg.readSecrets()...)
	errs = append(errs, cfg.applyIIIFURL()...)
	src.derived(cfg)
	if read {
		// A file that could not be read at all (a syntax error) set
		// nothing: checking the defaults would report settings it does
		// make ("TilePath: required") as missing.
		errs = append(errs, cfg.validate()...)
	}
	if cfg.AdminToken == "" && cfg.AdminAddress != "" && !loopback(cfg.AdminAddress) {
		warnings = append(warnings, publicAdminWarning(cfg.AdminAddress))
	}
	return cfg, warnings, errors.Join(errs...)
}

// systemdCacheDirectory is the directory systemd made for the unit's
// CacheDirectory= ($CACHE_DIRECTORY: absolute paths joined by ":", the
// first ours), or "" when not run so.
func systemdCacheDirectory(environ []string) string {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "CACHE_DIRECTORY="); ok {
			first, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(first, "/") {
				return first
			}
		}
	}
	return ""
}

// searchPath is where Find looks, in order: this checkout's sample, the
// working directory, the file `make install` and the Docker image write
// (which the unit and the image pass as -config, so that `iiif-proxy purge`
// and `stats` run by hand find the same file, token included), then RAIS's
// own place.
var searchPath = []string{"conf/rais.toml", "rais.toml", "/etc/iiif-proxy/rais.toml", "/etc/rais.toml"}

// Find returns the configuration file to use when -config is not given:
// the first of searchPath that exists; "" if none does.
func Find() string {
	for _, f := range searchPath {
		if _, err := os.Stat(f); err == nil {
			return f
		}
	}
	return ""
}

// ConfigFlag picks -config FILE (or --config=FILE) out of args; it reports
// whether the flag was present and returns the remaining args.
func ConfigFlag(args []string) (file string, given bool, rest []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			rest = append(rest, a)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return "", true, nil, errors.New("-config needs a file name")
			}
			i++
			val = args[i]
		}
		if _, err := os.Stat(val); err != nil {
			return "", true, nil, fmt.Errorf("-config: %w", err)
		}
		file, given = val, true
	}
	return file, given, rest, nil
}

// envName is the environment variable for a key path.
func envName(path []string) string { return "RAIS_" + strings.ToUpper(strings.Join(path, "_")) }

// field is one settable leaf of Config.
type field struct {
	path []string
	v    reflect.Value
}

func leaves(v reflect.Value, prefix []string, out *[]field) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		path := append(slices.Clone(prefix), f.Name)
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && !isText(fv) {
			leaves(fv, path, out)
			continue
		}
		*out = append(*out, field{path, fv})
	}
}

func isText(v reflect.Value) bool {
	_, ok := v.Addr().Interface().(interface{ UnmarshalText([]byte) error })
	return ok
}

// set parses s into v by v's type.
func set(v reflect.Value, s string) error {
	if u, ok := v.Addr().Interface().(interface{ UnmarshalText([]byte) error }); ok {
		return u.UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		v.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		v.SetBool(b)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported type %s", v.Type())
		}
		var parts []string
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

func applyEnv(cfg *Config, environ []string, src Sources) (warnings []string, errs []error) {
	var fs []field
	leaves(reflect.ValueOf(cfg).Elem(), nil, &fs)
	known := map[string]field{}
	for _, f := range fs {
		known[envName(f.path)] = f
	}
	for alias, key := range envAliases {
		known[alias] = known[envName([]string{key})]
	}
	for _, kv := range environ {
		name, val, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "RAIS_") {
			continue
		}
		f, ok := known[name]
		switch {
		case ok:
		case slices.Contains(raisOnlyEnv, name) || slices.ContainsFunc(raisOnly, func(k string) bool { return envName([]string{k}) == name }):
			if strings.TrimSpace(val) != "" { // RAIS_PLUGINS= asks for nothing
				warnings = append(warnings, raisOnlyWarning("environment", name))
			}
			continue
		default:
			warnings = append(warnings, fmt.Sprintf("environment: %s is not an iiif-proxy setting and is ignored", name))
			continue
		}
		if err := set(f.v, val); err != nil {
			errs = append(errs, fmt.Errorf("environment %s: %w", name, err))
		} else {
			src.set(f.path, Source{Kind: FromEnvironment, Where: name})
		}
	}
	return warnings, errs
}

// flagNames are RAIS's command-line flags and ours, by key.
var flagNames = map[string]string{
	"Address": "address", "AdminAddress": "admin-address", "LogLevel": "log-level", "LogFormat": "log-format",
	"AccessLog": "access-log", "AccessLogErrorRate": "access-log-error-rate", "TilePath": "tile-path",
	"IIIFWebPath": "iiif-web-path", "IIIFURL": "iiif-url", "UnversionedVersion": "unversioned-version", "IIIFBaseURL": "iiif-base-url", "InfoCacheLen": "iiif-info-cache-size",
	"TileCacheLen": "tile-cache-size", "JPGQuality": "jpg-quality", "ImageMaxArea": "image-max-area",
	"ImageMaxWidth": "image-max-width", "ImageMaxHeight": "image-max-height", "MaxSourcePixels": "max-source-pixels",
	"RenderConcurrency": "render-concurrency", "RenderQueueLen": "render-queue-len",
	"RenderTimeout": "render-timeout", "VipsConcurrency": "vips-concurrency",
	"UntiledTileSize": "untiled-tile-size", "TilePassthrough": "tile-passthrough", "ColourProfiles": "colour-profiles",
	"PyramidMinPixels": "pyramid-min-pixels", "PyramidMaxBytes": "pyramid-max-bytes", "PyramidBuilds": "pyramid-builds",
	"CacheDir": "cache-dir", "CacheMinFree": "cache-min-free", "AdminToken": "admin-token", "RenderWait": "render-wait",
	"AdminTokenFile": "admin-token-file", "MaxInFlightBytes": "max-in-flight-bytes", "WriteTimeout": "write-timeout",
	"SignedPrefixes": "signed-prefixes", "SigningKeys": "signing-keys", "SigningKeyFile": "signing-key-file",
	"Upstream": "upstream", "UpstreamTimeout": "upstream-timeout", "UpstreamConnectTimeout": "upstream-connect-timeout",
	"UpstreamMaxConns": "upstream-max-conns", "UpstreamNotFoundTTL": "upstream-not-found-ttl",
	"TrustedProxies": "trusted-proxies", "StaleWhileRevalidate": "stale-while-revalidate",
	// Purge forwarding
	"PurgeForward": "purge-forward", "PurgeForwardQueueLen": "purge-forward-queue-len",
	"PurgeForwardAttempts": "purge-forward-attempts", "PurgeForwardBackoff": "purge-forward-backoff",
	"PurgeForwardTimeout": "purge-forward-timeout", "PurgeForwardToken": "purge-forward-token",
	"DemoPage":   "demo-page", // demo page (issue 12)
	"Fallbacks":  "fallbacks",
	"S3Endpoint": "s3-endpoint", "S3DisableSSL": "s3-disable-ssl", "S3ForcePathStyle": "s3-force-path-style",
	"S3Timeout": "s3-timeout", "S3BreakerFailures": "s3-breaker-failures", "S3BreakerCooldown": "s3-breaker-cooldown",
	"SourceCacheDir": "source-cache-dir", "SourceCacheMaxBytes": "source-cache-max-bytes",
	// Shared render tier (issue 10).
	"SharedCache": "shared-cache", "SharedTimeout": "shared-timeout", "SharedRetention": "shared-retention",
	"SharedRefreshAfter": "shared-refresh-after", "SharedLifecycle": "shared-lifecycle",
	"SharedQueueBytes": "shared-queue-bytes", "SharedQueueLen": "shared-queue-len", "SharedWriters": "shared-writers",
}

// Flags returns a FlagSet describing every flag, for -help.
func Flags() *flag.FlagSet {
	cfg := Default()
	fset := flagSet(&cfg, true)
	fset.String("config", "", "TOML configuration file (default: the first of "+strings.Join(searchPath, ", ")+" that exists)")
	return fset
}

// flagSet has one flag per key of cfg, setting it; help adds each key's
// name and environment variable to its usage.
func flagSet(cfg *Config, help bool) *flag.FlagSet {
	fset := flag.NewFlagSet("iiif-proxy", flag.ContinueOnError)
	var fs []field
	leaves(reflect.ValueOf(cfg).Elem(), nil, &fs)
	for _, f := range fs {
		if help && tileOrThumbnailOnly(f.path) {
			// Accepted (and refused by validate with a reason), but not
			// offered: -help would describe a setting that cannot be set.
			continue
		}
		name := flagName(f.path)
		text := ""
		if help {
			text = usage(f.path)
		}
		fset.Var(flagValue{f.v, f.path}, name, text)
	}
	return fset
}

// flagName is the command-line flag of the key at path.
func flagName(path []string) string {
	if name, ok := flagNames[strings.Join(path, ".")]; ok {
		return name
	}
	return strings.ToLower(strings.Join(path, "-"))
}

// tileOrThumbnailOnly reports whether path is the MaxSize or Formats of
// the info or other tier, keys only the tile and thumbnail tiers have.
func tileOrThumbnailOnly(path []string) bool {
	return len(path) == 3 && path[0] == "Tiers" && (path[1] == "Info" || path[1] == "Other") &&
		(path[2] == "MaxSize" || path[2] == "Formats")
}

type flagValue struct {
	v    reflect.Value
	path []string
}

func (f flagValue) String() string {
	if !f.v.IsValid() {
		return ""
	}
	if m, ok := f.v.Interface().(interface{ MarshalText() ([]byte, error) }); ok {
		b, _ := m.MarshalText()
		return string(b)
	}
	return fmt.Sprint(f.v.Interface())
}

func (f flagValue) Set(s string) error { return set(f.v, s) }

// IsBoolFlag lets "-tile-passthrough" mean true, as flag does for bools.
func (f flagValue) IsBoolFlag() bool { return f.v.IsValid() && f.v.Kind() == reflect.Bool }

// applyFlags sets cfg from command-line flags (-name value, -name=value,
// --name value; a bool flag alone means true). Every bad flag is reported,
// not only the first, and RAIS's flags for keys we do not implement warn.
func applyFlags(cfg *Config, args []string, src Sources) (warnings []string, errs []error) {
	fset := flagSet(cfg, false)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-" || a == "--" || !strings.HasPrefix(a, "-") {
			errs = append(errs, fmt.Errorf("flags: unexpected argument %q", a))
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := fset.Lookup(name)
		key, raisOnly := raisOnlyFlags[name]
		isBool := f != nil && f.Value.(flagValue).IsBoolFlag()
		if !hasVal && !isBool {
			if f == nil && !raisOnly && (i+1 >= len(args) || strings.HasPrefix(args[i+1], "-")) {
				errs = append(errs, fmt.Errorf("flags: unknown flag -%s (see -help)", name))
				continue
			}
			if i+1 >= len(args) {
				errs = append(errs, fmt.Errorf("flags: -%s needs a value", name))
				continue
			}
			i++
			val = args[i]
		} else if !hasVal {
			val = "true"
		}
		switch {
		case f != nil:
			if err := f.Value.Set(val); err != nil {
				errs = append(errs, fmt.Errorf("flag -%s: %w", name, err))
			} else {
				src.set(f.Value.(flagValue).path, Source{Kind: FromFlag, Where: "-" + name})
			}
		case raisOnly:
			warnings = append(warnings, raisOnlyWarning("flag -"+name, key))
		default:
			errs = append(errs, fmt.Errorf("flags: unknown flag -%s (see -help)", name))
		}
	}
	return warnings, errs
}

// LogLevels are the accepted LogLevel values.
var LogLevels = []string{"DEBUG", "INFO", "WARN", "ERROR", "CRIT"}

// publicAdminWarning is what Load says (at start-up and on SIGHUP) when the
// admin listener on addr, not a loopback address, has no token.
func publicAdminWarning(addr string) string {
	return fmt.Sprintf("AdminToken: none, and AdminAddress %q is not loopback: /metrics and /stats are served read-only to anyone who reaches it; "+
		"purges are refused until a token is set (AdminToken, AdminTokenFile or RAIS_ADMINTOKEN)", addr)
}

// Loopback reports whether addr ("host:port") only listens on loopback.
func Loopback(addr string) bool { return loopback(addr) }

// loopback reports whether addr ("host:port") only listens on loopback.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readSecrets reads AdminTokenFile and SigningKeyFile into AdminToken and
// SigningKeys. It runs on every Load, so SIGHUP picks up a rotated file.
func (c *Config) readSecrets() []error {
	var errs []error
	if c.AdminTokenFile != "" {
		b, err := os.ReadFile(c.AdminTokenFile)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("AdminTokenFile: %w", err))
		case c.AdminToken != "":
			errs = append(errs, errors.New("AdminTokenFile: AdminToken is set too; use one"))
		case strings.TrimSpace(string(b)) == "":
			errs = append(errs, fmt.Errorf("AdminTokenFile: %s is empty", c.AdminTokenFile))
		default:
			c.AdminToken = strings.TrimSpace(string(b))
		}
	}
	if c.SigningKeyFile != "" {
		b, err := os.ReadFile(c.SigningKeyFile)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("SigningKeyFile: %w", err))
		case len(c.SigningKeys) > 0:
			errs = append(errs, errors.New("SigningKeyFile: SigningKeys is set too; use one"))
		default:
			for line := range strings.Lines(string(b)) {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
					c.SigningKeys = append(c.SigningKeys, line)
				}
			}
		}
	}
	return errs
}

// applyIIIFURL reads RAIS 2's IIIFURL into IIIFBaseURL and IIIFWebPath.
// It runs after every source, so IIIFURL wins over the defaults whichever
// source set it; a source that set IIIFBaseURL or IIIFWebPath to something
// else is a conflict, reported rather than guessed at.
func (c *Config) applyIIIFURL() []error {
	if c.IIIFURL == "" {
		return nil
	}
	u, err := url.Parse(c.IIIFURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path == "" || u.Path == "/" ||
		u.RawQuery != "" || u.Fragment != "" {
		return []error{fmt.Errorf("IIIFURL: %q must be http(s)://host[:port]/path, e.g. http://example.org/images/iiif", c.IIIFURL)}
	}
	base, path := u.Scheme+"://"+u.Host, strings.TrimRight(u.EscapedPath(), "/")
	var errs []error
	if c.IIIFBaseURL != "" && strings.TrimRight(c.IIIFBaseURL, "/") != base {
		errs = append(errs, fmt.Errorf("IIIFURL: %q names %s, but IIIFBaseURL says %q: keep one (IIIFURL is RAIS 2's key)", c.IIIFURL, base, c.IIIFBaseURL))
	}
	if c.IIIFWebPath != Default().IIIFWebPath && strings.TrimRight(c.IIIFWebPath, "/") != path {
		errs = append(errs, fmt.Errorf("IIIFURL: %q names path %s, but IIIFWebPath says %q: keep one (IIIFURL is RAIS 2's key)", c.IIIFURL, path, c.IIIFWebPath))
	}
	if len(errs) == 0 {
		c.IIIFBaseURL, c.IIIFWebPath = base, path
	}
	return errs
}

// Purge is the purge forwarder's configuration (PurgeForward…), without
// its Client and Logger.
func (c Config) Purge() purge.Config {
	return purge.Config{
		Targets:      c.PurgeForward,
		WebPath:      c.IIIFWebPath,
		BaseURL:      c.IIIFBaseURL,
		Unversioned:  c.UnversionedVersion != 0,
		QueueLen:     c.PurgeForwardQueueLen,
		Attempts:     c.PurgeForwardAttempts,
		Backoff:      c.PurgeForwardBackoff.Std(),
		Timeout:      c.PurgeForwardTimeout.Std(),
		WebhookToken: c.PurgeForwardToken,
	}
}

// SourceCache is the directory of the S3 source cache.
func (c Config) SourceCache() string {
	if c.SourceCacheDir != "" {
		return c.SourceCacheDir
	}
	if c.CacheDir == "" {
		return ""
	}
	return filepath.Join(c.CacheDir, "sources")
}

// MinSigningKeyLen is the shortest signing key accepted (proxyconf's).
const MinSigningKeyLen = proxyconf.MinSigningKeyLen

func (c *Config) validate() []error {
	var errs []error
	c.LogLevel = strings.ToUpper(c.LogLevel)
	if !slices.Contains(LogLevels, c.LogLevel) {
		errs = append(errs, fmt.Errorf("LogLevel: %q is not one of %s", c.LogLevel, strings.Join(LogLevels, ", ")))
	}
	if c.LogFormat = strings.ToLower(c.LogFormat); c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("LogFormat: %q must be text or json", c.LogFormat))
	}
	if c.AccessLogErrorRate < 0 {
		errs = append(errs, fmt.Errorf("AccessLogErrorRate: %d must be >= 0 (0: no bound)", c.AccessLogErrorRate))
	}
	if c.Address == "" {
		errs = append(errs, errors.New("Address: must not be empty"))
	}
	// A port is needed to listen: "localhost" passed here and failed only
	// when the server started.
	for key, a := range map[string]string{"Address": c.Address, "AdminAddress": c.AdminAddress} {
		if a == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("%s: %q is not HOST:PORT (e.g. :12415 or 127.0.0.1:12415)", key, a))
		}
	}
	// A file where the cache directory should be left the server serving
	// uncached for ever; a directory not there yet is made at start.
	if c.CacheDir != "" {
		if fi, err := os.Stat(c.CacheDir); err == nil && !fi.IsDir() {
			errs = append(errs, fmt.Errorf("CacheDir: %s is not a directory", c.CacheDir))
		}
	}
	errs = append(errs, c.validateOwners()...) // owners.go
	errs = append(errs, lines(c.Front().Validate())...)
	if c.UnversionedVersion != 0 && c.UnversionedVersion != 2 && c.UnversionedVersion != 3 {
		errs = append(errs, fmt.Errorf("UnversionedVersion: %d must be 2, 3 or 0 (no unversioned URLs)", c.UnversionedVersion))
	}
	for _, n := range []struct {
		key string
		n   int
	}{{"InfoCacheLen", c.InfoCacheLen}, {"TileCacheLen", c.TileCacheLen}, {"VipsConcurrency", c.VipsConcurrency}} {
		if n.n < 0 {
			errs = append(errs, fmt.Errorf("%s: %d must be >= 0", n.key, n.n))
		}
	}
	if err := fallback.Validate(c.Fallbacks); err != nil {
		errs = append(errs, fmt.Errorf("Fallbacks: %w", err))
	}
	errs = append(errs, c.validateShared()...)
	errs = append(errs, lines(c.Purge().Validate())...)
	for name, zero := range map[string]bool{"PurgeForwardQueueLen": c.PurgeForwardQueueLen == 0, "PurgeForwardAttempts": c.PurgeForwardAttempts == 0,
		"PurgeForwardBackoff": c.PurgeForwardBackoff == 0, "PurgeForwardTimeout": c.PurgeForwardTimeout == 0} {
		if zero { // the forwarder's zero is its default: say what was meant
			errs = append(errs, fmt.Errorf("%s: must be > 0", name))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	// Two owners may check one key (ImageMaxArea: both renderers, in
	// sidecar mode): each problem is told once.
	return slices.CompactFunc(errs, func(a, b error) bool { return a.Error() == b.Error() })
}

// validateShared checks the shared render tier's keys (issue 10).
func (c *Config) validateShared() []error {
	var errs []error
	if c.SharedCache != "" {
		if _, _, err := s3conf.ParseURL(c.SharedCache); err != nil {
			errs = append(errs, fmt.Errorf("SharedCache: %w", err))
		}
		if c.CacheDir == "" {
			errs = append(errs, errors.New("SharedCache: needs CacheDir: a shared hit is kept in the local tiers"))
		}
	}
	if c.SharedTimeout <= 0 {
		errs = append(errs, errors.New("SharedTimeout: must be > 0"))
	}
	if c.SharedRetention < Duration(24*time.Hour) {
		errs = append(errs, errors.New("SharedRetention: must be at least 24h (the bucket's lifecycle rule counts whole days)"))
	}
	if c.SharedRefreshAfter < 0 || (c.SharedRefreshAfter > 0 && c.SharedRefreshAfter >= c.SharedRetention) {
		errs = append(errs, errors.New("SharedRefreshAfter: must be >= 0 and below SharedRetention"))
	}
	if c.SharedQueueBytes < 1 || c.SharedQueueLen < 1 || c.SharedWriters < 1 {
		errs = append(errs, errors.New("SharedQueueBytes, SharedQueueLen, SharedWriters: must be >= 1"))
	}
	return errs
}

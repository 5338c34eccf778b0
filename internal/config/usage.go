package config

import (
	"fmt"
	"strings"
)

// usages is one sentence per key for -help: what the setting does, in the
// words an operator needs at a terminal. The full story, with defaults and
// trade-offs, is in conf/rais.toml. TestEveryFlagHasAUsage keeps the table
// whole.
var usages = map[string]string{
	"Address":                "Address the IIIF service listens on, host:port.",
	"AdminAddress":           "Address of the admin listener (metrics, stats, purges); empty turns it off.",
	"LogLevel":               "Least severe messages logged: DEBUG, INFO, WARN, ERROR or CRIT.",
	"LogFormat":              "Log format: text (key=value lines) or json (one object a line).",
	"AccessLog":              "Log one INFO line per request; false keeps only failed requests' lines.",
	"AccessLogErrorRate":     "Most access-log lines a second for failed requests (the rest are counted); 0 means no bound.",
	"TilePath":               "Directory of the source images; identifiers are paths relative to it.",
	"IIIFWebPath":            "Path prefix of the IIIF service, e.g. /iiif.",
	"UnversionedVersion":     "IIIF version spoken by URLs with no version segment (RAIS's form): 2, 3, or 0 for none.",
	"IIIFBaseURL":            "Public scheme://host[:port] for ids in info.json; empty takes it from each request.",
	"IIIFURL":                "RAIS 2's public URL of the service (http://host/path), read as IIIFBaseURL and IIIFWebPath.",
	"InfoCacheLen":           "How many images' descriptions stay in memory; 0 turns it off.",
	"TileCacheLen":           "How many tiles stay in memory in front of the disk cache; 0 turns it off.",
	"JPGQuality":             "JPEG and WebP quality of rendered images, 1 to 100.",
	"ImageMaxArea":           "Most pixels one response may have; 0 means no limit.",
	"ImageMaxWidth":          "Widest response in pixels; 0 means no limit.",
	"ImageMaxHeight":         "Tallest response in pixels; 0 means no limit.",
	"MaxSourcePixels":        "Most pixels a render may decode from an untiled source; larger requests get 422.",
	"RenderConcurrency":      "Renders run at once; 0 means one per core.",
	"RenderQueueLen":         "Renders that may wait for a worker (more get 503); 0 means 8 per worker, -1 none.",
	"RenderTimeout":          "Longest a request waits for its render, queueing included, before 503.",
	"VipsConcurrency":        "Threads libvips uses inside one render.",
	"UntiledTileSize":        "Tile size advertised for sources without tiles, 16 to 4096.",
	"TilePassthrough":        "Send stored JPEG tiles of pyramidal TIFFs as they are, without re-encoding.",
	"ColourProfiles":         "What to do with ICC-tagged sources: convert (to sRGB), embed or strip.",
	"PyramidMinPixels":       "Flat sources this large get an automatic tiled pyramid under CacheDir/pyramid; 0 means none.",
	"PyramidMaxBytes":        "Byte budget of the automatic pyramids; the least recently used go first.",
	"PyramidBuilds":          "Automatic pyramids built at once, each in a child process at the lowest priority.",
	"CacheDir":               "Directory of the on-disk cache tiers ($CACHE_DIRECTORY under systemd, else ./cache); empty turns the disk cache off.",
	"CacheMinFree":           "Free space the cache's file system must keep, a size (1GB) or a percentage (5%).",
	"AdminToken":             "Bearer token the admin listener requires; prefer AdminTokenFile or the environment.",
	"AdminTokenFile":         "File holding the admin token, re-read on SIGHUP.",
	"RenderWait":             "Longest a request waits for a render another request started, before 503.",
	"MaxInFlightBytes":       "Most response bytes being written at once; more get 503; 0 means no bound.",
	"WriteTimeout":           "Longest writing one response may take before the client is cut off.",
	"SignedPrefixes":         "Identifier prefixes that need signed URLs, comma-separated.",
	"SigningKeys":            "Keys that sign URLs, the first signing, all verifying; prefer SigningKeyFile.",
	"SigningKeyFile":         "File of signing keys, one a line, re-read on SIGHUP.",
	"Upstream":               "IIIF server to stand in front of (sidecar mode) instead of rendering, http://host:port/prefix.",
	"UpstreamTimeout":        "Longest the upstream may take to answer one request.",
	"UpstreamConnectTimeout": "Longest a connection to the upstream may take to open.",
	"UpstreamMaxConns":       "Most connections open to the upstream at once.",
	"UpstreamNotFoundTTL":    "How long the upstream's 404 for an identifier is remembered.",
	"TrustedProxies":         "Addresses or networks whose X-Forwarded-Proto and -Host are believed, comma-separated.",
	"StaleWhileRevalidate":   "How long past Revalidate an entry is served at once while its source is checked.",
	// Purge forwarding
	"PurgeForward":         "Caches in front that purges are passed on to, comma-separated \"KIND URL\": ban, purge or webhook.",
	"PurgeForwardQueueLen": "Most forwarded purge requests waiting per target; more are dropped and counted.",
	"PurgeForwardAttempts": "Most tries of one forwarded purge request.",
	"PurgeForwardBackoff":  "Wait before the first retry of a forwarded purge, doubled for each next one.",
	"PurgeForwardTimeout":  "Longest one forwarded purge request may take.",
	"PurgeForwardToken":    "Bearer token sent to webhook targets; prefer the environment.",
	"DemoPage":             "Serve the demo page (the images under TilePath in OpenSeadragon and Mirador) at / of the IIIF listener.",
	"Fallbacks":            "Extensions tried, in order, for a source that cannot be decoded (.jpg serves scan.jpg for scan.tif).",
	"S3Endpoint":           "S3-compatible store for TilePath s3://bucket/prefix, host:port; empty means AWS.",
	"S3DisableSSL":         "Talk plain HTTP to S3Endpoint.",
	"S3ForcePathStyle":     "Address buckets as endpoint/bucket/key (MinIO and most S3-compatible stores).",
	"S3Timeout":            "Longest a request to S3 may go without a byte before it fails.",
	"S3BreakerFailures":    "S3 failures in a row after which requests for uncached sources fail at once.",
	"S3BreakerCooldown":    "How long S3 is left alone after the breaker opens, before one probe.",
	"SourceCacheDir":       "Directory of the local copies of S3 sources; empty means CacheDir/sources.",
	"SourceCacheMaxBytes":  "Byte budget of the S3 source cache; the least recently used originals go first.",
	// Shared render tier (issue 10).
	"SharedCache":        "Shared render tier of a fleet, s3://bucket/prefix (RAIS_S3_* and AWS_* reach the store); empty means none.",
	"SharedTimeout":      "Longest one operation on the shared tier's store may take before it counts as failed.",
	"SharedRetention":    "How long an unread shared entry lives (the bucket's lifecycle rule, whole days).",
	"SharedRefreshAfter": "Age past which reading a shared entry resets its age (sliding lifetime); 0s means never.",
	"SharedLifecycle":    "Set the bucket's lifecycle rule that expires shared entries at start.",
	"SharedQueueBytes":   "Most rendered bytes waiting to be written to the shared tier; more are dropped.",
	"SharedQueueLen":     "Most writes waiting for the shared tier; more are dropped.",
	"SharedWriters":      "Writes to the shared tier at once.",
}

// tierUsages are the sentences of each tier's keys, "%s" the tier's name.
var tierUsages = map[string]string{
	"Enabled":       "Cache the %s tier at all.",
	"MaxBytes":      "Disk budget of the %s tier, e.g. 20GB; past it entries go in S3-FIFO order.",
	"Retention":     "How long an unread entry of the %s tier is kept.",
	"Revalidate":    "Age past which an entry of the %s tier is checked against its source.",
	"CacheControl":  "Cache-Control header sent with responses of the %s tier.",
	"MaxEntryBytes": "Largest response the %s tier stores.",
	"MaxSize":       "Largest output side, in pixels, that lands in the %s tier.",
	"Formats":       "Output formats that land in the %s tier, comma-separated.",
}

// usage is the -help text of the key at path: its sentence, then its key
// and environment variable.
func usage(path []string) string {
	key := strings.Join(path, ".")
	s, ok := usages[key]
	if len(path) == 3 && path[0] == "Tiers" {
		if t, found := tierUsages[path[2]]; found {
			s, ok = fmt.Sprintf(t, strings.ToLower(path[1])), true
		}
	}
	if !ok {
		return fmt.Sprintf("(%s, env %s)", key, envName(path)) // TestEveryFlagHasAUsage fails on it
	}
	return fmt.Sprintf("%s (%s, env %s)", s, key, envName(path))
}

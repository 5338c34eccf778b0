package sources

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/iiif-proxy/iiif-proxy/internal/s3conf"
)

// Defaults of Config, also the configuration package's (one owner per
// setting).
const (
	DefaultMaxBytes        = 10 << 30
	DefaultTimeout         = 5 * time.Second
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 5 * time.Second
)

// Config configures an S3 source. The zero value of every field but URL
// and Dir means the default its comment gives.
type Config struct {
	// URL is "s3://bucket" or "s3://bucket/prefix" (TilePath). Required.
	URL string

	// Endpoint is the store's host[:port] (RAIS_S3_ENDPOINT), or a URL
	// whose scheme sets DisableSSL. Empty means AWS (s3.amazonaws.com).
	Endpoint string
	// DisableSSL talks plain HTTP to Endpoint (RAIS_S3_DISABLESSL).
	DisableSSL bool
	// ForcePathStyle addresses buckets as endpoint/bucket/key instead of
	// bucket.endpoint/key (RAIS_S3_FORCEPATHSTYLE), as MinIO and most
	// S3-compatible stores on one host need.
	ForcePathStyle bool
	// Region is the bucket's region (AWS_REGION). Empty means us-east-1
	// unless the store says otherwise.
	Region string
	// AccessKey and SecretKey sign requests. Empty means the standard
	// chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and
	// AWS_SESSION_TOKEN), ~/.aws/credentials, then the instance's IAM role;
	// with none of them, requests are anonymous (a public bucket).
	AccessKey, SecretKey string

	// Dir is the source cache directory (CacheDir/sources). Required.
	Dir string
	// MaxBytes is the source cache's budget; least recently used objects
	// are removed to stay under it. Zero means 10 GB.
	MaxBytes int64
	// MinFreeBytes and MinFreePercent are the free space Dir's file system
	// keeps (CacheMinFree): below the larger, nothing more is cached and
	// reads go to the store uncached. Zero means none.
	MinFreeBytes   int64
	MinFreePercent float64

	// Timeout bounds how long a request to the store may go without a
	// byte: the answer's headers, then every read of its body (an idle
	// timeout, so a large download is not cut off while it progresses).
	// Zero means 5 s.
	Timeout time.Duration
	// BreakerFailures is how many failures of the store in a row open the
	// circuit breaker: requests then fail at once (or are answered from the
	// cache) instead of each waiting for Timeout. Zero means 5.
	BreakerFailures int
	// BreakerCooldown is how long the breaker stays open before one probe
	// request is let through; a success closes it, a failure doubles the
	// wait, up to 16 times this. Zero means 5 s.
	BreakerCooldown time.Duration

	// BlockSize is the unit of ranged reads and of the cache's bitmap.
	// Zero means 64 KiB: a TIFF directory or a 256² JPEG tile is one or
	// two blocks, and a run of missing blocks is one request.
	BlockSize int64

	// OnEvict is called (without locks held) when an object version leaves
	// the cache: evicted, or replaced by a newer version. Readers opened
	// on it keep working; the renderer drops what it keeps open on it.
	OnEvict func(Object)
	// Logger receives warnings. Nil means slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = DefaultBreakerFailures
	}
	if c.BreakerCooldown == 0 {
		c.BreakerCooldown = DefaultBreakerCooldown
	}
	if c.BlockSize == 0 {
		c.BlockSize = 64 << 10
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// IsS3 reports whether a TilePath names an S3 bucket.
func IsS3(tilePath string) bool { return strings.HasPrefix(tilePath, "s3://") }

// ParseURL splits "s3://bucket/prefix" into the bucket and the prefix
// (without leading or trailing slashes).
func ParseURL(s string) (bucket, prefix string, err error) {
	bucket, prefix, err = s3conf.ParseURL(s)
	return bucket, strings.TrimSuffix(prefix, "/"), err
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := ParseURL(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("TilePath: %w", err))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("SourceCacheDir: S3 sources need a source cache directory (set CacheDir or SourceCacheDir)"))
	}
	if c.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("SourceCacheMaxBytes: %d must be >= 0", c.MaxBytes))
	}
	if c.MinFreeBytes < 0 || c.MinFreePercent < 0 || c.MinFreePercent >= 100 {
		errs = append(errs, errors.New("CacheMinFree: must be >= 0 and below 100%"))
	}
	if c.Timeout < 0 || c.BreakerCooldown < 0 || c.BreakerFailures < 0 {
		errs = append(errs, errors.New("S3Timeout, S3BreakerCooldown, S3BreakerFailures: must be >= 0"))
	}
	if c.BlockSize < 0 || (c.BlockSize > 0 && (c.BlockSize < 4<<10 || c.BlockSize > 16<<20)) {
		errs = append(errs, fmt.Errorf("BlockSize: %d must be between 4 KiB and 16 MiB", c.BlockSize))
	}
	return errors.Join(errs...)
}

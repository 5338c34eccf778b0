// Package s3conf is how iiif-proxy connects to an S3-compatible object
// store, shared by the S3 sources and the shared render tier: the endpoint,
// TLS, path-style addressing, region and credentials as RAIS documents them
// (the configuration's S3Endpoint, S3DisableSSL and S3ForcePathStyle, which
// RAIS_S3_ENDPOINT, RAIS_S3_DISABLESSL and RAIS_S3_FORCEPATHSTYLE set, and
// the standard AWS_* variables), plus the short timeouts a request path
// needs.
//
// Credentials come from minio-go's chain (AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, then ~/.aws/credentials, then
// the instance's IAM role), unless AccessKey is set.
package s3conf

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Config is a connection to one S3-compatible store.
type Config struct {
	// Endpoint is the store's host[:port], without a scheme
	// (RAIS_S3_ENDPOINT). Empty means AWS S3 (s3.amazonaws.com).
	Endpoint string
	// DisableSSL speaks plain HTTP (RAIS_S3_DISABLESSL). False means HTTPS.
	DisableSSL bool
	// ForcePathStyle addresses buckets as host/bucket rather than
	// bucket.host (RAIS_S3_FORCEPATHSTYLE), as MinIO and most
	// self-hosted stores want. False means the library decides.
	ForcePathStyle bool
	// Region is the bucket's region (AWS_REGION, else AWS_DEFAULT_REGION).
	// Empty means the library asks the store.
	Region string
	// AccessKey and SecretKey, when AccessKey is set, are static
	// credentials; empty means the credential chain (see the package doc).
	AccessKey, SecretKey string
	// DialTimeout bounds connecting to the store. Zero means 2s.
	DialTimeout time.Duration
	// HeaderTimeout bounds waiting for a response's headers once a request
	// is sent. Zero means 10s. Callers bound whole operations with their
	// contexts; this stops a store that accepts and never answers.
	HeaderTimeout time.Duration
	// MaxRetries is how many times the library tries a failing request.
	// Zero means 1 (no retry): a request path cannot wait through
	// minio-go's default ten tries with backoff, and callers that want
	// another try decide so themselves.
	MaxRetries int
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := c.hostAndTLS(); err != nil {
		errs = append(errs, err)
	}
	if c.DialTimeout < 0 || c.HeaderTimeout < 0 || c.MaxRetries < 0 {
		errs = append(errs, errors.New("S3 timeouts and retries must not be negative"))
	}
	return errors.Join(errs...)
}

// Region is the region the standard AWS variables name: AWS_REGION, else
// AWS_DEFAULT_REGION (getenv is os.Getenv, or a test's).
func Region(getenv func(string) string) string {
	if r := getenv("AWS_REGION"); r != "" {
		return r
	}
	return getenv("AWS_DEFAULT_REGION")
}

// hostAndTLS is the endpoint's host[:port] and whether to use TLS: the
// endpoint is host[:port] (DisableSSL chooses plain HTTP), or, as some
// RAIS configurations write it, http:// or https:// and host[:port], the
// scheme deciding. Empty is AWS S3.
func (c Config) hostAndTLS() (host string, secure bool, err error) {
	host, secure = c.Endpoint, !c.DisableSSL
	if scheme, rest, ok := strings.Cut(host, "://"); ok {
		if scheme != "http" && scheme != "https" {
			return "", false, fmt.Errorf("S3Endpoint %q: want host[:port] or http(s)://host[:port]", c.Endpoint)
		}
		host, secure = strings.TrimSuffix(rest, "/"), scheme == "https"
	}
	if strings.Contains(host, "/") {
		return "", false, fmt.Errorf("S3Endpoint %q: want host[:port], without a path", c.Endpoint)
	}
	if host == "" {
		host = "s3.amazonaws.com"
	}
	return host, secure, nil
}

// Client returns a minio-go client for c.
func (c Config) Client() (*minio.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	endpoint, secure, _ := c.hostAndTLS()
	dial, header := c.DialTimeout, c.HeaderTimeout
	if dial == 0 {
		dial = 2 * time.Second
	}
	if header == 0 {
		header = 10 * time.Second
	}
	retries := c.MaxRetries
	if retries == 0 {
		retries = 1
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   dial,
		ResponseHeaderTimeout: header,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Bodies are images already compressed; asking for gzip would
		// make the transport hide Content-Length.
		DisableCompression: true,
	}
	var creds *credentials.Credentials
	if c.AccessKey != "" {
		creds = credentials.NewStaticV4(c.AccessKey, c.SecretKey, "")
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{Client: &http.Client{Transport: tr, Timeout: 5 * time.Second}},
		})
	}
	lookup := minio.BucketLookupAuto
	if c.ForcePathStyle {
		lookup = minio.BucketLookupPath
	}
	return minio.New(endpoint, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Transport:    tr,
		Region:       c.Region,
		BucketLookup: lookup,
		MaxRetries:   retries,
	})
}

// ParseURL splits "s3://bucket/prefix" into the bucket and the key prefix
// ("" or ending in "/"). The bucket must be a valid S3 bucket name; the
// prefix may not hold "." or ".." segments or empty segments.
func ParseURL(s string) (bucket, prefix string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "s3" || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("%q: want s3://bucket/prefix", s)
	}
	bucket = u.Host
	if err := s3utils.CheckValidBucketNameStrict(bucket); err != nil {
		return "", "", fmt.Errorf("%q: bucket %q: %w", s, bucket, err)
	}
	prefix = strings.TrimPrefix(u.Path, "/")
	if prefix == "" {
		return bucket, "", nil
	}
	prefix = strings.TrimSuffix(prefix, "/")
	for _, seg := range strings.Split(prefix, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", "", fmt.Errorf("%q: prefix %q has an empty, \".\" or \"..\" segment", s, prefix)
		}
	}
	return bucket, prefix + "/", nil
}

package purge

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of Config, also the configuration package's (one owner per
// setting).
const (
	DefaultQueueLen   = 1000
	DefaultAttempts   = 5
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = time.Minute
	DefaultTimeout    = 5 * time.Second
)

// Kind is what a target speaks.
type Kind uint8

const (
	// Ban sends one "BAN" request per purge, the URL regex in X-Ban-Url
	// (Varnish: ban("obj.http.x-url ~ " + req.http.X-Ban-Url)).
	Ban Kind = iota
	// Purge sends "PURGE" for each URL it can name (info.json of every
	// version form, and the bases): nginx, or Varnish's return (purge).
	Purge
	// Webhook POSTs a JSON description of the purge (Event), for a CDN's
	// invalidation API behind a small relay.
	Webhook
)

var kindNames = [...]string{"ban", "purge", "webhook"}

func (k Kind) String() string { return kindNames[k] }

// Target is one cache in front, parsed from "KIND URL".
type Target struct {
	Kind Kind
	// URL is where requests go. For ban and purge targets its path, when
	// not empty or "/", replaces Config.WebPath in the URLs and patterns
	// sent (a cache that serves the images under another path than the
	// proxy's IIIFWebPath); for a webhook it is the URL posted to.
	URL *url.URL
}

// ParseTarget parses "ban http://127.0.0.1:6081", "purge
// http://127.0.0.1:8080/images/iiif" or "webhook https://relay/purge".
func ParseTarget(s string) (Target, error) {
	kind, raw, ok := strings.Cut(strings.TrimSpace(s), " ")
	raw = strings.TrimSpace(raw)
	if !ok || raw == "" {
		return Target{}, fmt.Errorf("%q must be \"KIND URL\", KIND one of ban, purge, webhook", s)
	}
	var t Target
	switch strings.ToLower(kind) {
	case "ban":
		t.Kind = Ban
	case "purge":
		t.Kind = Purge
	case "webhook":
		t.Kind = Webhook
	default:
		return Target{}, fmt.Errorf("%q: kind %q is not one of ban, purge, webhook", s, kind)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return Target{}, fmt.Errorf("%q: %q must be an http:// or https:// URL", s, raw)
	}
	if t.Kind != Webhook && u.RawQuery != "" {
		return Target{}, fmt.Errorf("%q: a %s target's URL takes no query", s, t.Kind)
	}
	t.URL = u
	return t, nil
}

// String is the target as metrics and logs name it: the kind and the URL
// without user information or query, which may hold secrets.
func (t Target) String() string {
	u := *t.URL
	u.User, u.RawQuery = nil, ""
	return t.Kind.String() + " " + u.String()
}

// Config configures a Forwarder.
type Config struct {
	// Targets are the caches in front, each "KIND URL" (ParseTarget):
	// "ban http://127.0.0.1:6081", "purge http://127.0.0.1:8080",
	// "webhook https://relay.example.org/purge". Empty means none: the
	// Forwarder does nothing.
	Targets []string
	// WebPath is the path the proxy's IIIF URLs start with (IIIFWebPath).
	// Empty means "/iiif".
	WebPath string
	// BaseURL is the public scheme://host[:port] (IIIFBaseURL). When set,
	// the URLs a webhook gets are absolute, and PURGE requests carry its
	// host in Host (Varnish's default hash includes Host). Empty means
	// paths, and the target's own host.
	BaseURL string
	// Unversioned says URLs without a version segment are served
	// (UnversionedVersion is not 0), so their info.json is purged too.
	Unversioned bool
	// QueueLen bounds the requests waiting for each target; past it a
	// request is dropped and counted. Zero means DefaultQueueLen.
	QueueLen int
	// Attempts bounds the tries of one request. Zero means DefaultAttempts.
	Attempts int
	// Backoff is the wait before the first retry, doubled for each next
	// one up to MaxBackoff. Zero means DefaultBackoff.
	Backoff time.Duration
	// MaxBackoff caps the wait between tries. Zero means DefaultMaxBackoff.
	MaxBackoff time.Duration
	// Timeout bounds one request. Zero means DefaultTimeout.
	Timeout time.Duration
	// WebhookToken, when set, is sent to webhook targets as
	// "Authorization: Bearer {token}". Empty means no header.
	WebhookToken string
	// Client sends the requests. Nil means a client of its own.
	Client *http.Client
	// Logger receives failures and drops, at most one line a minute per
	// target. Nil means slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	for _, s := range c.Targets {
		if _, err := ParseTarget(s); err != nil {
			errs = append(errs, fmt.Errorf("PurgeForward: %w", err))
		}
	}
	if len(c.Targets) > 0 && c.WebPath != "" && !strings.HasPrefix(c.WebPath, "/") {
		// The key's own words (its owner is proxy/proxyconf, which this
		// package must not import): the configuration then tells it once.
		errs = append(errs, fmt.Errorf("IIIFWebPath: %q must start with /", c.WebPath))
	}
	if c.QueueLen < 0 {
		errs = append(errs, fmt.Errorf("PurgeForwardQueueLen: %d must be >= 0 (0: %d)", c.QueueLen, DefaultQueueLen))
	}
	if c.Attempts < 0 {
		errs = append(errs, fmt.Errorf("PurgeForwardAttempts: %d must be >= 0 (0: %d)", c.Attempts, DefaultAttempts))
	}
	if c.Backoff < 0 || c.MaxBackoff < 0 || c.Timeout < 0 {
		errs = append(errs, errors.New("PurgeForwardBackoff, PurgeForwardTimeout: must be >= 0"))
	}
	if strings.ContainsAny(c.WebhookToken, "\r\n") {
		errs = append(errs, errors.New("PurgeForwardToken: must be one line"))
	}
	return errors.Join(errs...)
}

// withDefaults fills c's zero values.
func (c Config) withDefaults() Config {
	if c.WebPath == "" {
		c.WebPath = "/iiif"
	}
	c.WebPath = strings.TrimRight(c.WebPath, "/")
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.QueueLen == 0 {
		c.QueueLen = DefaultQueueLen
	}
	if c.Attempts == 0 {
		c.Attempts = DefaultAttempts
	}
	if c.Backoff == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: c.Timeout}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

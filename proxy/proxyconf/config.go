// Package proxyconf is the IIIF front's own settings (package proxy): their
// defaults (Default) and their checks (Validate), without fasthttp, so that
// the configuration package (internal/config) takes them from their one
// owner and proxy.New fills and checks its Config with the same values.
package proxyconf

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/iiif-proxy/iiif-proxy/cache/cacheconf"
)

// Defaults and bounds, also the configuration package's.
const (
	DefaultWebPath       = "/iiif"
	DefaultRenderTimeout = cacheconf.DefaultRenderTimeout // the cache's, which bounds the fills
	DefaultRenderWait    = cacheconf.DefaultRenderWait
	DefaultWriteTimeout  = 2 * time.Minute
	// DefaultMaxInFlightBytes is the configuration's default bound on
	// response bytes being written (proxy.Config's zero is no bound): room
	// for two of the largest responses the default image limits allow (a
	// 100-megapixel PNG is about 180 MB) beside thousands of tiles, and a
	// quarter of a 2 GB machine.
	DefaultMaxInFlightBytes = 512 << 20
	// MinSigningKeyLen is the shortest signing key accepted: HMAC-SHA256
	// keeps its full strength with keys of its output size or more.
	MinSigningKeyLen = 32
)

// DefaultTrustedProxies are loopback: a reverse proxy on the same machine.
func DefaultTrustedProxies() []string { return []string{"127.0.0.0/8", "::1"} }

// Config is the front's settings as an operator writes them (keys in
// comments). Zero durations are reported by Validate: proxy.New gives them
// their defaults, a configuration file must say what it means.
type Config struct {
	WebPath              string        // IIIFWebPath; must start with "/"
	BaseURL              string        // IIIFBaseURL; "" or http(s)://…
	RenderTimeout        time.Duration // RenderTimeout; > 0
	RenderWait           time.Duration // RenderWait; > 0
	WriteTimeout         time.Duration // WriteTimeout; > 0
	MaxInFlightBytes     int64         // MaxInFlightBytes; 0: no bound
	StaleWhileRevalidate time.Duration // StaleWhileRevalidate; >= 0
	TrustedProxies       []string      // TrustedProxies: addresses or networks
	SignedPrefixes       []string      // SignedPrefixes: need SigningKeys
	SigningKeys          []string      // SigningKeys: MinSigningKeyLen bytes or more
}

// Default returns the defaults.
func Default() Config {
	return Config{WebPath: DefaultWebPath, RenderTimeout: DefaultRenderTimeout, RenderWait: DefaultRenderWait,
		WriteTimeout: DefaultWriteTimeout, MaxInFlightBytes: DefaultMaxInFlightBytes, TrustedProxies: DefaultTrustedProxies()}
}

// Validate reports every problem with c at once, each message starting
// with the key the operator writes.
func (c Config) Validate() error {
	errs := []error{CheckWebPath(c.WebPath), CheckBaseURL(c.BaseURL), CheckSigning(c.SignedPrefixes, c.SigningKeys)}
	for _, d := range []struct {
		key string
		d   time.Duration
	}{{"RenderTimeout", c.RenderTimeout}, {"RenderWait", c.RenderWait}, {"WriteTimeout", c.WriteTimeout}} {
		if d.d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be > 0", d.key))
		}
	}
	if c.MaxInFlightBytes < 0 {
		errs = append(errs, errors.New("MaxInFlightBytes: must be >= 0"))
	}
	if c.StaleWhileRevalidate < 0 {
		errs = append(errs, errors.New("StaleWhileRevalidate: must be >= 0"))
	}
	if _, err := ParseTrustedProxies(c.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// CheckWebPath checks IIIFWebPath.
func CheckWebPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("IIIFWebPath: %q must start with /", p)
	}
	return nil
}

// CheckBaseURL checks IIIFBaseURL ("" means: from each request).
func CheckBaseURL(u string) error {
	if u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return fmt.Errorf("IIIFBaseURL: %q must start with http:// or https://", u)
	}
	return nil
}

// CheckSigning checks signed URLs' settings: prefixes need keys, and every
// key is long enough.
func CheckSigning(prefixes, keys []string) error {
	var errs []error
	if len(prefixes) > 0 && len(keys) == 0 {
		errs = append(errs, errors.New("SignedPrefixes: needs signing keys (SigningKeyFile, RAIS_SIGNINGKEYS or SigningKeys)"))
	}
	for i, k := range keys {
		if len(k) < MinSigningKeyLen {
			errs = append(errs, fmt.Errorf("SigningKeys: key %d has %d bytes; use at least %d (e.g. `openssl rand -hex 32`)", i+1, len(k), MinSigningKeyLen))
		}
	}
	return errors.Join(errs...)
}

// ParseTrustedProxies parses TrustedProxies: addresses (a host) or
// networks; blank entries are skipped.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		} else {
			errs = append(errs, fmt.Errorf("TrustedProxies: %q is neither an address nor a network", s))
		}
	}
	return out, errors.Join(errs...)
}

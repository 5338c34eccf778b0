package proxy

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/proxy/proxyconf"
)

// TestWithFront: every front setting the configuration gives lands in the
// proxy's Config, and a bad TrustedProxies entry trusts nobody more.
func TestWithFront(t *testing.T) {
	f := proxyconf.Config{WebPath: "/images", BaseURL: "https://img.example.org", RenderTimeout: 7 * time.Second,
		RenderWait: 3 * time.Second, WriteTimeout: 11 * time.Second, MaxInFlightBytes: 99,
		StaleWhileRevalidate: time.Minute, TrustedProxies: []string{"10.0.0.1", "192.168.0.0/16"}}
	c, err := Config{SourceCacheLen: 5}.WithFront(f)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{SourceCacheLen: 5, WebPath: "/images", BaseURL: "https://img.example.org",
		RenderTimeout: 7 * time.Second, RenderWait: 3 * time.Second, WriteTimeout: 11 * time.Second,
		MaxInFlightBytes: 99, StaleWhileRevalidate: time.Minute,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32"), netip.MustParsePrefix("192.168.0.0/16")}}
	if c.WebPath != want.WebPath || c.BaseURL != want.BaseURL || c.RenderTimeout != want.RenderTimeout ||
		c.RenderWait != want.RenderWait || c.WriteTimeout != want.WriteTimeout || c.MaxInFlightBytes != want.MaxInFlightBytes ||
		c.StaleWhileRevalidate != want.StaleWhileRevalidate || c.SourceCacheLen != 5 || !slices.Equal(c.TrustedProxies, want.TrustedProxies) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}

	f.TrustedProxies = []string{"10.0.0.1", "nonsense"}
	c, err = Config{}.WithFront(f)
	if err == nil || !strings.HasPrefix(err.Error(), "TrustedProxies:") {
		t.Errorf("bad entry: %v", err)
	}
	if !slices.Equal(c.TrustedProxies, want.TrustedProxies[:1]) || c.WebPath != "/images" {
		t.Errorf("with a bad entry: %+v", c)
	}
}

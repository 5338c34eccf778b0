package upstream

import (
	"strings"
	"testing"
	"time"
)

// The configuration package takes Default as its defaults and Validate as
// its checks: Default must be valid once it has a URL, what New fills a
// zero Config with must be Default, and Validate must check values as
// given (a zero MaxConns written in a file is a mistake, not "64").
func TestDefaultAndValidate(t *testing.T) {
	d := Default()
	d.URL = "http://127.0.0.1:8182/iiif/2"
	if err := d.Validate(); err != nil {
		t.Fatalf("Default fails: %v", err)
	}
	z := Config{URL: d.URL}
	z.setDefaults()
	z.Clock = nil
	if z.Timeout != d.Timeout || z.ConnectTimeout != d.ConnectTimeout || z.MaxConns != d.MaxConns || z.NotFoundTTL != d.NotFoundTTL ||
		z.MaxBodyBytes != d.MaxBodyBytes || z.FailuresToDown != d.FailuresToDown || z.Backoff != d.Backoff || z.MaxBackoff != d.MaxBackoff {
		t.Errorf("zero Config with defaults %+v, Default %+v", z, d)
	}
	bad := d
	bad.URL, bad.MaxConns, bad.Timeout = "ftp://x", 0, 0
	bad.Limits.MaxArea = -1
	err := bad.Validate()
	for _, want := range []string{`Upstream: "ftp://x"`, "UpstreamMaxConns: 0 must be >= 1", "UpstreamTimeout", "ImageMaxArea: -1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in %v", want, err)
		}
	}
	if d.NotFoundTTL = -time.Second; d.Validate() != nil {
		t.Error("a negative NotFoundTTL (never remembered) is refused")
	}
}

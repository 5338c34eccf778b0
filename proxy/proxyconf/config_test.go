package proxyconf

import (
	"strings"
	"testing"
)

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := ParseTrustedProxies(Default().TrustedProxies)
	if err != nil || len(p) != 2 || !p[0].Addr().IsLoopback() {
		t.Errorf("default trusted proxies %v %v", p, err)
	}
}

func TestEveryProblemOnceUnderItsKey(t *testing.T) {
	c := Config{WebPath: "iiif", BaseURL: "ftp://x", WriteTimeout: -1, MaxInFlightBytes: -1,
		StaleWhileRevalidate: -1, TrustedProxies: []string{"nope", " ", "10.0.0.0/8"},
		SignedPrefixes: []string{"private/"}}
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	for _, key := range []string{"IIIFWebPath", "IIIFBaseURL", "RenderTimeout", "RenderWait", "WriteTimeout",
		"MaxInFlightBytes", "StaleWhileRevalidate", "TrustedProxies", "SignedPrefixes"} {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, key+":") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d lines, want 1:\n%s", key, n, err)
		}
	}
	if err := CheckSigning(nil, []string{strings.Repeat("k", MinSigningKeyLen-1), strings.Repeat("k", MinSigningKeyLen)}); err == nil ||
		!strings.Contains(err.Error(), "SigningKeys: key 1 has 31 bytes") || strings.Contains(err.Error(), "key 2") {
		t.Errorf("short keys: %v", err)
	}
}

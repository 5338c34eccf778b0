//go:build cgo

package proxy

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/renderer/vips"
)

func TestCheckBearer(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"Bearer s3cret", true},
		{"bearer s3cret", true}, // RFC 9110: the scheme is case-insensitive
		{"BEARER s3cret", true},
		{"  Bearer   s3cret  ", true},
		{"Bearer s3cre", false},
		{"Bearer s3cret2", false},
		{"Basic s3cret", false},
		{"s3cret", false},
		{"Bearer", false},
		{"", false},
	} {
		if got := checkBearer([]byte(tc.header), "s3cret"); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.header, got, tc.want)
		}
	}
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fromIP is an HTTP client whose connections come from a given loopback
// address, so two clients are two peers.
func fromIP(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

func TestFailedAdminTokensAreRateLimitedPerIP(t *testing.T) {
	cp := serveCached(t, tilePath, 0, "s3cret")
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	cp.p.authFails.now = clock.now
	status := func(c *http.Client, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, cp.admin+"/stats", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	a, b := fromIP("127.0.0.1"), fromIP("127.0.0.2")
	for i := range authBurst {
		if code, _ := status(a, "Bearer guess"); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, code)
		}
	}
	code, retry := status(a, "Bearer guess")
	if code != http.StatusTooManyRequests || retry != "2" {
		t.Fatalf("after %d failures: %d Retry-After %q, want 429 and 2", authBurst, code, retry)
	}
	// Blocked means blocked, even with the right token: no guessing at speed.
	if code, _ := status(a, "Bearer s3cret"); code != http.StatusTooManyRequests {
		t.Fatalf("right token while blocked: %d, want 429", code)
	}
	// Another address is not affected, and lower-case "bearer" works.
	if code, _ := status(b, "bearer s3cret"); code != http.StatusOK {
		t.Fatalf("other IP with the token: %d, want 200", code)
	}
	// One attempt comes back per authEvery.
	clock.add(authEvery)
	if code, _ := status(a, "Bearer s3cret"); code != http.StatusOK {
		t.Fatalf("after %s: %d, want 200", authEvery, code)
	}
	// A changed token (SIGHUP) applies at once.
	cp.p.SetAdminToken("n3w")
	if code, _ := status(b, "Bearer n3w"); code != http.StatusOK {
		t.Fatalf("new token: %d", code)
	}
}

// TestPublicAdminWithoutTokenIsReadOnly: RAIS's AdminAddress ":12416" with
// no token serves metrics and stats, and refuses purges until a token is set.
func TestPublicAdminWithoutTokenIsReadOnly(t *testing.T) {
	cp := serveWith(t, vips.Config{TilePath: tilePath}, Config{AdminPublic: true}, 0, "", true)
	if r := get(t, cp.base+"pattern.tif/info.json"); r.status != http.StatusOK {
		t.Fatalf("info.json: %d", r.status)
	}
	for _, path := range []string{"/metrics", "/stats"} {
		if r := get(t, cp.admin+path); r.status != http.StatusOK {
			t.Errorf("GET %s: %d, want 200 (read-only, as RAIS)", path, r.status)
		}
	}
	for _, path := range []string{"/cache", "/cache/ids/pattern.tif", "/cache/tiers/info"} {
		for _, m := range []string{http.MethodDelete, http.MethodPost} {
			r := do(t, m, cp.admin+path, nil)
			if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "AdminToken") {
				t.Errorf("%s %s without a token: %d %s, want 403 naming AdminToken", m, path, r.status, r.body)
			}
		}
	}
	if r := get(t, cp.base+"pattern.tif/info.json"); r.header.Get("X-Cache") != "HIT" {
		t.Errorf("a refused purge purged: X-Cache %q", r.header.Get("X-Cache"))
	}
	// A token set later (SIGHUP) opens purges to its holder only.
	cp.p.SetAdminToken("t0ken")
	if r := do(t, http.MethodDelete, cp.admin+"/cache/ids/pattern.tif", nil); r.status != http.StatusUnauthorized {
		t.Errorf("purge without the token once set: %d, want 401", r.status)
	}
	if r := do(t, http.MethodDelete, cp.admin+"/cache/ids/pattern.tif", map[string]string{"Authorization": "Bearer t0ken"}); r.status != http.StatusOK {
		t.Errorf("purge with the token: %d %s", r.status, r.body)
	}
	// And dropped again, purges are refused again: the same rule as at start.
	cp.p.SetAdminToken("")
	if r := do(t, http.MethodDelete, cp.admin+"/cache", nil); r.status != http.StatusForbidden {
		t.Errorf("purge after the token was dropped: %d, want 403", r.status)
	}
}

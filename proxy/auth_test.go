//go:build cgo

package proxy

import (
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
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

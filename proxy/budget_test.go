//go:build cgo

package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/renderer/vips"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// waitUntil polls cond until it holds, failing after a generous bound: the
// test asserts counts; the bound only stops a broken build from hanging.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// slowGet sends a GET on a connection whose receive buffer is tiny and never
// reads from it: the server's write blocks once the socket buffers are full.
func slowGet(t *testing.T, rawURL string) net.Conn {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", u.EscapedPath(), u.Host)
	return c
}

// bigResponse serves a grainy scan whose full-size PNG (a few megabytes,
// more than loopback's socket buffers hold) is the slow readers' response.
func bigResponse(t *testing.T) (*cachedProxy, string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := vips.Generate(filepath.Join(dir, "scan"), vips.Scan, vips.PyramidTIFF, 3200, 2400, 1); err != nil {
		t.Fatal(err)
	}
	cp := serveCached(t, dir, 0, "")
	return cp, cp.base + "scan.tif/full/max/0/default.png"
}

func TestSlowReadersStayInsideTheInFlightBudget(t *testing.T) {
	cp, big := bigResponse(t)
	first := get(t, big) // rendered and stored: the slow readers below get disk hits
	n := int64(len(first.body))
	if first.status != http.StatusOK || n < 8<<20 {
		t.Fatalf("want a 200 larger than the socket buffers, got %d with %d bytes", first.status, n)
	}
	// A request reserves its estimate (3 bytes a pixel) until it has its
	// body, then holds the body's size: room for one held body and one
	// reservation, so two slow readers get in, and a third does not.
	est := cp.p.budget.estimate(3200, 2400, false)
	cp.p.budget.limit.Store(n + est + n/2)

	var slow []net.Conn
	for i := range int64(2) { // one after the other: each reserves the estimate until it has its body
		slow = append(slow, slowGet(t, big))
		waitUntil(t, "a slow reader's body in flight", func() bool {
			s := cp.p.Stats().InFlight
			return s.Responses == i+1 && s.Bytes == (i+1)*n
		})
	}
	if got := cp.p.Stats().InFlight.Bytes; got != 2*n {
		t.Fatalf("in-flight bytes %d, want %d", got, 2*n)
	}

	// A third large response does not fit: a fast 503 with Retry-After,
	// before the cache is read or anything rendered.
	hits, renders := cp.p.Stats().Tiers["other"].DiskHits, cp.renders()
	r := get(t, big)
	if got := cp.p.Stats().Tiers["other"].DiskHits; got != hits || cp.renders() != renders {
		t.Errorf("a refused request read the cache (%d → %d hits) or rendered (%d → %d)", hits, got, renders, cp.renders())
	}
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("over the budget: got %d Retry-After %q, want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	// A small response still fits beside them.
	if r := get(t, cp.base+"scan.tif/0,0,256,256/256,/0/default.jpg"); r.status != http.StatusOK {
		t.Fatalf("small response beside the slow readers: %d", r.status)
	}
	// A big render is refused before it starts, not after.
	if r := get(t, cp.base+"scan.tif/full/max/0/default.tif"); r.status != http.StatusServiceUnavailable || cp.renders() != renders+1 {
		t.Fatalf("a big render beside the slow readers: %d, renders %d → %d (only the tile's)", r.status, renders, cp.renders())
	}
	if s := cp.p.Stats().InFlight; s.Refused != 2 {
		t.Fatalf("refused %d, want 2", s.Refused)
	}

	// The slow readers go: their bytes come back.
	for _, c := range slow {
		c.Close()
	}
	waitUntil(t, "the budget to be released", func() bool {
		s := cp.p.Stats().InFlight
		return s.Bytes == 0 && s.Responses == 0
	})
	if r := get(t, big); r.status != http.StatusOK || int64(len(r.body)) != n {
		t.Fatalf("after the slow readers left: %d with %d bytes, want 200 with %d", r.status, len(r.body), n)
	}
}

// A slow reader that reads the whole body in the end releases its bytes too
// (the stream is closed after a complete write, not only on a closed
// connection), and the bytes it read are the response.
func TestASlowReaderThatFinishesReleasesItsBytes(t *testing.T) {
	cp, big := bigResponse(t)
	first := get(t, big)
	c := slowGet(t, big)
	waitUntil(t, "one response in flight", func() bool { return cp.p.Stats().InFlight.Responses == 1 })
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, len(first.body)+1)
	m, _ := io.ReadFull(resp.Body, body)
	if m != len(first.body) || !bytes.Equal(body[:m], first.body) {
		t.Fatalf("slow reader got %d bytes, want the %d of the response", m, len(first.body))
	}
	waitUntil(t, "the budget to be released", func() bool { return cp.p.Stats().InFlight.Bytes == 0 })
}

func TestResponsesAboveMaxEntryBytesAreServedNotStored(t *testing.T) {
	cp := serveCached(t, tilePath, 0, "")
	lim := *cp.p.cache.Tier(rules.TierOther).Conf()
	lim.MaxEntryBytes = 1000
	cp.p.cache.SetTierConfig(rules.TierOther, lim)
	for _, tc := range []struct {
		name, path string
		wantSecond string
		tooLarge   uint64
	}{
		{"small fits", "pattern.tif/full/8,/0/default.png", xHit, 0},
		{"large is not stored", "pattern.tif/full/max/0/default.png", xMiss, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := cp.p.Stats().Tiers["other"].TooLarge
			a, b := get(t, cp.base+tc.path), get(t, cp.base+tc.path)
			if a.status != http.StatusOK || b.status != http.StatusOK || !bytes.Equal(a.body, b.body) {
				t.Fatalf("statuses %d %d, same body %v", a.status, b.status, bytes.Equal(a.body, b.body))
			}
			if got := b.header.Get("X-Cache"); got != tc.wantSecond {
				t.Errorf("second X-Cache %s, want %s", got, tc.wantSecond)
			}
			if got := cp.p.Stats().Tiers["other"].TooLarge - before; got != 2*tc.tooLarge {
				t.Errorf("too large counted %d, want %d", got, 2*tc.tooLarge)
			}
		})
	}
}

// A request whose estimate exceeds the whole budget is capped at it, so it
// is served when nothing else is in flight and refused only beside others.
func TestAnEstimateAboveTheLimitFitsAnIdleBudget(t *testing.T) {
	var b budget
	b.limit.Store(1 << 20)
	n := b.estimate(4000, 4000, true)
	if n != 1<<20 {
		t.Fatalf("estimate = %d, want the limit %d", n, 1<<20)
	}
	if !b.acquire(n) {
		t.Fatal("an idle budget refused a request capped at its limit")
	}
	if b.acquire(b.estimate(10, 10, false)) {
		t.Fatal("a second request fit beside one holding the whole budget")
	}
	b.release(n)
	if small := b.estimate(10, 10, false); small != 10*10*3+1024 {
		t.Errorf("estimate of a 10x10 image = %d", small)
	}
}

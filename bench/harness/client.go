package harness

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/iiif-proxy/iiif-proxy/bench/harness/workload"
)

// client sends GETs to one host. Safe for concurrent use; each caller brings
// its own fasthttp Request and Response to reuse.
type client struct {
	hc        *fasthttp.HostClient
	keepAlive bool
}

// newClient returns a client for base's scheme and host that keeps up to
// maxConns connections. fasthttp's retries are off, a load tester must see
// every failure, except the one browsers make too: a request sent on a
// kept-alive connection that the server had already closed is sent once
// more on a new one.
func newClient(base string, maxConns int, keepAlive bool, timeout time.Duration) (*client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("target %q: %v", base, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("target %q: want http:// or https://HOST[:PORT]/PATH", base)
	}
	addr := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	hc := &fasthttp.HostClient{
		Addr:                      addr,
		IsTLS:                     u.Scheme == "https",
		TLSConfig:                 &tls.Config{ServerName: u.Hostname()},
		MaxConns:                  maxConns,
		MaxConnWaitTimeout:        timeout,
		ReadTimeout:               timeout,
		WriteTimeout:              timeout,
		MaxIdleConnDuration:       time.Minute,
		MaxIdemponentCallAttempts: 2,
		RetryIfErr: func(_ *fasthttp.Request, _ int, err error) (bool, bool) {
			return false, errors.Is(err, io.EOF) || errors.Is(err, fasthttp.ErrConnectionClosed)
		},
		DisablePathNormalizing:   true, // send %2F in identifiers as given
		NoDefaultUserAgentHeader: true,
		ReadBufferSize:           16 << 10,
	}
	return &client{hc: hc, keepAlive: keepAlive}, nil
}

// response is what the harness keeps of one response.
type response struct {
	status int
	bytes  int
	cache  string // X-Cache's first word, upper case, interned; "" if absent
	tier   string // X-Cache-Tier, interned; "" if absent
}

// get sends GET url. req and resp are the caller's, reset here.
func (c *client) get(url string, req *fasthttp.Request, resp *fasthttp.Response) (response, error) {
	req.Reset()
	resp.Reset()
	req.SetRequestURI(url)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.Header.SetUserAgent("iiif-bench")
	if !c.keepAlive {
		req.SetConnectionClose()
	}
	if err := c.hc.Do(req, resp); err != nil {
		return response{}, err
	}
	return response{
		status: resp.StatusCode(),
		bytes:  len(resp.Body()),
		cache:  cacheWord(resp.Header.Peek("X-Cache")),
		tier:   intern(resp.Header.Peek("X-Cache-Tier"), tiers),
	}, nil
}

var (
	tiers = []string{workload.TierTile, workload.TierThumbnail, workload.TierInfo, workload.TierOther}
	// X-Cache words of iiif-proxy, nginx ($upstream_cache_status), Varnish
	// and Apache mod_cache ("HIT from host").
	cacheWords = []string{"HIT", "MISS", "COLLAPSED", "REVALIDATED", "BYPASS", "EXPIRED", "STALE",
		"UPDATING", "REVALIDATE", "PEER", "SHARED"}
	// hitWords are the X-Cache words that mean the response came from a cache.
	// SHARED is iiif-proxy's shared render tier: another node rendered it.
	hitWords = map[string]bool{"HIT": true, "REVALIDATED": true, "REVALIDATE": true, "STALE": true, "UPDATING": true,
		"SHARED": true}
	// renderWords are the words that mean the origin made this response
	// for this request.
	renderWords = map[string]bool{"MISS": true, "EXPIRED": true, "BYPASS": true}
)

// cacheWord returns X-Cache's first word in upper case, without allocating
// for the known ones.
func cacheWord(v []byte) string {
	v = bytes.TrimSpace(v)
	if i := bytes.IndexAny(v, " ,;"); i >= 0 {
		v = v[:i]
	}
	if len(v) == 0 {
		return ""
	}
	for _, w := range cacheWords {
		if bytes.EqualFold(v, []byte(w)) {
			return w
		}
	}
	return string(bytes.ToUpper(v[:min(len(v), 32)]))
}

// intern returns the known string equal to v, or a copy of v.
func intern(v []byte, known []string) string {
	if len(v) == 0 {
		return ""
	}
	for _, k := range known {
		if string(v) == k {
			return k
		}
	}
	return string(v[:min(len(v), 32)])
}

// errKind names a transport error briefly, for counting.
func errKind(err error) string {
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout):
		return "timeout"
	case errors.Is(err, fasthttp.ErrConnectionClosed):
		return "connection closed"
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return "no free connections"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return "body too large"
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

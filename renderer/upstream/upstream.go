// Package upstream is the renderer of sidecar mode: it asks an existing IIIF
// server (RAIS, Cantaloupe, IIPImage, Loris, another iiif-proxy) over HTTP
// for what the proxy's cache does not have, so the proxy's tiers,
// collapsing, revalidation, purge, metrics and limits sit in front of it.
//
// Config.URL is the upstream's IIIF base without the version it speaks,
// e.g. "http://127.0.0.1:8182/iiif/2": an image's info.json is
// {URL}/{escaped identifier}/info.json. The version it speaks (2 or 3) is
// read from each info.json's @context, and images are asked for in that
// version's canonical form, so a 3.0 client can sit in front of a 2.1-only
// server. Identifiers are escaped as the proxy's own URLs escape them
// (rules.AppendEscapedID): "%2F" reaches the upstream as "%2F".
//
// A source's identity is the upstream info.json's ETag, else its
// Last-Modified, else a hash of the document itself; Info asks again with
// If-None-Match / If-Modified-Since, and a 304 keeps the description
// without moving the document. Dates are parsed leniently (RAIS writes
// numeric zones, not GMT).
//
// Failures: 404 is ErrNotFound and is remembered for Config.NotFoundTTL, so
// a crawler asking for missing images does not reach the upstream each
// time. An info.json the upstream answers 5xx or that cannot be used (not
// JSON, no size) is remembered as long: meanwhile the proxy forwards image
// requests in their normalised form (Forward), keyed by that form, without
// asking for the document each time. Another 4xx is a renderer.StatusError, passed through; 5xx, a
// refused connection and a timeout are renderer.UnavailableError, which the
// cache answers with a stale entry where it has one. After
// Config.FailuresToDown failures in a row the upstream is marked down and
// left alone: requests fail at once, except one probe per backoff (doubling
// from Config.Backoff up to Config.MaxBackoff), until a probe succeeds.
package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/iiif-proxy/iiif-proxy/internal/breaker"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/iiif-proxy/iiif-proxy/internal/lru"
	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// Config configures an Upstream.
type Config struct {
	// URL is the upstream's IIIF base, "http://host:port/prefix", with no
	// trailing slash needed. Required.
	URL string
	// Timeout bounds one request to the upstream, body included. Zero means
	// 30s.
	Timeout time.Duration
	// ConnectTimeout bounds establishing a connection. Zero means 2s.
	ConnectTimeout time.Duration
	// MaxConns bounds the connections open to the upstream at once; more
	// requests wait for one (until their context ends). Zero means 64.
	MaxConns int
	// NotFoundTTL is how long a 404 is remembered, and an info.json
	// answered 5xx or unusable (while the upstream is up). Zero means 10s;
	// negative means never remembered.
	NotFoundTTL time.Duration
	// MaxBodyBytes bounds a response body read from the upstream; a larger
	// one fails as unavailable. Zero means 256 MB.
	MaxBodyBytes int64
	// FailuresToDown is how many failures in a row mark the upstream down.
	// Zero means 3.
	FailuresToDown int
	// Backoff is the first wait before probing a down upstream; it doubles
	// up to MaxBackoff. Zero means 1s and 30s.
	Backoff, MaxBackoff time.Duration
	// Limits are the output limits the proxy enforces and advertises (the
	// upstream may have its own). Zero fields mean no limit.
	Limits rules.Limits
	// Clock tells the time. Nil means time.Now.
	Clock func() time.Time
}

// Defaults of Config, also the configuration package's (one owner per
// setting).
const (
	DefaultTimeout        = 30 * time.Second
	DefaultConnectTimeout = 2 * time.Second
	DefaultMaxConns       = 64
	DefaultNotFoundTTL    = 10 * time.Second
)

// Default returns the defaults of every field but URL and Limits (whose
// zero is no limit) and Clock: the values New gives their zero.
func Default() Config {
	return Config{Timeout: DefaultTimeout, ConnectTimeout: DefaultConnectTimeout, MaxConns: DefaultMaxConns,
		NotFoundTTL: DefaultNotFoundTTL, MaxBodyBytes: 256 << 20, FailuresToDown: 3, Backoff: time.Second,
		MaxBackoff: 30 * time.Second}
}

func (c *Config) setDefaults() {
	d := Default()
	c.URL = strings.TrimRight(c.URL, "/")
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.MaxConns == 0 {
		c.MaxConns = d.MaxConns
	}
	if c.NotFoundTTL == 0 {
		c.NotFoundTTL = d.NotFoundTTL
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.FailuresToDown == 0 {
		c.FailuresToDown = d.FailuresToDown
	}
	if c.Backoff == 0 {
		c.Backoff = d.Backoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = d.MaxBackoff
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
}

// Validate reports every problem with c at once, each message starting
// with the RAIS key the operator writes. It checks c as given, zero fields
// included: New calls it after filling them with their defaults.
func (c Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("Upstream: %q must be http://host:port/prefix (or https://)", c.URL))
	}
	if c.Timeout <= 0 || c.ConnectTimeout <= 0 {
		errs = append(errs, errors.New("UpstreamTimeout, UpstreamConnectTimeout: must be > 0"))
	}
	if c.MaxConns < 1 {
		errs = append(errs, fmt.Errorf("UpstreamMaxConns: %d must be >= 1", c.MaxConns))
	}
	if c.MaxBodyBytes < 1 || c.FailuresToDown < 1 || c.Backoff <= 0 || c.MaxBackoff < c.Backoff {
		errs = append(errs, errors.New("upstream: MaxBodyBytes, FailuresToDown and Backoff must be > 0, MaxBackoff >= Backoff"))
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Upstream renders by asking another IIIF server.
type Upstream struct {
	cfg      Config
	client   *http.Client
	now      func() time.Time
	notFound *lru.Cache[string, time.Time] // identifiers that were 404, and when
	badInfo  *lru.Cache[string, badInfo]   // identifiers whose info.json was answered 5xx or unusable
	health   breaker.Breaker               // the upstream's state: up (closed), or down until a probe succeeds
	live     atomic.Pointer[rules.Limits]  // set by SetLimits; nil: cfg.Limits
	stats    struct {
		requests, notModified, notFound, failures, timeouts, refused, latencyNs, renders atomic.Uint64
		inflight                                                                         atomic.Int64
	}
}

var (
	_ renderer.Renderer    = (*Upstream)(nil)
	_ renderer.Revalidator = (*Upstream)(nil)
	_ renderer.Documenter  = (*Upstream)(nil)
	_ renderer.Describer   = (*Upstream)(nil)
	_ renderer.Forwarder   = (*Upstream)(nil)
)

// New returns an Upstream for cfg.
func New(cfg Config) (*Upstream, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:           dialer.DialContext,
		MaxConnsPerHost:       cfg.MaxConns,
		MaxIdleConns:          cfg.MaxConns,
		MaxIdleConnsPerHost:   cfg.MaxConns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
		// Bodies are images: compressing them again costs CPU for nothing,
		// and the bytes must reach the client as the upstream made them.
		DisableCompression: true,
	}
	u := &Upstream{cfg: cfg, client: &http.Client{Transport: tr, Timeout: cfg.Timeout,
		// A redirect (RAIS's bare identifier → info.json) is followed by
		// the client; the proxy itself never asks for a bare identifier.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		now: cfg.Clock, notFound: lru.New[string, time.Time](4096), badInfo: lru.New[string, badInfo](4096)}
	u.health = breaker.Breaker{Limit: cfg.FailuresToDown, Cooldown: cfg.Backoff, MaxCooldown: cfg.MaxBackoff,
		Now: func() time.Time { return u.now() },
		OnChange: func(down bool) {
			if !down {
				// Back up: what it said of sources while failing is
				// not to be trusted any more.
				u.badInfo.RemoveFunc(func(string) bool { return true })
			}
		}}
	return u, nil
}

// Close drops idle connections.
func (u *Upstream) Close() error {
	u.client.CloseIdleConnections()
	return nil
}

// Limits returns the output limits in force.
func (u *Upstream) Limits() rules.Limits {
	if l := u.live.Load(); l != nil {
		return *l
	}
	return u.cfg.Limits
}

// SetLimits changes the output limits while serving (SIGHUP).
func (u *Upstream) SetLimits(l rules.Limits) error {
	if l.MaxArea < 0 || l.MaxWidth < 0 || l.MaxHeight < 0 {
		return fmt.Errorf("upstream: limits must be >= 0: %+v", l)
	}
	u.live.Store(&l)
	return nil
}

// source is the upstream's description of one image: Source.Detail.
type source struct {
	version      rules.Version
	doc          []byte // the info.json as the upstream wrote it
	etag         string // the upstream's validators, for conditional requests
	lastModified string
	sizes        []renderer.Size
	maxW, maxH   int
	maxArea      int64
}

// imageURL is {URL}/{escaped id}/{rest}.
func (u *Upstream) imageURL(id string, rest []byte) string {
	b := make([]byte, 0, len(u.cfg.URL)+len(id)*3+len(rest)+2)
	b = append(b, u.cfg.URL...)
	b = append(b, '/')
	b = rules.AppendEscapedID(b, id)
	b = append(b, '/')
	return string(append(b, rest...))
}

// Info describes id from the upstream's info.json.
func (u *Upstream) Info(ctx context.Context, id string) (*renderer.Source, error) {
	return u.info(ctx, id, nil)
}

// Revalidate describes id again, asking conditionally with prev's
// validators: a 304 returns prev itself, unchanged, without moving the
// document.
func (u *Upstream) Revalidate(ctx context.Context, prev *renderer.Source) (*renderer.Source, error) {
	return u.info(ctx, prev.ID, prev)
}

func (u *Upstream) info(ctx context.Context, id string, prev *renderer.Source) (*renderer.Source, error) {
	if at, ok := u.notFound.Get(id); ok && u.cfg.NotFoundTTL > 0 && u.now().Sub(at) < u.cfg.NotFoundTTL {
		return nil, renderer.ErrNotFound
	}
	if b, ok := u.badInfo.Get(id); ok && u.cfg.NotFoundTTL > 0 && u.now().Sub(b.at) < u.cfg.NotFoundTTL && u.upstreamUp() {
		return nil, b.err
	}
	hdr := http.Header{"Accept": {"application/json, application/ld+json"}}
	var ps *source
	if prev != nil {
		ps, _ = prev.Detail.(*source)
	}
	if ps != nil {
		if ps.etag != "" {
			hdr.Set("If-None-Match", ps.etag)
		}
		if ps.lastModified != "" {
			hdr.Set("If-Modified-Since", ps.lastModified)
		}
	}
	resp, body, err := u.get(ctx, u.imageURL(id, []byte("info.json")), hdr)
	if err != nil {
		return nil, err // not answered: nothing to remember
	}
	if resp.StatusCode == http.StatusNotModified && prev != nil {
		u.stats.notModified.Add(1)
		return prev, nil
	}
	err = u.check(id, resp, body)
	var src *renderer.Source
	if err == nil {
		src, err = parseInfo(id, body, resp.Header)
	}
	var ue *renderer.UnavailableError
	var se *renderer.SourceError
	if u.cfg.NotFoundTTL > 0 && (errors.As(err, &ue) || errors.As(err, &se)) && u.upstreamUp() {
		// The upstream answered, but not with a usable info.json: images
		// are forwarded without it (renderer.Forwarder), and asking again
		// for every one of them would double the traffic and count a
		// failure against the upstream's health each time. Not while
		// the upstream is down, and forgotten when it comes back (a 5xx
		// for every identifier is the upstream failing, not its
		// documents, and must not outlive it).
		u.badInfo.Add(id, badInfo{u.now(), err})
	}
	return src, err
}

// badInfo is an info.json answered 5xx or unusable, and when.
type badInfo struct {
	at  time.Time
	err error
}

// Render fetches res from the upstream, in the version its info.json
// speaks, in that version's canonical form.
func (u *Upstream) Render(ctx context.Context, src *renderer.Source, res rules.Resolved) (renderer.Image, error) {
	s, ok := src.Detail.(*source)
	if !ok {
		return renderer.Image{}, fmt.Errorf("upstream: source %q was not described by this renderer", src.ID)
	}
	res.Version = s.version
	var buf [96]byte
	url := u.imageURL(src.ID, res.AppendCanonical(buf[:0]))
	resp, body, err := u.get(ctx, url, nil)
	if err != nil {
		return renderer.Image{}, err
	}
	if err := u.check(src.ID, resp, body); err != nil {
		return renderer.Image{}, err
	}
	u.stats.renders.Add(1)
	mime := resp.Header.Get("Content-Type")
	if mime == "" {
		mime = res.Format.MIME()
	}
	mod := ParseTime(resp.Header.Get("Last-Modified"))
	if mod.IsZero() {
		mod = src.ModTime
	}
	return renderer.Image{Body: body, MIME: mime, ModTime: mod, Identity: src.Identity}, nil
}

// Forward fetches req from the upstream in its normalised form, for when
// the image's info.json cannot be had (answered 5xx, or unusable) and so
// neither its size nor the version the upstream speaks is known: the
// normalised form reads the same in both versions. The image has no
// Identity: a cache revalidating it asks for the info.json again.
func (u *Upstream) Forward(ctx context.Context, id string, req rules.Request) (renderer.Image, error) {
	var buf [96]byte
	resp, body, err := u.get(ctx, u.imageURL(id, req.AppendNormalised(buf[:0])), nil)
	if err != nil {
		return renderer.Image{}, err
	}
	if err := u.check(id, resp, body); err != nil {
		return renderer.Image{}, err
	}
	u.stats.renders.Add(1)
	mime := resp.Header.Get("Content-Type")
	if mime == "" {
		mime = req.Format.MIME()
	}
	return renderer.Image{Body: body, MIME: mime, ModTime: ParseTime(resp.Header.Get("Last-Modified")).UTC().Truncate(time.Second)}, nil
}

// check turns a non-200 answer into the contract's error.
func (u *Upstream) check(id string, resp *http.Response, body []byte) error {
	switch c := resp.StatusCode; {
	case c == http.StatusOK:
		return nil
	case c == http.StatusNotFound:
		u.stats.notFound.Add(1)
		if u.cfg.NotFoundTTL > 0 {
			u.notFound.Add(id, u.now())
		}
		return renderer.ErrNotFound
	case c >= 400 && c < 500:
		if len(body) > 4096 {
			body = body[:4096]
		}
		return &renderer.StatusError{Status: c, ContentType: resp.Header.Get("Content-Type"), Body: body}
	}
	// 5xx, or a status a IIIF server has no business sending (1xx, 3xx).
	return &renderer.UnavailableError{Status: resp.StatusCode, Err: fmt.Errorf("%s", resp.Status)}
}

var errDown = errors.New("the upstream is down; waiting before asking again")

// get sends one GET and reads the whole body, bounded; a network failure,
// a timeout or a 5xx counts against the upstream's health.
func (u *Upstream) get(ctx context.Context, url string, hdr http.Header) (*http.Response, []byte, error) {
	if !u.health.Allow() {
		u.stats.refused.Add(1)
		return nil, nil, &renderer.UnavailableError{Err: errDown}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	if hdr != nil {
		req.Header = hdr
	}
	req.Header.Set("User-Agent", "iiif-proxy")
	u.stats.requests.Add(1)
	u.stats.inflight.Add(1)
	defer u.stats.inflight.Add(-1)
	start := time.Now()
	resp, err := u.client.Do(req)
	var body []byte
	if err == nil {
		body, err = readBody(resp.Body, u.cfg.MaxBodyBytes)
		resp.Body.Close()
	}
	u.stats.latencyNs.Add(uint64(time.Since(start)))
	if err != nil {
		if ctx.Err() != nil {
			// The proxy gave up (nobody waits any more): not the
			// upstream's fault.
			u.health.Abandon()
			return nil, nil, ctx.Err()
		}
		u.stats.failures.Add(1)
		u.health.Done(false)
		ue := &renderer.UnavailableError{Err: err}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			ue.Timeout = true
			u.stats.timeouts.Add(1)
		}
		return nil, nil, ue
	}
	if resp.StatusCode >= 500 {
		u.stats.failures.Add(1)
	}
	u.health.Done(resp.StatusCode < 500)
	return resp, body, nil
}

var errTooLarge = errors.New("upstream response larger than UpstreamMaxBodyBytes")

func readBody(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, errTooLarge
	}
	return b, nil
}

// infoDoc is what the proxy reads from an upstream info.json, 2.1 or 3.0.
type infoDoc struct {
	Context json.RawMessage `json:"@context"`
	Width   int             `json:"width"`
	Height  int             `json:"height"`
	Tiles   []struct {
		Width        int   `json:"width"`
		Height       int   `json:"height"`
		ScaleFactors []int `json:"scaleFactors"`
	} `json:"tiles"`
	Sizes []struct {
		Width  int `json:"width"`
		Height int `json:"height"`
	} `json:"sizes"`
	MaxWidth  int   `json:"maxWidth"`
	MaxHeight int   `json:"maxHeight"`
	MaxArea   int64 `json:"maxArea"`
}

var identityVersion = map[rules.Version]string{rules.V2: "v2 ", rules.V3: "v3 "}

// parseInfo describes id from an upstream info.json and its headers.
func parseInfo(id string, body []byte, h http.Header) (*renderer.Source, error) {
	var d infoDoc
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, &renderer.UnavailableError{Err: fmt.Errorf("info.json of %q is not JSON: %w", id, err)}
	}
	if d.Width < 1 || d.Height < 1 || d.Width > rules.MaxDimension || d.Height > rules.MaxDimension {
		return nil, &renderer.SourceError{ID: id, Detail: fmt.Sprintf("the upstream's info.json gives a size of %d×%d", d.Width, d.Height)}
	}
	s := &source{version: rules.V2, doc: body, etag: h.Get("ETag"), lastModified: h.Get("Last-Modified"),
		maxW: d.MaxWidth, maxH: d.MaxHeight, maxArea: d.MaxArea}
	if bytes.Contains(d.Context, []byte("/image/3/")) {
		s.version = rules.V3
	}
	src := &renderer.Source{ID: id, Width: d.Width, Height: d.Height, TileWidth: 512, TileHeight: 512, Detail: s}
	if len(d.Tiles) > 0 && d.Tiles[0].Width > 0 {
		src.TileWidth = d.Tiles[0].Width
		src.TileHeight = d.Tiles[0].Height
		if src.TileHeight == 0 {
			src.TileHeight = src.TileWidth
		}
		src.ScaleFactors = d.Tiles[0].ScaleFactors
	}
	if len(src.ScaleFactors) == 0 {
		src.ScaleFactors = []int{1}
	}
	for _, sz := range d.Sizes {
		s.sizes = append(s.sizes, renderer.Size{Width: sz.Width, Height: sz.Height})
	}
	src.ModTime = ParseTime(s.lastModified).UTC().Truncate(time.Second)
	// The identity starts with the version the upstream speaks ("v2 ",
	// "v3 "): it is stored with every entry, so a description made from a
	// stored info.json (Describe) knows the upstream's version even from
	// the document the proxy built for the other one.
	src.Identity = identityVersion[s.version]
	switch {
	case s.etag != "":
		src.Identity += "etag:" + s.etag
	case s.lastModified != "" && !src.ModTime.IsZero():
		src.Identity += "lm:" + strconv.FormatInt(src.ModTime.Unix(), 10)
	default:
		// Neither validator: the document itself, so a re-made image of a
		// new size is still noticed.
		src.Identity += "doc:" + strconv.FormatUint(xxhash.Sum64(body), 16)
	}
	return src, nil
}

// Sizes are the upstream's own "sizes", within the proxy's limits.
func (u *Upstream) Sizes(src *renderer.Source) []renderer.Size {
	s, ok := src.Detail.(*source)
	if !ok {
		return nil
	}
	lim := u.Limits()
	var out []renderer.Size
	for _, z := range s.sizes {
		if (lim.MaxWidth > 0 && z.Width > lim.MaxWidth) || (lim.MaxHeight > 0 && z.Height > lim.MaxHeight) ||
			(lim.MaxArea > 0 && int64(z.Width)*int64(z.Height) > lim.MaxArea) {
			continue
		}
		out = append(out, z)
	}
	return out
}

// Document returns the upstream's own info.json of src when it speaks
// version v, for the proxy to serve as the upstream wrote it (its id
// rewritten); false when the upstream speaks the other version.
func (u *Upstream) Document(src *renderer.Source, v rules.Version) ([]byte, bool) {
	s, ok := src.Detail.(*source)
	if !ok || s.version != v || s.doc == nil {
		return nil, false
	}
	return s.doc, true
}

// Describe describes id from an info.json the proxy stored earlier (its
// info tier), for when the upstream cannot be asked: the size it gives
// keeps cache keys canonical while the upstream is down.
//
// The version the upstream speaks is the one its identity names (see
// parseInfo), whatever the document's: a v3 document the proxy built in
// front of a v2-only upstream gives the size, but images are still asked
// for in v2, and Document does not pass it off as the upstream's own.
// Identities stored before they named a version leave the document's.
func (u *Upstream) Describe(id string, doc []byte, identity string, mod time.Time) (*renderer.Source, error) {
	src, err := parseInfo(id, doc, http.Header{})
	if err != nil {
		return nil, err
	}
	s := src.Detail.(*source)
	for v, prefix := range identityVersion {
		if strings.HasPrefix(identity, prefix) && v != s.version {
			s.version, s.doc = v, nil
		}
	}
	src.Identity, src.ModTime = identity, mod
	return src, nil
}

// ParseTime parses an HTTP date leniently: the three forms of RFC 9110, and
// the numeric-zone and RFC 3339 forms some servers (RAIS) write. It returns
// the zero time when it cannot.
func ParseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	if t, err := http.ParseTime(s); err == nil {
		return t
	}
	for _, layout := range []string{time.RFC1123Z, time.RFC1123, "Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700",
		time.RFC3339Nano, time.RFC3339, time.UnixDate, time.RubyDate, "Mon Jan 2 15:04:05 2006 MST"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// upstreamUp reports whether the upstream is up (its breaker closed).
func (u *Upstream) upstreamUp() bool {
	state, _, _ := u.health.State()
	return state == "closed"
}

// Stats returns the renderer's counters, the upstream's among them.
func (u *Upstream) Stats() renderer.Stats {
	state, fails, downs := u.health.State()
	up := state == "closed"
	return renderer.Stats{
		Renders:  u.stats.renders.Load(),
		Failures: u.stats.failures.Load(),
		InFlight: u.stats.inflight.Load(),
		RenderNs: u.stats.latencyNs.Load(),
		Upstream: &renderer.UpstreamStats{
			URL: u.cfg.URL, Up: up, FailuresInARow: fails, Downs: downs,
			Requests: u.stats.requests.Load(), NotModified: u.stats.notModified.Load(),
			NotFound: u.stats.notFound.Load(), Errors: u.stats.failures.Load(),
			Timeouts: u.stats.timeouts.Load(), Refused: u.stats.refused.Load(),
			LatencyNs: u.stats.latencyNs.Load(),
		},
	}
}

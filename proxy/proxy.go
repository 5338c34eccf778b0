// Package proxy is the HTTP face of iiif-proxy: fasthttp handlers that route
// IIIF Image API 3.0 and 2.1 requests, answer info.json, images, the 303 from
// a bare identifier, HEAD, OPTIONS and CORS, and map every error to its
// status. It is the one place where errors become status codes.
//
// URLs: {WebPath}/3/{id}/… speaks 3.0 and {WebPath}/2/{id}/… speaks 2.1,
// e.g. /iiif/3/scan.tif/full/max/0/default.jpg. WebPath is RAIS's IIIFWebPath.
// {WebPath}/{id}/… with no version segment is RAIS's own form: it speaks
// Config.Unversioned (2.1 in RAIS and in the shipped configuration) and its ids and links keep
// that form (routing is in route.go).
//
// fasthttp reuses a RequestCtx after the handler returns: nothing here keeps
// a reference to its buffers past the handler (identifiers are cloned).
package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/iiif-proxy/iiif-proxy/cache"
	"github.com/iiif-proxy/iiif-proxy/proxy/proxyconf"
	"github.com/iiif-proxy/iiif-proxy/purge"
	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/store"
)

// Renderer is what the proxy needs from a renderer: the contract that the
// libvips renderer (renderer/vips) and the upstream client
// (renderer/upstream) implement.
type Renderer = renderer.Renderer

// Config configures a Proxy.
type Config struct {
	// WebPath is the path prefix of the IIIF service (RAIS's IIIFWebPath);
	// 3.0 is served under WebPath+"/3/", 2.1 under WebPath+"/2/". Empty
	// means "/iiif"; "/" serves at the root ("/3/…", "/2/…").
	WebPath string

	// BaseURL is the scheme and host that ids in info.json and Link headers
	// start with (RAIS's IIIFBaseURL), e.g. "https://images.example.org".
	// Empty means: from the request, "http://" plus its Host header, or
	// X-Forwarded-Proto and X-Forwarded-Host when the request comes from
	// one of TrustedProxies.
	BaseURL string

	// Unversioned is the version that URLs without a version segment
	// ({WebPath}/{id}/…, RAIS's form) speak: rules.V2 (as RAIS) or
	// rules.V3; ids in their info.json and their links keep the
	// unversioned form. Zero means such URLs are not served (404).
	Unversioned rules.Version

	// TrustedProxies are the addresses whose X-Forwarded-Proto and
	// X-Forwarded-Host are believed. Empty means nobody's: anyone could
	// otherwise make the ids of cached documents name their own host.
	TrustedProxies []netip.Prefix

	// RenderTimeout bounds how long one request waits for a render, queueing
	// included; past it the client gets 503. Zero means 60s.
	RenderTimeout time.Duration

	// RenderWait bounds how long a request waits for a render that another
	// request with the same key started (a collapsed miss); past it the
	// client gets 503 while the render goes on and is cached. Zero means 30s.
	RenderWait time.Duration

	// MaxInFlightBytes bounds the bytes of response bodies being written
	// at once, so slow readers cannot pin more memory than this; a response
	// that would go over it gets 503 with Retry-After. Zero means no bound.
	MaxInFlightBytes int64

	// WriteTimeout bounds how long writing one response may take; a client
	// that reads slower is cut off and its bytes released. Zero means 2m.
	WriteTimeout time.Duration

	// Tiers configures each cache tier, indexed by rules.Tier. A zero
	// TierConfig is an uncached tier.
	Tiers [rules.NumTiers]TierConfig

	// Classifier sorts requests into tiers.
	Classifier rules.Classifier

	// SourceCacheLen is how many images' descriptions (size, pyramid) stay
	// in memory, so a cache hit touches neither the source file nor libvips
	// (RAIS's InfoCacheLen). Zero means none.
	SourceCacheLen int

	// StaleWhileRevalidate is how long past its tier's Revalidate an entry
	// is still served at once while one background check of its source
	// runs (cache.Config). Zero means every check happens before serving.
	StaleWhileRevalidate time.Duration
	// Shared is the render tier shared by a fleet (package cache/shared),
	// behind the local tiers. Nil means none.
	Shared cache.Shared

	// Clock tells the time to the cache. Nil means time.Now.
	Clock func() time.Time

	// Signer protects identifiers under its prefixes with signed URLs.
	// Nil means no image is protected.
	Signer *Signer

	// AccessLog configures the access log: one line per request.
	AccessLog AccessLogConfig

	// AdminPublic says the admin listener is reachable beyond loopback
	// (RAIS's default AdminAddress ":12416"). Without a token, such a
	// listener serves its reads (GET /metrics, GET /stats) to anyone, as
	// RAIS does, and refuses purges with 403 until a token is set: reading
	// counters harms nobody, emptying the cache does. False (loopback) with
	// no token lets every admin request in.
	AdminPublic bool

	// Forward passes every purge on to the caches in front (Varnish,
	// nginx, a CDN's webhook): the admin API's, and those of sources found
	// changed. Nil means purges stay here.
	Forward *purge.Forwarder
	// Demo serves the demo page at "/" (demo.go): the images under
	// DemoRoot, each opening in OpenSeadragon or Mirador, served from the
	// binary. False means "/" is a 404 like any other non-IIIF path.
	Demo bool

	// DemoRoot is the directory the demo page lists (TilePath). Empty
	// lists nothing: the page still opens an identifier typed in (sidecar
	// mode).
	DemoRoot string

	// Logger receives the access log (accesslog.go) and every other
	// message; the level follows the status. Nil means slog.Default().
	Logger *slog.Logger
}

// WithFront returns c with the front's settings f, as the configuration
// gives them (proxyconf.Config, internal/config's Front): WebPath, BaseURL,
// RenderTimeout, RenderWait, WriteTimeout, MaxInFlightBytes,
// StaleWhileRevalidate and TrustedProxies, parsed. f's SignedPrefixes and
// SigningKeys are the caller's to make into a Signer (NewSigner): keys
// rotate on their own (SetSigner). A TrustedProxies entry that does not
// parse is left out (nobody more is trusted) and reported.
func (c Config) WithFront(f proxyconf.Config) (Config, error) {
	trusted, err := proxyconf.ParseTrustedProxies(f.TrustedProxies)
	c.WebPath, c.BaseURL, c.TrustedProxies = f.WebPath, f.BaseURL, trusted
	c.RenderTimeout, c.RenderWait, c.WriteTimeout = f.RenderTimeout, f.RenderWait, f.WriteTimeout
	c.MaxInFlightBytes, c.StaleWhileRevalidate = f.MaxInFlightBytes, f.StaleWhileRevalidate
	return c, err
}

// Proxy serves IIIF requests from a Renderer, through its cache tiers.
type Proxy struct {
	cfg      Config
	r        Renderer
	log      *slog.Logger
	prefix   []byte // WebPath without a trailing slash
	cache    *cache.Cache
	lastDate atomic.Pointer[dateCache]
	metrics  *metrics
	budget   budget                 // response bytes in flight
	signer   atomic.Pointer[Signer] // live: keys rotate on SIGHUP
	// adminToken is the admin bearer token, live; authFails limits failures.
	adminToken atomic.Pointer[string]
	authFails  *failLimiter
	access     *accessLog
	demo       *demo // nil: no demo page
}

// New returns a Proxy.
func New(cfg Config, r Renderer) (*Proxy, error) {
	// Defaults and checks are proxyconf's, the configuration's too.
	if cfg.WebPath == "" {
		cfg.WebPath = proxyconf.DefaultWebPath
	}
	if err := errors.Join(proxyconf.CheckWebPath(cfg.WebPath), proxyconf.CheckBaseURL(cfg.BaseURL)); err != nil {
		return nil, err
	}
	cfg.WebPath = strings.TrimRight(cfg.WebPath, "/")
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.RenderTimeout == 0 {
		cfg.RenderTimeout = proxyconf.DefaultRenderTimeout
	}
	if cfg.RenderWait == 0 {
		cfg.RenderWait = proxyconf.DefaultRenderWait
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = proxyconf.DefaultWriteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Proxy{cfg: cfg, r: r, log: cfg.Logger, prefix: []byte(cfg.WebPath)}
	p.cache = cache.New(cache.Config{Tiers: cfg.Tiers, SourceCacheLen: cfg.SourceCacheLen,
		RenderTimeout: cfg.RenderTimeout, RenderWait: cfg.RenderWait,
		StaleWhileRevalidate: cfg.StaleWhileRevalidate, Clock: cfg.Clock, Logger: cfg.Logger, Shared: cfg.Shared,
		OnSourceChanged: func(id string) { cfg.Forward.ID(id, purge.ReasonSourceChanged) }}, r)
	p.budget.limit.Store(cfg.MaxInFlightBytes)
	p.signer.Store(cfg.Signer)
	p.SetAdminToken("")
	p.authFails = newFailLimiter()
	p.access = newAccessLog(cfg.AccessLog)
	p.metrics = newMetrics(p.cache, r, &p.budget, cfg.Forward)
	if cfg.Demo {
		p.demo = newDemo(p, cfg.DemoRoot)
	}
	return p, nil
}

// Server returns a fasthttp server for p with the project's settings.
func (p *Proxy) Server() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                       p.Handle,
		Name:                          "iiif-proxy",
		ReadTimeout:                   30 * time.Second,
		WriteTimeout:                  p.cfg.WriteTimeout,
		IdleTimeout:                   2 * time.Minute,
		DisablePreParseMultipartForm:  true,
		DisableHeaderNamesNormalizing: false,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		// Big enough for the headers and a typical tile or thumbnail, so a
		// response leaves in one write instead of two.
		WriteBufferSize: 64 << 10,
		Logger:          slogPrinter{p.log},
	}
}

type slogPrinter struct{ l *slog.Logger }

func (s slogPrinter) Printf(format string, args ...any) { s.l.Warn(fmt.Sprintf(format, args...)) }

// Handle is the fasthttp handler.
func (p *Proxy) Handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	ctx.Response.Header.SetCanonical(hdrACAO, star)
	switch {
	case ctx.IsGet() || ctx.IsHead():
		p.serve(ctx)
	case ctx.IsOptions():
		h := &ctx.Response.Header
		h.Set("Allow", "GET, HEAD, OPTIONS")
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		if req := ctx.Request.Header.Peek("Access-Control-Request-Headers"); len(req) > 0 {
			h.SetBytesV("Access-Control-Allow-Headers", req)
		}
		h.Set("Access-Control-Max-Age", "86400")
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	default:
		ctx.Response.Header.Set("Allow", "GET, HEAD, OPTIONS")
		p.fail(ctx, errMethod)
	}
	p.metrics.response(ctx.Response.StatusCode())
	p.logRequest(ctx, start)
}

var (
	errMethod   = errors.New("method not allowed: use GET, HEAD or OPTIONS")
	errNotIIIF  = errors.New("not an IIIF path")
	errInternal = errors.New("internal error")
)

// b2s views b as a string without copying; the result dies with b.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// s2b views s as bytes without copying; the result must not be written.
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// Header names in canonical form, so fasthttp need not normalize them.
var (
	hdrACAO         = []byte("Access-Control-Allow-Origin")
	hdrACEH         = []byte("Access-Control-Expose-Headers")
	hdrCacheControl = []byte("Cache-Control")
	hdrETag         = []byte("ETag")
	hdrLastModified = []byte("Last-Modified")
	hdrLink         = []byte("Link")
	hdrXCache       = []byte("X-Cache")
	hdrXCacheTier   = []byte("X-Cache-Tier")
	star            = []byte("*")
	exposed         = []byte("Link, ETag, X-Cache, X-Cache-Tier")
)

// httpDate formats t for a header, reusing the last result: most responses
// in a burst share their source's modification time.
func (p *Proxy) httpDate(t time.Time) []byte {
	if d := p.lastDate.Load(); d != nil && d.t.Equal(t) {
		return d.b
	}
	d := &dateCache{t, fasthttp.AppendHTTPDate(nil, t)}
	p.lastDate.Store(d)
	return d.b
}

type dateCache struct {
	t time.Time
	b []byte
}

var linkBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// setLink sets the Link header: the compliance profile and the canonical URL.
func (p *Proxy) setLink(ctx *fasthttp.RequestCtx, req rules.Request, res rules.Resolved) {
	bp := linkBufs.Get().(*[]byte)
	b := append((*bp)[:0], '<')
	if req.Version == rules.V2 {
		b = append(b, profile2...)
	} else {
		b = append(b, profile3...)
	}
	b = append(b, `>;rel="profile",<`...)
	b = p.appendServiceURL(b, ctx, req.Version, req.ID)
	b = append(b, '/')
	b = res.AppendCanonical(b)
	b = append(b, `>;rel="canonical"`...)
	ctx.Response.Header.SetCanonical(hdrLink, b)
	*bp = b
	linkBufs.Put(bp)
}

func (p *Proxy) serve(ctx *fasthttp.RequestCtx) {
	path := ctx.URI().PathOriginal()
	if string(path) == "/healthz" {
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
		return
	}
	v, sig, rest, unversioned, ok := p.route(path)
	if !ok {
		if p.demo == nil || !p.demo.serve(ctx, path) {
			p.fail(ctx, errNotIIIF)
		}
		return
	}
	req, err := rules.Parse(v, b2s(rest))
	if err != nil {
		// Only a path that is no IIIF request may be the demo page's:
		// the IIIF service is never shadowed (demo.go).
		if p.demo == nil || !p.demo.serve(ctx, path) {
			p.fail(ctx, slashError(rest, err))
		}
		return
	}
	if unversioned {
		ctx.SetUserValue(unversionedKey, true) // ids and links keep the form
	}
	req.ID = strings.Clone(req.ID) // it aliased the request buffer
	// A protected image is refused before anything looks at its file; so is
	// any URL whose signature does not verify, lest a made-up segment be
	// echoed into ids and links.
	if s := p.signer.Load(); len(sig) > 0 || s.Protected(req.ID) {
		if err := s.Check(req.ID, b2s(sig), time.Now()); err != nil {
			p.fail(ctx, err)
			return
		}
	}
	if len(sig) > 0 {
		ctx.SetUserValue(sigKey, string(sig)) // ids and links carry it on
	}
	switch req.Kind {
	case rules.KindBase:
		ctx.Response.Header.Set("Location", p.serviceURL(ctx, v, req.ID)+"/info.json")
		ctx.SetStatusCode(fasthttp.StatusSeeOther)
	case rules.KindInfo:
		p.info(ctx, req)
	default:
		p.image(ctx, req)
	}
}

// sigKey is the user value holding a request's signature segment.
const sigKey = "iiif-proxy.sig"

// setCacheControl sends the tier's Cache-Control, except to a signed URL:
// its response is private, for no longer than the signature is valid, so
// that no shared cache (a CDN, a corporate proxy) serves a protected image
// past its expiry or to someone who was never given the URL.
func (p *Proxy) setCacheControl(ctx *fasthttp.RequestCtx, t *cache.Tier) {
	h := &ctx.Response.Header
	if sig, ok := ctx.UserValue(sigKey).(string); ok {
		left := int64(0)
		if dot := strings.IndexByte(sig, '.'); dot > 0 {
			if exp, err := strconv.ParseInt(sig[:dot], 10, 64); err == nil {
				left = max(0, exp-time.Now().Unix())
			}
		}
		h.SetCanonical(hdrCacheControl, strconv.AppendInt([]byte("private, max-age="), left, 10))
		return
	}
	if cc := t.Conf().CacheControl; cc != "" {
		h.SetCanonical(hdrCacheControl, s2b(cc))
	}
}

// serviceURL is the image service's base URI:
// {scheme://host}{WebPath}[/signed/{signature}]/{3|2}/{escaped id}, or
// without the version segment when the request came without one.
func (p *Proxy) serviceURL(ctx *fasthttp.RequestCtx, v rules.Version, id string) string {
	return string(p.appendServiceURL(make([]byte, 0, 96+len(id)), ctx, v, id))
}

func (p *Proxy) appendServiceURL(b []byte, ctx *fasthttp.RequestCtx, v rules.Version, id string) []byte {
	b = p.appendBase(b, ctx)
	if isUnversioned(ctx) {
		b = append(b, '/')
	} else if v == rules.V2 {
		b = append(b, "/2/"...)
	} else {
		b = append(b, "/3/"...)
	}
	return rules.AppendEscapedID(b, id)
}

// appendBase appends what precedes the version in the request's URLs:
// {scheme://host}{WebPath}[/signed/{signature}]. Everything in it comes from
// the request (Host, X-Forwarded-Proto, the signature), which is why cached
// info.json documents leave it out and have it spliced in per request.
func (p *Proxy) appendBase(b []byte, ctx *fasthttp.RequestCtx) []byte {
	if p.cfg.BaseURL != "" {
		b = append(b, p.cfg.BaseURL...)
	} else {
		trusted := p.trusted(ctx)
		if trusted && firstValue(ctx.Request.Header.Peek("X-Forwarded-Proto")) == "https" {
			b = append(b, "https://"...)
		} else {
			b = append(b, "http://"...)
		}
		host := ctx.Host()
		if fh := firstValue(ctx.Request.Header.Peek("X-Forwarded-Host")); trusted && fh != "" {
			host = []byte(fh)
		}
		b = append(b, safeHost(host)...)
	}
	b = append(b, p.cfg.WebPath...)
	if sig, ok := ctx.UserValue(sigKey).(string); ok {
		b = append(b, signedSegment...)
		b = append(b, sig...)
	}
	return b
}

// trusted reports whether the request comes from one of TrustedProxies.
func (p *Proxy) trusted(ctx *fasthttp.RequestCtx) bool {
	if len(p.cfg.TrustedProxies) == 0 {
		return false
	}
	ip, ok := netip.AddrFromSlice(ctx.RemoteIP())
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for _, pr := range p.cfg.TrustedProxies {
		if pr.Contains(ip) {
			return true
		}
	}
	return false
}

// firstValue is the first of a header's comma-separated values, trimmed:
// each proxy in a chain appends its own.
func firstValue(h []byte) string {
	if i := bytes.IndexByte(h, ','); i >= 0 {
		h = h[:i]
	}
	return string(bytes.TrimSpace(h))
}

// safeHost returns host if it is a plausible host[:port], else "localhost":
// it ends up in headers and JSON.
func safeHost(host []byte) []byte {
	if len(host) == 0 || len(host) > 255 {
		return []byte("localhost")
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return []byte("localhost")
		}
	}
	return host
}

// lookup looks key up in tier t, a disk hit read straight into ctx's pooled
// response buffer: then the returned entry's Body is nil and send takes the
// body from the response.
func (p *Proxy) lookup(ctx *fasthttp.RequestCtx, t rules.Tier, key []byte, id string) cache.Result {
	buf := ctx.Response.SwapBody(nil)
	if buf == nil {
		buf = getBodyBuf() // send hands the last one to the socket
	}
	r := p.cache.Lookup(t, key, id, buf[:0])
	if r.InBuf {
		ctx.Response.SwapBody(r.Buf[:len(r.Entry.Body)])
		r.Entry.Body = nil
	} else {
		ctx.Response.SwapBody(r.Buf[:0])
	}
	return r
}

// info serves info.json. Its cache key needs no description of the source,
// so a hit touches neither the file nor libvips; only a miss describes it.
//
// The document is cached once per image and version, whatever the request's
// Host: its id is stored without the base (scheme, host, WebPath,
// signature), behind a mark, and the base is spliced in per request. Keying
// the cache by Host let forged Host headers fill it, one entry each.
func (p *Proxy) info(ctx *fasthttp.RequestCtx, req rules.Request) {
	key := cache.InfoKey(req.ID, req.Version)
	r := p.lookup(ctx, rules.TierInfo, key, req.ID)
	e, how := r.Entry, r.How
	if r.State != cache.Found {
		src, err := p.cache.Source(ctx, req.ID)
		if err != nil {
			p.fail(ctx, err)
			return
		}
		e, how, err = p.cache.Fill(rules.TierInfo, key, func(context.Context) (store.Entry, error) {
			body, err := p.infoDocument(req.Version, req.ID, src)
			return store.Entry{ContentType: "application/json", LastModified: src.ModTime,
				SourceIdentity: src.Identity, Body: body}, err
		})
		if err != nil {
			p.fail(ctx, err)
			return
		}
	}
	raw := e.Body
	if raw == nil {
		raw = ctx.Response.Body() // a disk hit
	}
	e.Body = p.spliceBase(make([]byte, 0, len(raw)+128), raw, ctx)
	e.ETag = cache.ETag(e.Body) // the bytes differ by base, so must their tag
	h := &ctx.Response.Header
	h.Set("Vary", "Accept")
	ctxURL := context3
	if req.Version == rules.V2 {
		ctxURL = context2
	}
	if bytes.Contains(ctx.Request.Header.Peek("Accept"), []byte("application/ld+json")) {
		e.ContentType = `application/ld+json;profile="` + ctxURL + `"`
	} else {
		h.Set("Link", "<"+ctxURL+`>;rel="http://www.w3.org/ns/json-ld#context";type="application/ld+json"`)
	}
	p.send(ctx, p.cache.Tier(rules.TierInfo), e, how, nil)
}

// maxAttempts bounds how often a request starts over because its source
// changed under it (found by revalidation or by the renderer).
const maxAttempts = 3

func (p *Proxy) image(ctx *fasthttp.RequestCtx, req rules.Request) {
	for range maxAttempts {
		if p.imageOnce(ctx, req) {
			return
		}
	}
	p.fail(ctx, renderer.ErrSourceChanged)
}

// imageOnce serves req, or returns false when the source changed under it
// and the request must start over with its new description.
func (p *Proxy) imageOnce(ctx *fasthttp.RequestCtx, req rules.Request) bool {
	src, err := p.cache.Source(ctx, req.ID)
	if err != nil {
		if !p.unsized(ctx, req, err) {
			p.fail(ctx, err)
		}
		return true
	}
	res, err := req.Resolve(rules.ImageInfo{Width: src.Width, Height: src.Height}, p.r.Limits())
	if err != nil {
		p.fail(ctx, err)
		return true
	}
	held, ok := p.reserve(ctx, res)
	if !ok {
		return true
	}
	defer p.unreserve(held)
	ti := p.cfg.Classifier.Classify(req, res)
	t := p.cache.Tier(ti)
	key := cache.Key(req.ID, res)
	h := &ctx.Response.Header
	p.setLink(ctx, req, res)
	r := p.lookup(ctx, ti, key, req.ID)
	if r.State == cache.Changed {
		return false // start over with the source's new description
	}
	e, how := r.Entry, r.How
	if r.State == cache.Missing {
		// A client that has the current version needs no render.
		if len(ctx.Request.Header.Peek("If-None-Match")) == 0 && !ctx.IfModifiedSince(src.ModTime) {
			h.SetCanonical(hdrLastModified, p.httpDate(src.ModTime))
			p.setCacheControl(ctx, t)
			notModified(ctx)
			return true
		}
		e, how, err = p.cache.Fill(ti, key, func(c context.Context) (store.Entry, error) {
			if p.log.Enabled(c, slog.LevelDebug) {
				p.log.Debug("rendering", "id", req.ID, "canonical", res.Canonical(), "tier", t.Name())
			}
			start := time.Now()
			img, err := p.r.Render(c, src, res)
			if err != nil {
				return store.Entry{}, err
			}
			p.metrics.render.WithLabelValues(t.Name()).Observe(time.Since(start).Seconds())
			return store.Entry{ContentType: img.MIME, LastModified: img.ModTime,
				SourceIdentity: img.Identity, Body: img.Body}, nil
		})
		if errors.Is(err, renderer.ErrSourceChanged) {
			p.cache.PurgeID(req.ID)
			p.cfg.Forward.ID(req.ID, purge.ReasonSourceChanged)
			return false
		}
		if err != nil {
			p.fail(ctx, err)
			return true
		}
	}
	p.send(ctx, t, e, how, held)
	return true
}

// notModified turns the response into a 304, keeping its headers (fasthttp's
// own NotModified drops them, CORS and validators included).
func notModified(ctx *fasthttp.RequestCtx) {
	ctx.Response.ResetBody()
	ctx.Response.Header.SetContentType("")
	ctx.SetStatusCode(fasthttp.StatusNotModified)
}

// status maps an error to its HTTP status and the message the client sees.
func status(err error) (int, string) {
	var re *rules.Error
	var se *renderer.SourceError
	var tl *renderer.SourceTooLargeError
	var ue *renderer.UnavailableError
	var st *renderer.StatusError
	switch {
	case errors.As(err, &ue):
		if ue.Timeout {
			return fasthttp.StatusGatewayTimeout, "the image server did not answer in time"
		}
		return fasthttp.StatusBadGateway, "the image server is unavailable"
	case errors.As(err, &st):
		return st.Status, fasthttp.StatusMessage(st.Status)
	case errors.As(err, &re):
		return fasthttp.StatusBadRequest, re.Error()
	case errors.Is(err, renderer.ErrNotFound):
		return fasthttp.StatusNotFound, "no image with that identifier"
	case errors.As(err, &se):
		return fasthttp.StatusUnprocessableEntity, fmt.Sprintf("image %q exists but cannot be decoded: %s", se.ID, se.Reason())
	case errors.As(err, &tl):
		// 422, not 413 (which is about the request's own body) nor 400 (the
		// request is well formed and within the output limits): like an
		// undecodable file, it is this source that the server will not
		// decode, and the message says how to get an image out of it.
		return fasthttp.StatusUnprocessableEntity, tl.Error()
	case errors.Is(err, renderer.ErrOverloaded), errors.Is(err, renderer.ErrSourceChanged):
		return fasthttp.StatusServiceUnavailable, err.Error() + "; retry shortly"
	case errors.Is(err, errUnsigned), errors.Is(err, errExpired), errors.Is(err, errSignature):
		return fasthttp.StatusForbidden, err.Error()
	case errors.Is(err, errBusy):
		return fasthttp.StatusServiceUnavailable, err.Error() + "; retry shortly"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, cache.ErrRenderWait):
		return fasthttp.StatusServiceUnavailable, "timed out waiting for a render; retry shortly"
	case errors.Is(err, errMethod):
		return fasthttp.StatusMethodNotAllowed, err.Error()
	case errors.Is(err, errNotIIIF):
		return fasthttp.StatusNotFound, "not an IIIF path"
	case errors.Is(err, errSlashID):
		return fasthttp.StatusNotFound, err.Error()
	}
	return fasthttp.StatusInternalServerError, errInternal.Error()
}

func (p *Proxy) fail(ctx *fasthttp.RequestCtx, err error) {
	code, msg := status(err)
	if code == fasthttp.StatusServiceUnavailable {
		ctx.Response.Header.Set("Retry-After", "1")
	}
	if errors.Is(err, errNotIIIF) {
		msg = fmt.Sprintf("%s: IIIF Image API 3.0 is served at %s/3/{identifier}/…, 2.1 at %s/2/{identifier}/…",
			msg, p.cfg.WebPath, p.cfg.WebPath)
		if p.cfg.Unversioned != 0 {
			msg += fmt.Sprintf(", %s at %s/{identifier}/…", p.cfg.Unversioned, p.cfg.WebPath)
		}
	}
	for _, h := range []string{"Last-Modified", "Link", "ETag", "X-Cache", "X-Cache-Tier"} {
		ctx.Response.Header.Del(h)
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetStatusCode(code)
	if code >= 500 || code == fasthttp.StatusUnprocessableEntity {
		ctx.SetUserValue(errKey, err)
	}
	var st *renderer.StatusError
	if errors.As(err, &st) && len(st.Body) > 0 {
		// The upstream's own answer, passed through (never cached).
		ctx.SetContentType(st.ContentType)
		ctx.SetBody(st.Body)
		return
	}
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(fmt.Sprintf("%d %s: %s\n", code, fasthttp.StatusMessage(code), msg))
}

const errKey = "iiif-proxy.err"

// bodyLen is the response body's length. Body() would drain a body stream
// (and release its budget before it is written), so streams answer by their
// Content-Length.
func bodyLen(r *fasthttp.Response) int {
	if r.IsBodyStream() {
		return r.Header.ContentLength()
	}
	return len(r.Body())
}

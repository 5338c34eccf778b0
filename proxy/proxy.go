// Package proxy is the HTTP face of iiif-proxy: fasthttp handlers that route
// IIIF Image API 3.0 and 2.1 requests, answer info.json, images, the 303 from
// a bare identifier, HEAD, OPTIONS and CORS, and map every error to its
// status. It is the one place where errors become status codes.
//
// URLs: {WebPath}/3/{id}/… speaks 3.0 and {WebPath}/2/{id}/… speaks 2.1,
// e.g. /iiif/3/scan.tif/full/max/0/default.jpg. WebPath is RAIS's IIIFWebPath.
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
	"strings"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// Renderer is what the proxy needs from a renderer.
type Renderer interface {
	Info(ctx context.Context, id string) (*renderer.Source, error)
	Sizes(src *renderer.Source) []renderer.Size
	Render(ctx context.Context, src *renderer.Source, res rules.Resolved) (renderer.Image, error)
	Limits() rules.Limits
}

var _ Renderer = (*renderer.Vips)(nil)

// Config configures a Proxy.
type Config struct {
	// WebPath is the path prefix of the IIIF service (RAIS's IIIFWebPath);
	// 3.0 is served under WebPath+"/3/", 2.1 under WebPath+"/2/". Empty
	// means "/iiif"; "/" serves at the root ("/3/…", "/2/…").
	WebPath string

	// BaseURL is the scheme and host that ids in info.json and Link headers
	// start with (RAIS's IIIFBaseURL), e.g. "https://images.example.org".
	// Empty means: from the request, "http://" (or X-Forwarded-Proto) plus
	// its Host header.
	BaseURL string

	// RenderTimeout bounds how long one request waits for a render, queueing
	// included; past it the client gets 503. Zero means 60s.
	RenderTimeout time.Duration

	// Logger receives request logs; the level follows the status. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// Proxy serves IIIF requests from a Renderer.
type Proxy struct {
	cfg    Config
	r      Renderer
	log    *slog.Logger
	prefix []byte // WebPath without a trailing slash
}

// New returns a Proxy.
func New(cfg Config, r Renderer) (*Proxy, error) {
	if cfg.WebPath == "" {
		cfg.WebPath = "/iiif"
	}
	if !strings.HasPrefix(cfg.WebPath, "/") {
		return nil, fmt.Errorf("IIIFWebPath: %q must start with /", cfg.WebPath)
	}
	cfg.WebPath = strings.TrimRight(cfg.WebPath, "/")
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.BaseURL != "" && !strings.HasPrefix(cfg.BaseURL, "http://") && !strings.HasPrefix(cfg.BaseURL, "https://") {
		return nil, fmt.Errorf("IIIFBaseURL: %q must start with http:// or https://", cfg.BaseURL)
	}
	if cfg.RenderTimeout == 0 {
		cfg.RenderTimeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Proxy{cfg: cfg, r: r, log: cfg.Logger, prefix: []byte(cfg.WebPath)}, nil
}

// Server returns a fasthttp server for p with the project's settings.
func (p *Proxy) Server() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                       p.Handle,
		Name:                          "iiif-proxy",
		ReadTimeout:                   30 * time.Second,
		WriteTimeout:                  2 * time.Minute,
		IdleTimeout:                   2 * time.Minute,
		DisablePreParseMultipartForm:  true,
		DisableHeaderNamesNormalizing: false,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		Logger:                        slogPrinter{p.log},
	}
}

type slogPrinter struct{ l *slog.Logger }

func (s slogPrinter) Printf(format string, args ...any) { s.l.Warn(fmt.Sprintf(format, args...)) }

// Handle is the fasthttp handler.
func (p *Proxy) Handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	ctx.Response.Header.Set("Access-Control-Allow-Origin", "*")
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
	p.logRequest(ctx, start)
}

var (
	errMethod   = errors.New("method not allowed: use GET, HEAD or OPTIONS")
	errNotIIIF  = errors.New("not an IIIF path")
	errInternal = errors.New("internal error")
)

// b2s views b as a string without copying; the result dies with b.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func (p *Proxy) serve(ctx *fasthttp.RequestCtx) {
	path := ctx.URI().PathOriginal()
	if string(path) == "/healthz" {
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
		return
	}
	rest, ok := bytes.CutPrefix(path, p.prefix)
	var v rules.Version
	switch {
	case ok && bytes.HasPrefix(rest, []byte("/3/")):
		v = rules.V3
	case ok && bytes.HasPrefix(rest, []byte("/2/")):
		v = rules.V2
	default:
		p.fail(ctx, errNotIIIF)
		return
	}
	req, err := rules.Parse(v, b2s(rest[3:]))
	if err != nil {
		p.fail(ctx, err)
		return
	}
	req.ID = strings.Clone(req.ID) // it aliased the request buffer
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

// serviceURL is the image service's base URI: {scheme://host}{WebPath}/{3|2}/{escaped id}.
func (p *Proxy) serviceURL(ctx *fasthttp.RequestCtx, v rules.Version, id string) string {
	b := make([]byte, 0, 96+len(id))
	if p.cfg.BaseURL != "" {
		b = append(b, p.cfg.BaseURL...)
	} else {
		if string(ctx.Request.Header.Peek("X-Forwarded-Proto")) == "https" {
			b = append(b, "https://"...)
		} else {
			b = append(b, "http://"...)
		}
		b = append(b, safeHost(ctx.Host())...)
	}
	b = append(b, p.cfg.WebPath...)
	if v == rules.V2 {
		b = append(b, "/2/"...)
	} else {
		b = append(b, "/3/"...)
	}
	b = rules.AppendEscapedID(b, id)
	return string(b)
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

func (p *Proxy) renderCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), p.cfg.RenderTimeout)
}

func (p *Proxy) info(ctx *fasthttp.RequestCtx, req rules.Request) {
	c, cancel := p.renderCtx()
	defer cancel()
	src, err := p.r.Info(c, req.ID)
	if err != nil {
		p.fail(ctx, err)
		return
	}
	h := &ctx.Response.Header
	h.SetLastModified(src.ModTime)
	h.Set("Vary", "Accept")
	if !ctx.IfModifiedSince(src.ModTime) {
		ctx.NotModified()
		return
	}
	body, err := infoJSON(req.Version, p.serviceURL(ctx, req.Version, req.ID), src, p.r.Sizes(src), p.r.Limits())
	if err != nil {
		p.fail(ctx, err)
		return
	}
	ctxURL := context3
	if req.Version == rules.V2 {
		ctxURL = context2
	}
	if bytes.Contains(ctx.Request.Header.Peek("Accept"), []byte("application/ld+json")) {
		h.SetContentType(`application/ld+json;profile="` + ctxURL + `"`)
	} else {
		h.SetContentType("application/json")
		h.Set("Link", "<"+ctxURL+`>;rel="http://www.w3.org/ns/json-ld#context";type="application/ld+json"`)
	}
	ctx.Response.SetBodyRaw(body)
}

func (p *Proxy) image(ctx *fasthttp.RequestCtx, req rules.Request) {
	c, cancel := p.renderCtx()
	defer cancel()
	src, err := p.r.Info(c, req.ID)
	if err != nil {
		p.fail(ctx, err)
		return
	}
	res, err := req.Resolve(rules.ImageInfo{Width: src.Width, Height: src.Height}, p.r.Limits())
	if err != nil {
		p.fail(ctx, err)
		return
	}
	h := &ctx.Response.Header
	h.SetLastModified(src.ModTime)
	profile := profile3
	if req.Version == rules.V2 {
		profile = profile2
	}
	h.Set("Link", "<"+profile+`>;rel="profile",<`+p.serviceURL(ctx, req.Version, req.ID)+"/"+res.Canonical()+`>;rel="canonical"`)
	h.Set("Access-Control-Expose-Headers", "Link")
	if !ctx.IfModifiedSince(src.ModTime) {
		ctx.NotModified()
		return
	}
	if p.log.Enabled(c, slog.LevelDebug) {
		p.log.Debug("rendering", "id", req.ID, "canonical", res.Canonical())
	}
	img, err := p.r.Render(c, src, res)
	if err != nil {
		p.fail(ctx, err)
		return
	}
	h.SetContentType(img.MIME)
	ctx.Response.SetBodyRaw(img.Body)
}

// status maps an error to its HTTP status and the message the client sees.
func status(err error) (int, string) {
	var re *rules.Error
	var se *renderer.SourceError
	switch {
	case errors.As(err, &re):
		return fasthttp.StatusBadRequest, re.Error()
	case errors.Is(err, renderer.ErrNotFound):
		return fasthttp.StatusNotFound, "no image with that identifier"
	case errors.As(err, &se):
		return fasthttp.StatusUnprocessableEntity, fmt.Sprintf("image %q exists but cannot be decoded", se.ID)
	case errors.Is(err, renderer.ErrOverloaded), errors.Is(err, renderer.ErrSourceChanged):
		return fasthttp.StatusServiceUnavailable, err.Error() + "; retry shortly"
	case errors.Is(err, context.DeadlineExceeded):
		return fasthttp.StatusServiceUnavailable, "timed out waiting for a render; retry shortly"
	case errors.Is(err, errMethod):
		return fasthttp.StatusMethodNotAllowed, err.Error()
	case errors.Is(err, errNotIIIF):
		return fasthttp.StatusNotFound, "not an IIIF path"
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
	}
	ctx.Response.Header.Del("Last-Modified")
	ctx.Response.Header.Del("Link")
	ctx.SetStatusCode(code)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(fmt.Sprintf("%d %s: %s\n", code, fasthttp.StatusMessage(code), msg))
	if code >= 500 || code == fasthttp.StatusUnprocessableEntity {
		ctx.SetUserValue(errKey, err)
	}
}

const errKey = "iiif-proxy.err"

func (p *Proxy) logRequest(ctx *fasthttp.RequestCtx, start time.Time) {
	code := ctx.Response.StatusCode()
	level := slog.LevelDebug
	switch {
	case code >= 500:
		level = slog.LevelError
	case code == fasthttp.StatusUnprocessableEntity:
		level = slog.LevelWarn
	case code >= 400:
		level = slog.LevelInfo
	}
	if !p.log.Enabled(context.Background(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", string(ctx.Method())),
		slog.String("path", string(ctx.URI().PathOriginal())),
		slog.Int("status", code),
		slog.Int("bytes", len(ctx.Response.Body())),
		slog.Duration("took", time.Since(start)),
	}
	if err, ok := ctx.UserValue(errKey).(error); ok {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	p.log.LogAttrs(context.Background(), level, "request", attrs...)
}

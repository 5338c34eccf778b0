package proxy

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// AccessLogConfig configures the access log: one line per request, at INFO
// (WARN for 422, ERROR for 5xx), with the client's address, the method,
// path, status, body bytes, duration, X-Cache and tier. The log's format
// (text or JSON) is the Logger's.
type AccessLogConfig struct {
	// Off stops the lines of successful requests (below 400); error lines
	// are still logged, within ErrorLinesPerSecond. False logs every request.
	Off bool

	// ErrorLinesPerSecond bounds the lines of requests with a status of 400
	// or more, so that a flood of 404s (a crawler, a broken page, an
	// attack) cannot fill the disk with log: past it, lines are dropped and
	// counted, and the next line logged says how many ("suppressed"). Zero
	// means 100; a negative value means no bound.
	ErrorLinesPerSecond int
}

// accessLog writes the access log.
type accessLog struct {
	off bool
	lim *lineLimiter // nil: no bound
}

func newAccessLog(cfg AccessLogConfig) *accessLog {
	a := &accessLog{off: cfg.Off}
	switch {
	case cfg.ErrorLinesPerSecond == 0:
		a.lim = &lineLimiter{perSecond: 100, now: time.Now}
	case cfg.ErrorLinesPerSecond > 0:
		a.lim = &lineLimiter{perSecond: cfg.ErrorLinesPerSecond, now: time.Now}
	}
	return a
}

// lineLimiter lets at most perSecond lines through in each wall-clock
// second, and counts the rest.
type lineLimiter struct {
	perSecond int
	now       func() time.Time // injectable for tests

	mu         sync.Mutex // protects the fields below
	second     int64      // the second being counted
	n          int        // lines let through in it
	suppressed int64      // lines dropped since the last one let through
}

// allow reports whether a line may be written, and how many were dropped
// since the last one that was.
func (l *lineLimiter) allow() (ok bool, suppressed int64) {
	s := l.now().Unix()
	l.mu.Lock()
	defer l.mu.Unlock()
	if s != l.second {
		l.second, l.n = s, 0
	}
	if l.n >= l.perSecond {
		l.suppressed++
		return false, 0
	}
	l.n++
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// logRequest writes ctx's access-log line, if its level is enabled and the
// limits let it.
func (p *Proxy) logRequest(ctx *fasthttp.RequestCtx, start time.Time) {
	code := ctx.Response.StatusCode()
	level := slog.LevelInfo
	switch {
	case code >= 500:
		level = slog.LevelError
	case code == fasthttp.StatusUnprocessableEntity:
		level = slog.LevelWarn
	}
	if code < 400 && p.access.off || !p.log.Enabled(context.Background(), level) {
		return
	}
	var suppressed int64
	if code >= 400 && p.access.lim != nil {
		ok, n := p.access.lim.allow()
		if !ok {
			return
		}
		suppressed = n
	}
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs,
		slog.String("client", p.client(ctx)),
		slog.String("method", string(ctx.Method())),
		slog.String("path", string(ctx.URI().PathOriginal())),
		slog.Int("status", code),
		slog.Int("bytes", bodyLen(&ctx.Response)),
		slog.Duration("took", time.Since(start)),
	)
	if c := ctx.Response.Header.PeekBytes(hdrXCache); len(c) > 0 {
		attrs = append(attrs, slog.String("cache", string(c)))
	}
	if t := ctx.Response.Header.PeekBytes(hdrXCacheTier); len(t) > 0 {
		attrs = append(attrs, slog.String("tier", string(t)))
	}
	if err, ok := ctx.UserValue(errKey).(error); ok {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int64("suppressed", suppressed))
	}
	p.log.LogAttrs(context.Background(), level, "access", attrs...)
}

// client is the address a request came from: the first X-Forwarded-For
// address when the peer is one of TrustedProxies (nginx or a CDN in
// front), the peer's own otherwise.
func (p *Proxy) client(ctx *fasthttp.RequestCtx) string {
	if p.trusted(ctx) {
		if f := firstValue(ctx.Request.Header.Peek("X-Forwarded-For")); f != "" && len(f) <= 64 {
			return f
		}
	}
	return ctx.RemoteIP().String()
}

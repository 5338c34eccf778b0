package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/iiif-proxy/iiif-proxy/cache"
	"github.com/iiif-proxy/iiif-proxy/store"
)

// The cache policy (tiers, memory and disk, revalidation, fills, purge,
// ETags) lives in package cache; this file is its HTTP side: validators,
// 304s, and writing an entry out.

// Store is what a cache tier needs from its disk store.
type Store = cache.Store

// TierConfig configures one cache tier.
type TierConfig = cache.TierConfig

// conditional answers 304 when the client's validators match e. If-None-Match
// wins over If-Modified-Since, as RFC 9110 says.
func conditional(ctx *fasthttp.RequestCtx, e store.Entry) bool {
	if inm := ctx.Request.Header.Peek("If-None-Match"); len(inm) > 0 {
		return etagMatch(inm, e.ETag)
	}
	return !ctx.IfModifiedSince(e.LastModified)
}

// etagMatch applies the weak comparison of If-None-Match.
func etagMatch(header []byte, tag string) bool {
	for part := range bytes.SplitSeq(header, []byte(",")) {
		part = bytes.TrimSpace(part)
		part = bytes.TrimPrefix(part, []byte("W/"))
		if string(part) == "*" || string(part) == tag {
			return true
		}
	}
	return false
}

// send writes a cached or rendered entry, or a 304 when the client has it.
// An entry with a nil Body is already in the response buffer (a disk hit).
// held, when not nil, is a reservation of in-flight bytes made for this
// response: send resizes it to the body and hands it to the body stream,
// setting *held to 0; a 304 leaves it to the caller to release.
func (p *Proxy) send(ctx *fasthttp.RequestCtx, t *cache.Tier, e store.Entry, how cache.How, held *int64) {
	h := &ctx.Response.Header
	h.SetCanonical(hdrETag, s2b(e.ETag))
	h.SetCanonical(hdrLastModified, p.httpDate(e.LastModified))
	p.setCacheControl(ctx, t)
	h.SetCanonical(hdrXCache, s2b(how.String()))
	h.SetCanonical(hdrXCacheTier, s2b(t.Name()))
	h.SetCanonical(hdrACEH, exposed)
	if conditional(ctx, e) {
		notModified(ctx)
		return
	}
	h.SetContentTypeBytes(s2b(e.ContentType))
	body, pooled := e.Body, false
	if body == nil {
		body, pooled = ctx.Response.SwapBody(nil), true // a disk hit, read into the response
	}
	n := int64(len(body))
	if held != nil {
		ok := p.budget.resize(*held, n)
		*held = 0 // resized into the stream's, or released
		if !ok {
			p.fail(ctx, errBusy)
			return
		}
	} else if !p.budget.acquire(n) {
		p.fail(ctx, errBusy)
		return
	}
	ctx.Response.SetBodyStream(newBodyReader(body, &p.budget, pooled), len(body))
}

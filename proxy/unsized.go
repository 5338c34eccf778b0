package proxy

import (
	"context"
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/iiif-proxy/iiif-proxy/cache"
	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/store"
)

// unsized serves an image request whose source could not be described
// (serr), when the renderer can render without a description
// (renderer.Forwarder: an upstream whose info.json answered 5xx or could
// not be read, or that is down with no info.json stored). It returns false
// when it does not apply, and the caller fails with serr.
//
// Without the image's size the request cannot be resolved: it is bounded
// instead (rules.Request.Bound, for the tier and the budget; what it can
// tell is wrong is a 400 here), keyed by its normalised form
// (cache.NormalisedKey, never equal to a canonical key), cached in its
// tier, and forwarded in that form. A timed-out description is not followed
// by a forward that would wait as long again: only a cached entry is served.
func (p *Proxy) unsized(ctx *fasthttp.RequestCtx, req rules.Request, serr error) bool {
	fw, ok := p.r.(renderer.Forwarder)
	var ue *renderer.UnavailableError
	var se *renderer.SourceError
	if !ok || !errors.As(serr, &ue) && !errors.As(serr, &se) {
		return false
	}
	res, err := req.Bound(p.r.Limits())
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
	key := cache.NormalisedKey(req.ID, req)
	r := p.lookup(ctx, ti, key, req.ID)
	e, how := r.Entry, r.How
	if r.State != cache.Found {
		if ue != nil && ue.Timeout {
			p.fail(ctx, serr)
			return true
		}
		e, how, err = p.cache.Fill(ti, key, func(c context.Context) (store.Entry, error) {
			img, err := fw.Forward(c, req.ID, req)
			return store.Entry{ContentType: img.MIME, LastModified: img.ModTime, Body: img.Body}, err
		})
		if err != nil {
			p.fail(ctx, err)
			return true
		}
	}
	p.send(ctx, p.cache.Tier(ti), e, how, held)
	return true
}

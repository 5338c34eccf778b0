package proxy

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/iiif-proxy/iiif-proxy/cache"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// Explanation says what the proxy does with a request path without
// serving it: what `iiif-proxy classify` prints for tuning the tiers.
type Explanation struct {
	Path        string        // as given
	Version     rules.Version // the version the path speaks
	Unversioned bool          // RAIS's form, with no version segment
	Signed      bool          // it carries a signature segment (not checked here)
	ID          string        // the identifier, decoded
	Kind        string        // "image", "info" or "base" (a 303 to info.json)
	Canonical   string        // the canonical request after the identifier (images)
	Tier        rules.Tier    // meaningless for Kind "base"
	Rule        string        // why that tier (rules.Classifier.Explain)
	Key         string        // the cache key: identifier, NUL, canonical request (or info key)
}

// Explain routes, parses and classifies path (a URL path, or a full URL
// whose path is taken) exactly as a request for it is, describing the
// image where the tier depends on its size (through the same source
// description cache, so the renderer is asked as a request would ask it).
// The errors are the ones the request would fail with; Status maps them.
func (p *Proxy) Explain(ctx context.Context, path string) (Explanation, error) {
	e := Explanation{Path: path}
	if u, err := url.Parse(path); err == nil && u.Scheme != "" {
		path = u.EscapedPath()
	}
	v, sig, rest, unversioned, ok := p.route([]byte(path))
	if !ok {
		return e, errNotIIIF
	}
	e.Version, e.Unversioned, e.Signed = v, unversioned, len(sig) > 0
	req, err := rules.Parse(v, string(rest))
	if err != nil {
		return e, slashError(rest, err)
	}
	e.ID = strings.Clone(req.ID)
	switch req.Kind {
	case rules.KindBase:
		e.Kind = "base"
		e.Rule = "a bare identifier: 303 to its info.json, not cached"
		return e, nil
	case rules.KindInfo:
		e.Kind = "info"
		e.Tier, e.Rule = p.cfg.Classifier.Explain(req, rules.Resolved{})
		e.Key = string(cache.InfoKey(e.ID, v))
		// An info.json fails as its image does: a missing one is a 404,
		// an undecodable one a 422.
		if _, err := p.cache.Source(ctx, e.ID); err != nil {
			return e, err
		}
		return e, nil
	}
	e.Kind = "image"
	src, err := p.cache.Source(ctx, e.ID)
	if err != nil {
		return e, err
	}
	res, err := req.Resolve(rules.ImageInfo{Width: src.Width, Height: src.Height}, p.r.Limits())
	if err != nil {
		return e, err
	}
	e.Canonical = res.Canonical()
	e.Tier, e.Rule = p.cfg.Classifier.Explain(req, res)
	e.Key = string(cache.Key(e.ID, res))
	return e, nil
}

// Status is the HTTP status a request that failed with err is answered
// with, and the message its client reads: the one mapping of errors to
// statuses, for tools that call the renderer or Explain in process.
func Status(err error) (int, string) {
	if err == nil {
		return 200, "OK"
	}
	return status(err)
}

// IsNotIIIF reports whether err says a path is outside the IIIF service.
func IsNotIIIF(err error) bool { return errors.Is(err, errNotIIIF) }

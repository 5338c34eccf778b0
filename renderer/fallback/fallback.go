// Package fallback wraps any renderer.Renderer so that a source that exists
// but cannot be decoded is served from a sibling file instead: the same
// identifier with its extension replaced, e.g. "box/scan.tif" from
// "box/scan.jpg" when the TIFF is corrupt. eLife did this by hand for TIFFs
// its decoder could not read; here it is the Fallbacks setting.
//
// A *renderer.SourceError triggers it, from Info (the file does not open)
// or from Render (it opens, but its pixels do not decode: the render says
// the source changed, and the proxy describes it again, from the sibling): a missing source stays
// missing (ErrNotFound, 404: serving a sibling of a file that is not there
// would invent images), and an unreachable upstream stays unreachable (the
// cache serves stale entries for that). The served Source keeps the
// requested identifier, so cache keys, info.json ids and purges name what
// the client asked for; its Identity is the sibling's, so replacing the
// sibling, or repairing the original, changes it and revalidation purges
// what was rendered from the sibling.
//
// Because it wraps the renderer interface, it works the same for libvips on
// files, libvips on object storage and an upstream (sidecar mode); the
// upstream's optional interfaces (renderer.Revalidator, Documenter,
// Describer, Forwarder) are kept when the wrapped renderer has them.
package fallback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/iiif-proxy/iiif-proxy/internal/lru"
	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// Renderer serves undecodable sources from their fallback siblings.
type Renderer struct {
	r    renderer.Renderer
	exts []string
	log  *slog.Logger
	// logged remembers the sources whose fallback was logged (by
	// identifier and the sibling's identity), so that each is logged once
	// however often it is described; bounded, so a huge corpus of broken
	// files cannot grow it without end (a forgotten one is logged again).
	logged *lru.Cache[string, struct{}]
	// broken are sources, by identifier, whose description succeeded but
	// whose pixels failed to decode, with the identity that failed: a
	// changed source is tried again. Bounded as logged is.
	broken *lru.Cache[string, string]

	described atomic.Uint64 // descriptions answered from a sibling
	failed    atomic.Uint64 // undecodable sources that no sibling could stand in for
}

// loggedLen bounds the sources remembered as logged.
const loggedLen = 10000

// Validate checks a list of fallback extensions: each starts with "." and
// names no directory (".jpg", ".jpeg", ".png").
func Validate(exts []string) error {
	var errs []error
	for _, e := range exts {
		if len(e) < 2 || e[0] != '.' || strings.ContainsAny(e, "/\\\x00") || len(e) > 16 {
			errs = append(errs, fmt.Errorf("%q must be an extension like \".jpg\"", e))
		}
	}
	return errors.Join(errs...)
}

// New wraps r: an undecodable source is described and rendered from the
// first sibling, by exts in order, that r can describe. The result is a
// renderer.Forwarder when r is one (an upstream), and passes r's
// Revalidate, Document and Describe on when it has them. A nil logger
// means slog.Default().
func New(r renderer.Renderer, exts []string, log *slog.Logger) (renderer.Renderer, error) {
	if err := Validate(exts); err != nil {
		return nil, fmt.Errorf("Fallbacks: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	f := &Renderer{r: r, exts: exts, log: log, logged: lru.New[string, struct{}](loggedLen),
		broken: lru.New[string, string](loggedLen)}
	if _, ok := r.(renderer.Forwarder); ok {
		return &forwarding{f}, nil
	}
	return f, nil
}

var _ renderer.Renderer = (*Renderer)(nil)

// served is the Detail of a Source served from a sibling: the sibling's
// own description, which the wrapped renderer renders from.
type served struct {
	src *renderer.Source
}

// unwrap returns the wrapped renderer's description behind src.
func unwrap(src *renderer.Source) *renderer.Source {
	if s, ok := src.Detail.(served); ok {
		return s.src
	}
	return src
}

// Sibling returns the identifier of id's sibling with extension ext:
// "box/scan.tif", ".jpg" → "box/scan.jpg"; an identifier without an
// extension gets ext appended.
func Sibling(id, ext string) string {
	return strings.TrimSuffix(id, path.Ext(id)) + ext
}

// Info describes id, or, when id cannot be decoded, the first of its
// siblings that can be, under id's name. A source no sibling can stand in
// for returns the original error (or, for one whose Info succeeded but
// whose pixels failed to decode, its own description: it fails again, 422).
func (f *Renderer) Info(ctx context.Context, id string) (*renderer.Source, error) {
	src, err := f.r.Info(ctx, id)
	var se *renderer.SourceError
	switch {
	case err == nil:
		if b, ok := f.broken.Get(id); !ok || b != src.Identity {
			return src, nil
		}
		se = &renderer.SourceError{ID: id, Detail: "its pixels failed to decode"}
	case !errors.As(err, &se):
		return nil, err
	}
	if out, alt := f.sibling(ctx, id); out != nil {
		f.described.Add(1)
		if key := id + "\x00" + out.Identity; !f.seen(key) {
			f.log.Warn("source cannot be decoded: serving its fallback", "id", id, "fallback", alt, "error", se.Detail)
		}
		return out, nil
	}
	f.failed.Add(1)
	return src, err
}

// sibling describes the first sibling of id that the wrapped renderer can
// describe, under id's name, and names it; nil when none can.
func (f *Renderer) sibling(ctx context.Context, id string) (*renderer.Source, string) {
	for _, ext := range f.exts {
		alt := Sibling(id, ext)
		if alt == id {
			continue
		}
		s, err := f.r.Info(ctx, alt)
		if err != nil {
			continue
		}
		if b, ok := f.broken.Get(alt); ok && b == s.Identity {
			continue // it describes, but its pixels failed to decode
		}
		out := *s
		out.ID = id
		out.Detail = served{s}
		return &out, alt
	}
	return nil, ""
}

// seen reports whether key was logged, and marks it.
func (f *Renderer) seen(key string) bool {
	if _, ok := f.logged.Get(key); ok {
		return true
	}
	f.logged.Add(key, struct{}{})
	return false
}

// Sizes are the sizes of the source actually rendered.
func (f *Renderer) Sizes(src *renderer.Source) []renderer.Size { return f.r.Sizes(unwrap(src)) }

// Render renders from the sibling when src was served from one. A source
// that Info could describe but whose pixels fail to decode (a TIFF with a
// sound header and corrupt strips) is remembered as broken, at its
// identity, and when a sibling can stand in the render answers
// ErrSourceChanged: the proxy then purges what it holds of id and
// describes it again, and this time Info serves the sibling. A sibling
// whose pixels fail is passed over the same way for the next one.
func (f *Renderer) Render(ctx context.Context, src *renderer.Source, res rules.Resolved) (renderer.Image, error) {
	img, err := f.r.Render(ctx, unwrap(src), res)
	var se *renderer.SourceError
	if err == nil || !errors.As(err, &se) {
		return img, err
	}
	// Remember what failed (the original, or the sibling serving it), so
	// that the next description passes over it.
	failed := unwrap(src)
	f.broken.Add(failed.ID, failed.Identity)
	if s, _ := f.sibling(ctx, src.ID); s != nil {
		return renderer.Image{}, renderer.ErrSourceChanged
	}
	return img, err
}

// Limits are the wrapped renderer's.
func (f *Renderer) Limits() rules.Limits { return f.r.Limits() }

// Revalidate checks a description given earlier. A description served
// from a sibling is made anew (the original may have been repaired, or
// the sibling replaced); any other goes to the wrapped renderer's
// Revalidate when it has one, and to Info when that finds it broken.
func (f *Renderer) Revalidate(ctx context.Context, prev *renderer.Source) (*renderer.Source, error) {
	if _, ok := prev.Detail.(served); !ok {
		if rv, ok := f.r.(renderer.Revalidator); ok {
			src, err := rv.Revalidate(ctx, prev)
			var se *renderer.SourceError
			if !errors.As(err, &se) {
				return src, err
			}
		}
	}
	src, err := f.Info(ctx, prev.ID)
	if err == nil && src.Identity == prev.Identity && src.Identity != "" {
		return prev, nil
	}
	return src, err
}

// SetLimits sets the wrapped renderer's limits, when it has settable ones.
func (f *Renderer) SetLimits(l rules.Limits) error {
	if s, ok := f.r.(interface{ SetLimits(rules.Limits) error }); ok {
		return s.SetLimits(l)
	}
	return errors.New("the renderer's limits cannot change")
}

// Close closes the wrapped renderer, when it has a Close.
func (f *Renderer) Close() error {
	if c, ok := f.r.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// Stats are the wrapped renderer's counters with the fallbacks'.
func (f *Renderer) Stats() renderer.Stats {
	var s renderer.Stats
	if ss, ok := f.r.(interface{ Stats() renderer.Stats }); ok {
		s = ss.Stats()
	}
	s.Fallbacks = &renderer.FallbackStats{Extensions: f.exts, Described: f.described.Load(), Failed: f.failed.Load()}
	return s
}

// Document is the wrapped renderer's own info.json of the source rendered
// (an upstream's; the proxy replaces its id with the requested one), when
// it has one.
func (f *Renderer) Document(src *renderer.Source, v rules.Version) ([]byte, bool) {
	if d, ok := f.r.(renderer.Documenter); ok {
		return d.Document(unwrap(src), v)
	}
	return nil, false
}

// errNoDescribe: the wrapped renderer cannot describe a source from a
// stored info.json (only an upstream can).
var errNoDescribe = errors.New("the renderer cannot describe a source from its info.json")

// Describe describes id from a stored info.json, when the wrapped renderer
// can.
func (f *Renderer) Describe(id string, doc []byte, identity string, mod time.Time) (*renderer.Source, error) {
	if d, ok := f.r.(renderer.Describer); ok {
		return d.Describe(id, doc, identity, mod)
	}
	return nil, errNoDescribe
}

// forwarding is a Renderer around a renderer.Forwarder (an upstream),
// which it stays. Forwarder is the one optional interface the wrapper
// cannot offer for a renderer that lacks it: the proxy forwards a request
// whose source it cannot describe whenever the renderer says it can.
type forwarding struct{ *Renderer }

var (
	_ renderer.Revalidator = (*Renderer)(nil)
	_ renderer.Documenter  = (*Renderer)(nil)
	_ renderer.Describer   = (*Renderer)(nil)
	_ renderer.Forwarder   = (*forwarding)(nil)
)

// Forward forwards a request for id as the wrapped renderer does: without
// a description there is nothing to fall back from.
func (u *forwarding) Forward(ctx context.Context, id string, req rules.Request) (renderer.Image, error) {
	return u.r.(renderer.Forwarder).Forward(ctx, id, req)
}

// From returns the identifier of the sibling src was served from, when it
// was served from one.
func From(src *renderer.Source) (sibling string, ok bool) {
	s, ok := src.Detail.(served)
	if !ok {
		return "", false
	}
	return s.src.ID, true
}

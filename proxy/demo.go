package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/web"
)

// The demo page (Config.Demo), on the public listener:
//
//	GET /                          the page (web/static/demo/index.html)
//	GET /demo/static/{file}        its script and style
//	GET /demo/viewers/{path}       OpenSeadragon and Mirador (web/dist), embedded
//	GET /demo/api/config           what the page needs: WebPath, viewers built or not
//	GET /demo/api/ids?dir=&offset=&limit=   one directory level of TilePath (demolist.go)
//	GET /demo/api/manifest/{id}    a IIIF Presentation 3 manifest of one image, for Mirador
//
// The IIIF service always wins: demo paths are consulted only for a request
// that is not a valid IIIF URL (serve), so with IIIFWebPath "/" an image
// named "demo" is still /demo/info.json. Every demo path but "/" has at
// least three segments, none of them "info.json", which no IIIF URL of that
// shape can be, whatever IIIFWebPath is.
type demo struct {
	p       *Proxy
	root    string // TilePath; "" lists nothing (sidecar mode)
	static  *assets
	viewers *assets
	built   bool // the viewers' bundles are in the binary
}

const demoPrefix = "/demo/"

func newDemo(p *Proxy, root string) *demo {
	return &demo{p: p, root: root, static: newAssets(web.Static()), viewers: newAssets(web.Viewers()),
		built: web.ViewersBuilt()}
}

// serve answers a demo path and returns true, or returns false (having
// written nothing) for any other path.
func (d *demo) serve(ctx *fasthttp.RequestCtx, path []byte) bool {
	if !ctx.IsGet() && !ctx.IsHead() {
		return false
	}
	if string(path) == "/" {
		return d.static.serve(ctx, "demo/index.html", "no-cache")
	}
	rest, ok := bytes.CutPrefix(path, []byte(demoPrefix))
	if !ok {
		return false
	}
	switch s := string(rest); {
	case strings.HasPrefix(s, "static/"):
		return d.static.serve(ctx, "demo/"+strings.TrimPrefix(s, "static/"), "no-cache")
	case strings.HasPrefix(s, "viewers/"):
		if d.viewers.serve(ctx, strings.TrimPrefix(s, "viewers/"), "public, max-age=86400") {
			return true
		}
		if !d.built {
			demoError(ctx, fasthttp.StatusNotFound, "the viewers are not in this binary: run `make web` (web/build.sh), then build it again")
			return true
		}
		return false
	case s == "api/config":
		demoJSON(ctx, map[string]any{"webPath": d.p.cfg.WebPath, "viewers": d.built, "listing": d.root != "",
			"openseadragon": "/demo/viewers/" + web.OpenSeadragonJS, "mirador": "/demo/viewers/" + web.MiradorJS})
	case s == "api/ids":
		d.list(ctx)
	case strings.HasPrefix(s, "api/manifest/"):
		raw := strings.TrimPrefix(string(ctx.URI().PathOriginal()), demoPrefix+"api/manifest/")
		id, err := url.PathUnescape(raw)
		if err != nil || id == "" || strings.ContainsAny(id, "\x00") {
			demoError(ctx, fasthttp.StatusBadRequest, "manifest: the identifier must be one percent-encoded path segment")
			return true
		}
		d.manifest(ctx, id)
	default:
		return false
	}
	return true
}

func (d *demo) list(ctx *fasthttp.RequestCtx) {
	args := ctx.QueryArgs()
	dir := string(args.Peek("dir"))
	offset, limit := 0, demoPageDefault
	for _, a := range []struct {
		name string
		v    *int
		max  int
	}{{"offset", &offset, demoScanMax}, {"limit", &limit, demoPageMax}} {
		if s := args.Peek(a.name); len(s) > 0 {
			n, err := strconv.Atoi(string(s))
			if err != nil || n < 0 || n > a.max {
				demoError(ctx, fasthttp.StatusBadRequest, a.name+": want a whole number from 0 to "+strconv.Itoa(a.max))
				return
			}
			*a.v = n
		}
	}
	out := demoListing{Dir: dir, Offset: offset, Entries: []demoEntry{}}
	if d.root != "" {
		entries, truncated, err := listDir(d.root, dir, d.p.signer.Load().Protected)
		if err != nil {
			code := fasthttp.StatusNotFound
			if errors.Is(err, errDemoDirBad) {
				code = fasthttp.StatusBadRequest
			}
			demoError(ctx, code, "dir "+strconv.Quote(dir)+": "+err.Error())
			return
		}
		out.Total, out.Truncated = len(entries), truncated
		if offset < len(entries) {
			out.Entries = entries[offset:min(len(entries), offset+limit)]
		}
	}
	demoJSON(ctx, out)
}

// manifest answers a IIIF Presentation 3 manifest of one image: one canvas
// the image's size, painted by the image with its 3.0 image service, which
// is what Mirador opens (it does not open a bare image service).
func (d *demo) manifest(ctx *fasthttp.RequestCtx, id string) {
	if s := d.p.signer.Load(); s.Protected(id) {
		d.p.fail(ctx, errUnsigned)
		return
	}
	src, err := d.p.cache.Source(ctx, id)
	if err != nil {
		d.p.fail(ctx, err)
		return
	}
	base := string(d.p.appendBase(nil, ctx))
	service := base + "/3/" + string(rules.AppendEscapedID(nil, id))
	self := strings.TrimSuffix(base, d.p.cfg.WebPath) + demoPrefix + "api/manifest/" + string(rules.AppendEscapedID(nil, id))
	canvas := self + "/canvas/1"
	type obj = map[string]any
	m := obj{
		"@context": "http://iiif.io/api/presentation/3/context.json",
		"id":       self, "type": "Manifest",
		"label": obj{"none": []string{id}},
		"items": []obj{{
			"id": canvas, "type": "Canvas", "width": src.Width, "height": src.Height,
			"items": []obj{{
				"id": canvas + "/page", "type": "AnnotationPage",
				"items": []obj{{
					"id": canvas + "/page/image", "type": "Annotation", "motivation": "painting", "target": canvas,
					"body": obj{
						"id": service + "/full/max/0/default.jpg", "type": "Image", "format": "image/jpeg",
						"width": src.Width, "height": src.Height,
						"service": []obj{{"id": service, "type": "ImageService3", "profile": "level2"}},
					},
				}},
			}},
		}},
	}
	ctx.Response.Header.SetLastModified(src.ModTime)
	demoJSON(ctx, m)
}

func demoJSON(ctx *fasthttp.RequestCtx, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		demoError(ctx, fasthttp.StatusInternalServerError, err.Error())
		return
	}
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

func demoError(ctx *fasthttp.RequestCtx, code int, msg string) {
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetStatusCode(code)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(strconv.Itoa(code) + " " + fasthttp.StatusMessage(code) + ": " + msg + "\n")
}

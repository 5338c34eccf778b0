package proxy

import (
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/iiif-proxy/iiif-proxy/web"
)

// The live dashboard, on the admin listener:
//
//	GET /                            the page (web/static/dashboard/index.html)
//	GET /dashboard/                  the same, where the admin paths share the IIIF port
//	GET /dashboard/static/{file}     its script and style
//
// The page polls GET /stats (JSON) and draws it with plain JavaScript and
// inline SVG. Its files hold no data, so they are served without the
// token; the numbers come from /stats under the admin listener's rules
// (auth.go): the page sends "Authorization: Bearer {token}" with the token
// an operator types into it, kept in the tab's sessionStorage only.
// On a shared port (AdminAddress = Address) these paths go to the admin
// handler before the IIIF service sees them. The static files' paths have
// three segments, which no IIIF URL has; "/dashboard/" would otherwise be,
// with IIIFWebPath "/" only, the base URI of an image named "dashboard"
// written with a trailing slash, whose usual form, "/dashboard", still
// redirects to its info.json.
type dashboard struct{ files *assets }

func newDashboard() *dashboard { return &dashboard{files: newAssets(web.Static())} }

// serve answers a dashboard path and returns true, or returns false for
// any other request.
func (d *dashboard) serve(ctx *fasthttp.RequestCtx) bool {
	if !ctx.IsGet() && !ctx.IsHead() {
		return false
	}
	switch path := string(ctx.Path()); {
	case path == "/" || path == dashboardPage:
		return d.files.serve(ctx, "dashboard/index.html", "no-cache")
	case strings.HasPrefix(path, dashboardStatic):
		return d.files.serve(ctx, "dashboard/"+strings.TrimPrefix(path, dashboardStatic), "no-cache")
	}
	return false
}

const (
	dashboardPage   = "/dashboard/"
	dashboardStatic = "/dashboard/static/"
)

// isDashboardPath reports whether path is the dashboard's on a port shared
// with the IIIF service ("/" is then the demo page's).
func isDashboardPath(s string) bool {
	return s == dashboardPage || strings.HasPrefix(s, dashboardStatic)
}

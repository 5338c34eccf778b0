// Package web holds the browser assets iiif-proxy serves itself, embedded in
// the binary so that nothing is fetched from a CDN: a library behind a
// firewall gets the same pages.
//
//   - static/: the demo page (public listener, "/") and the live dashboard
//     (admin listener, "/"), plain HTML, CSS and JavaScript written here, no
//     framework and no build step.
//   - dist/: the viewers' ready-made browser bundles (OpenSeadragon and
//     Mirador), copied from npm at the versions package-lock.json pins by
//     build.sh (`make web`). Only dist/README.md is in git, so a plain `go
//     build` on a fresh clone still compiles; its binary says the viewers are
//     missing (ViewersBuilt) instead of serving a broken page.
//
// The HTTP side (content types, ETags, gzip) is proxy/assets.go.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

//go:embed dist
var dist embed.FS

// Static returns the demo page's and the dashboard's own files.
func Static() fs.FS { return sub(static, "static") }

// Viewers returns the viewers' bundles: openseadragon/… and mirador/….
func Viewers() fs.FS { return sub(dist, "dist") }

// Viewer bundles the pages load; ViewersBuilt checks for them.
const (
	OpenSeadragonJS = "openseadragon/openseadragon.min.js"
	MiradorJS       = "mirador/mirador.min.js"
)

// ViewersBuilt reports whether the viewers' bundles were embedded, i.e.
// whether build.sh ran before the binary was built.
func ViewersBuilt() bool {
	for _, f := range []string{OpenSeadragonJS, MiradorJS} {
		if _, err := fs.Stat(Viewers(), f); err != nil {
			return false
		}
	}
	return true
}

func sub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // dir is a constant embedded above
	}
	return s
}

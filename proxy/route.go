package proxy

import (
	"bytes"
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/iiif-proxy/iiif-proxy/rules"
)

// route splits a request path into what rules.Parse needs: the version, the
// signature segment (if any), and the rest after the version segment
// ("{id}/…", no leading slash). ok is false for a path outside the IIIF
// service.
//
// Three forms reach one image:
//
//	{WebPath}/3/{id}/…   IIIF 3.0
//	{WebPath}/2/{id}/…   IIIF 2.1
//	{WebPath}/{id}/…     RAIS's form, speaking Config.Unversioned
//
// each optionally behind /signed/{signature}. A first segment that is
// exactly "2" or "3" is always the version: /iiif/2/info.json asks 2.1 for
// an image named "info.json" (a bare identifier, so a 303 to
// /iiif/2/info.json/info.json), never for the info.json of an image named
// "2". An image whose identifier is exactly "2" or "3" is reached with its
// digit escaped (/iiif/%32/info.json, unversioned, or /iiif/3/%32/info.json):
// the version is matched on the raw path, the identifier decoded after. An
// identifier that merely starts with a digit ("2%2Fscan.tif", "2001.tif")
// is not ambiguous.
func (p *Proxy) route(path []byte) (v rules.Version, sig, rest []byte, unversioned, ok bool) {
	rest, ok = bytes.CutPrefix(path, p.prefix)
	if !ok || len(rest) < 2 || rest[0] != '/' {
		return 0, nil, nil, false, false
	}
	sig, rest = cutSignature(rest)
	switch {
	case bytes.HasPrefix(rest, []byte("/3/")):
		return rules.V3, sig, rest[3:], false, true
	case bytes.HasPrefix(rest, []byte("/2/")):
		return rules.V2, sig, rest[3:], false, true
	case p.cfg.Unversioned != 0 && len(rest) > 1 && rest[0] == '/':
		return p.cfg.Unversioned, sig, rest[1:], true, true
	}
	return 0, nil, nil, false, false
}

// unversionedKey marks a request that came without a version segment, so
// that the ids and links it is answered with keep that form.
const unversionedKey = "iiif-proxy.unversioned"

func isUnversioned(ctx *fasthttp.RequestCtx) bool {
	u, _ := ctx.UserValue(unversionedKey).(bool)
	return u
}

// errSlashID is a path with more segments than any IIIF request has, and
// which ends like one: an identifier holding an unescaped "/". The IIIF
// validator expects 404 for it (no image has that identifier), not 400.
var errSlashID = errors.New(`no image with that identifier; a "/" inside an identifier must be sent as %2F`)

// slashError turns the path-shape error of rest ("{id}/…" as given to
// rules.Parse) into errSlashID when rest is an image request or an
// info.json request whose identifier held an unescaped slash; any other
// error is returned as it is.
func slashError(rest []byte, err error) error {
	var re *rules.Error
	if !errors.As(err, &re) || re.Segment != "path" {
		return err
	}
	n := bytes.Count(rest, []byte("/"))
	switch {
	case n > 4: // {a}/{b}/{region}/{size}/{rotation}/{quality}.{format}
		return errSlashID
	case n > 1 && bytes.HasSuffix(rest, []byte("/info.json")):
		return errSlashID
	}
	return err
}

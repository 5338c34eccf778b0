package proxy

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"
)

// assets serves the files of an fs.FS (the embedded web assets, package
// web): the content type from the extension, a strong ETag, and a gzipped
// copy of text files for clients that accept it (Mirador's bundle is 2.3 MB,
// 0.7 MB gzipped: it matters to a reading room on a slow link). Each file is
// read, hashed and compressed once, on its first request; the set is the
// binary's own, so the memory is bounded by it.
type assets struct {
	fsys fs.FS

	mu    sync.Mutex // protects files
	files map[string]*asset
}

type asset struct {
	body, gz    []byte // gz is nil when compressing does not pay
	etag, ctype string
}

func newAssets(fsys fs.FS) *assets { return &assets{fsys: fsys, files: map[string]*asset{}} }

// load returns the file name (slash-separated, no leading slash), or false
// when there is none.
func (a *assets) load(name string) (*asset, bool) {
	if !fs.ValidPath(name) || name == "." {
		return nil, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if f, ok := a.files[name]; ok {
		return f, true
	}
	body, err := fs.ReadFile(a.fsys, name)
	if err != nil {
		return nil, false // a directory, or nothing
	}
	sum := sha256.Sum256(body)
	f := &asset{body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`,
		ctype: mime.TypeByExtension(path.Ext(name))}
	if f.ctype == "" {
		f.ctype = "application/octet-stream"
	}
	if compressible(f.ctype) && len(body) > 1024 {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		zw.Write(body)
		zw.Close()
		if b.Len() < len(body)*9/10 {
			f.gz = b.Bytes()
		}
	}
	a.files[name] = f
	return f, true
}

func compressible(ctype string) bool {
	for _, p := range []string{"text/", "application/javascript", "text/javascript", "application/json", "image/svg+xml"} {
		if strings.HasPrefix(ctype, p) {
			return true
		}
	}
	return false
}

// serve answers ctx with file name, or returns false (having written
// nothing) when there is none. cacheControl is sent as it is.
func (a *assets) serve(ctx *fasthttp.RequestCtx, name, cacheControl string) bool {
	f, ok := a.load(name)
	if !ok {
		return false
	}
	h := &ctx.Response.Header
	h.SetContentType(f.ctype)
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", cacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	if f.gz != nil {
		h.Set("Vary", "Accept-Encoding")
	}
	if inm := ctx.Request.Header.Peek("If-None-Match"); len(inm) > 0 && bytes.Contains(inm, []byte(f.etag)) {
		notModified(ctx)
		return true
	}
	body := f.body
	if f.gz != nil && ctx.Request.Header.HasAcceptEncoding("gzip") {
		h.Set("Content-Encoding", "gzip")
		body = f.gz
	}
	if ctx.IsHead() {
		h.SetContentLength(len(body))
		ctx.Response.SkipBody = true
		return true
	}
	ctx.Response.SetBodyRaw(body) // never written to: no copy
	return true
}

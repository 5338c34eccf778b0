//go:build cgo

package proxy

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/iiif-proxy/iiif-proxy/cache/cacheconf"
	"github.com/iiif-proxy/iiif-proxy/renderer/vips"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/store"
)

// benchProxy is a proxy with a disk tile tier (and memLen tiles in memory).
func benchProxy(b *testing.B, memLen int) *Proxy {
	r, err := vips.New(vips.Config{TilePath: tilePath, TilePassthrough: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	cfg := Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), SourceCacheLen: 100}
	s, err := store.Open(store.Config{Dir: filepath.Join(b.TempDir(), "tile")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	cfg.Tiers[rules.TierTile] = TierConfig{Store: s, MemLen: memLen, Policy: cacheconf.Policy{CacheControl: "public, max-age=86400"}}
	cfg.Tiers[rules.TierInfo] = TierConfig{MemLen: 100, Policy: cacheconf.Policy{CacheControl: "public, max-age=3600"}}
	p, err := New(cfg, r)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// benchHit serves the same warm tile again and again through the handler,
// without a network, to measure the proxy's own work on a hit.
func benchHit(b *testing.B, memLen int) {
	p := benchProxy(b, memLen)
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/iiif/3/pattern.tif/256,256,256,256/256,/0/default.jpg")
	ctx.Request.Header.SetHost("127.0.0.1:12415")
	p.Handle(&ctx) // warm
	if x := string(ctx.Response.Header.Peek("X-Cache")); x != "MISS" {
		b.Fatalf("warm-up: X-Cache %q", x)
	}
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		p.Handle(&ctx)
	}
	if x := string(ctx.Response.Header.Peek("X-Cache")); x != "HIT" || ctx.Response.StatusCode() != 200 {
		b.Fatalf("X-Cache %q, status %d", x, ctx.Response.StatusCode())
	}
}

func BenchmarkHitDisk(b *testing.B)   { benchHit(b, 0) }
func BenchmarkHitMemory(b *testing.B) { benchHit(b, 100) }

// BenchmarkInfoHit serves a warm info.json from memory: the cost of splicing
// the request's base into the one cached document.
func BenchmarkInfoHit(b *testing.B) {
	p := benchProxy(b, 0)
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/iiif/3/pattern.tif/info.json")
	ctx.Request.Header.SetHost("127.0.0.1:12415")
	p.Handle(&ctx) // warm
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		p.Handle(&ctx)
	}
	if x := string(ctx.Response.Header.Peek("X-Cache")); x != "HIT" || ctx.Response.StatusCode() != 200 {
		b.Fatalf("X-Cache %q, status %d", x, ctx.Response.StatusCode())
	}
}

package harness

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkRequest is the harness's cost per request on a cached hit: one
// GET over a kept-alive loopback connection to an in-process fasthttp
// server, headers read, outcome recorded. The server's share is in it too,
// so it bounds the harness's own cost from above.
func BenchmarkRequest(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(info3)
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		c.Response.Header.Set("X-Cache", "HIT")
		c.Response.Header.Set("X-Cache-Tier", "info")
		c.SetBody(body)
	}}
	go srv.Serve(l)
	defer srv.Shutdown()
	base := "http://" + l.Addr().String() + "/iiif/3"
	cl, err := newClient(base, 1, true, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	rec := &recorder{}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	url := base + "/a/info.json"
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		res, err := cl.get(url, req, resp)
		if err != nil || res.status != fasthttp.StatusOK {
			b.Fatal(res.status, err)
		}
		rec.observe("info", res, err, time.Since(t0), 0)
	}
}

//go:build cgo

package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/iiif-proxy/iiif-proxy/renderer/vips"
)

func TestLineLimiterCountsWhatItDrops(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &lineLimiter{perSecond: 3, now: func() time.Time { return now }}
	var passed int
	for range 10 {
		if ok, sup := l.allow(); ok {
			passed++
			if sup != 0 {
				t.Errorf("suppressed %d within the first second's allowance", sup)
			}
		}
	}
	if passed != 3 {
		t.Errorf("%d lines in one second, want 3", passed)
	}
	now = now.Add(time.Second)
	if ok, sup := l.allow(); !ok || sup != 7 {
		t.Errorf("next second: ok %v, suppressed %d, want true and 7", ok, sup)
	}
	if _, sup := l.allow(); sup != 0 {
		t.Errorf("the count was reported twice: %d", sup)
	}
}

// syncBuffer is a log destination tests read after the requests are done.
type syncBuffer struct {
	mu sync.Mutex // protects b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(s.b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		if m["msg"] == "access" {
			out = append(out, m)
		}
	}
	return out
}

// TestAccessLogLines: every request gets one INFO line with the fields an
// operator needs, in JSON when the logger is JSON.
func TestAccessLogLines(t *testing.T) {
	var buf syncBuffer
	cp := serveWith(t, vips.Config{TilePath: tilePath}, Config{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}, 0, "", true)
	tile := cp.base + "pattern.tif/0,0,256,256/256,/0/default.jpg"
	get(t, tile)
	get(t, tile)
	get(t, cp.base+"nothing.tif/info.json")
	lines := buf.lines(t)
	if len(lines) != 3 {
		t.Fatalf("%d access lines for 3 requests: %v", len(lines), lines)
	}
	for i, want := range []struct {
		status      float64
		cache, tier string
		level       string
	}{{200, "MISS", "tile", "INFO"}, {200, "HIT", "tile", "INFO"}, {404, "", "", "INFO"}} {
		l := lines[i]
		if l["status"] != want.status || l["level"] != want.level || l["client"] != "127.0.0.1" || l["method"] != "GET" {
			t.Errorf("line %d: %v", i, l)
		}
		if want.cache != "" && (l["cache"] != want.cache || l["tier"] != want.tier) {
			t.Errorf("line %d: cache %v tier %v, want %s %s", i, l["cache"], l["tier"], want.cache, want.tier)
		}
		if _, ok := l["took"]; !ok {
			t.Errorf("line %d has no duration", i)
		}
	}
	if lines[0]["path"] != "/iiif/3/pattern.tif/0,0,256,256/256,/0/default.jpg" || lines[0]["bytes"].(float64) < 1000 {
		t.Errorf("line 0: path %v bytes %v", lines[0]["path"], lines[0]["bytes"])
	}
}

// TestAFloodOf404sIsBounded: past ErrorLinesPerSecond, 404 lines are
// dropped and counted; successful requests are never dropped.
func TestAFloodOf404sIsBounded(t *testing.T) {
	var buf syncBuffer
	r, err := vips.New(vips.Config{TilePath: tilePath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	p, err := New(Config{Logger: slog.New(slog.NewJSONHandler(&buf, nil)),
		AccessLog: AccessLogConfig{ErrorLinesPerSecond: 5}}, r)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(5000, 0)
	p.access.lim.now = func() time.Time { return now }
	do := func(path string) int {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(path)
		p.Handle(&ctx)
		return ctx.Response.StatusCode()
	}
	for range 1000 {
		if code := do("/iiif/3/nothing.tif/info.json"); code != http.StatusNotFound {
			t.Fatalf("status %d", code)
		}
	}
	if code := do("/iiif/3/pattern.tif/info.json"); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	now = now.Add(time.Second)
	do("/iiif/3/nothing.tif/info.json")
	lines := buf.lines(t)
	if len(lines) != 7 {
		t.Fatalf("%d lines, want 5 of the flood, the 200, and one a second later", len(lines))
	}
	if lines[5]["status"] != float64(200) {
		t.Errorf("the successful request's line: %v", lines[5])
	}
	if lines[6]["suppressed"] != float64(995) {
		t.Errorf("the next second's line says suppressed=%v, want 995", lines[6]["suppressed"])
	}
	// Off: successful requests are not logged, errors are.
	buf.b.Reset()
	p.access.off = true
	do("/iiif/3/pattern.tif/info.json")
	now = now.Add(time.Second)
	do("/iiif/3/nothing.tif/info.json")
	if lines := buf.lines(t); len(lines) != 1 || lines[0]["status"] != float64(404) {
		t.Errorf("with the access log off: %v", lines)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/internal/s3test"
)

// TestS3SourcesFromTheBinary: the binary serves originals from a real S3
// server (MinIO) with RAIS's settings: every sample format, info.json, tiles
// and thumbnails; an overwritten object is rendered anew once its entries
// revalidate; with the store stopped, what the source cache holds keeps
// serving, an uncached source fails fast (502) and the breaker opens (in
// /metrics); restarted, it recovers.
func TestS3SourcesFromTheBinary(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("")
	dir := samplesDir(t)
	ids := []string{"page.tif", "page-plain.jpg", "page-jp2.jp2", "page-png.png", "page-webp.webp", "pattern.tif"}
	for _, id := range append(ids, "page.tif") {
		srv.Put(bucket, "images/"+id, filepath.Join(dir, id))
	}
	srv.Put(bucket, "images/box/never.tif", filepath.Join(dir, "page.tif"))
	env := append(srv.Env(), "RAIS_TILEPATH=s3://"+bucket+"/images", "RAIS_S3BREAKERFAILURES=2",
		"RAIS_S3BREAKERCOOLDOWN=300ms", "RAIS_S3TIMEOUT=2s",
		"RAIS_TIERS_TILE_REVALIDATE=1s", "RAIS_TIERS_INFO_REVALIDATE=1s")
	c := start(t, env...)
	base := "http://" + c.addr + "/iiif/3/"
	client := &http.Client{Timeout: 20 * time.Second}

	status, body, _, err := fetch(client, base+"page.tif/info.json")
	var info struct{ Width, Height int }
	if err != nil || status != http.StatusOK || json.Unmarshal(body, &info) != nil || info.Width != 3000 || info.Height != 4000 {
		t.Fatalf("info.json: %d %v %s", status, err, body)
	}
	for _, id := range ids {
		for _, p := range []string{"/0,0,512,512/256,/0/default.jpg", "/full/200,/0/default.jpg"} {
			status, body, _, err := fetch(client, base+id+p)
			if err != nil || status != http.StatusOK || len(body) < 500 {
				t.Errorf("%s%s: %d, %d bytes, %v", id, p, status, len(body), err)
			}
		}
	}
	if v := metric(t, c, `iiif_source_s3_breaker{state="closed"}`); v != "1" {
		t.Errorf("breaker closed = %q", v)
	}
	if v := metric(t, c, "iiif_source_s3_fetched_bytes_total"); v == "" || v == "0" {
		t.Errorf("fetched bytes = %q", v)
	}

	// Overwrite page.tif with another image: once its entries are past
	// Revalidate, the new pixels are served.
	tile := base + "page.tif/0,0,512,512/256,/0/default.jpg"
	_, before, _, _ := fetch(client, tile)
	srv.Put(bucket, "images/page.tif", filepath.Join(dir, "pattern.tif"))
	time.Sleep(1100 * time.Millisecond) // past the 1s Revalidate
	status, after, xc, err := fetch(client, tile)
	if err != nil || status != http.StatusOK || bytes.Equal(before, after) || xc == "HIT" || xc == "REVALIDATED" {
		t.Fatalf("after overwrite: %d %v X-Cache %s, same bytes %v", status, err, xc, bytes.Equal(before, after))
	}
	_, body, _, _ = fetch(client, base+"page.tif/info.json")
	if json.Unmarshal(body, &info) != nil || info.Width != 4000 || info.Height != 3000 {
		t.Fatalf("info.json after overwrite: %s", body)
	}

	// The store goes away.
	srv.Stop()
	// A new tile of a source held whole in the source cache: rendered.
	if status, _, _, err := fetch(client, base+"page-plain.jpg/512,512,512,512/256,/0/default.jpg"); err != nil || status != http.StatusOK {
		t.Errorf("cached source while S3 is down: %d %v", status, err)
	}
	// An uncached source: fails fast, never hangs, never 422.
	for range 4 {
		start := time.Now()
		status, body, _, err := fetch(client, base+"box%2Fnever.tif/info.json")
		if err != nil || (status != http.StatusBadGateway && status != http.StatusServiceUnavailable && status != http.StatusGatewayTimeout) {
			t.Fatalf("uncached source while S3 is down: %d %v %s", status, err, body)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("took %s", took)
		}
	}
	if v := metric(t, c, `iiif_source_s3_breaker{state="closed"}`); v != "0" {
		t.Errorf("breaker still closed while S3 is down (%q)", v)
	}
	if v := metric(t, c, "iiif_source_s3_breaker_opens_total"); v == "" || v == "0" {
		t.Errorf("breaker opens = %q", v)
	}
	resp, err := http.Get("http://" + c.admin + "/stats")
	if err == nil {
		var st map[string]any
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if b, _ := json.Marshal(st); !strings.Contains(string(b), `"Breaker":"open"`) && !strings.Contains(string(b), `"Breaker":"half-open"`) {
			t.Errorf("/stats does not show the breaker open: %s", b)
		}
	}

	srv.Restart()
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, _, _, err := fetch(client, base+"box%2Fnever.tif/info.json")
		if err == nil && status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered after the restart: %d %v", status, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v := metric(t, c, `iiif_source_s3_breaker{state="closed"}`); v != "1" {
		t.Errorf("breaker after recovery: closed = %q", v)
	}
	out, errOut, code := runBinary(t, binary, "stats", "-config", "/dev/null", "-admin", c.admin)
	if code != 0 || !strings.Contains(out, "S3 sources s3://"+bucket+"/images: breaker closed") {
		t.Errorf("iiif-proxy stats: %d\n%s%s", code, out, errOut)
	}
}

package main

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestRAISConfigurationsStartAndAnswerOnRAISURLs: the binary starts on the
// RAIS 2, 3 and 4 sample files as they are (listen addresses moved to free
// loopback ports), logs one warning per key it does not implement, and
// answers on RAIS's unversioned URLs with ids at the same base.
func TestRAISConfigurationsStartAndAnswerOnRAISURLs(t *testing.T) {
	samples := samplesDir(t)
	for _, tc := range []struct {
		file, webPath, baseURL string // baseURL "" means from the request
		warnings               []string
	}{
		{"rais2.toml", "/images/iiif", "http://images.example.org", []string{"RAIS setting Plugins", "RAIS setting S3Bucket"}},
		{"rais3.toml", "/iiif", "", []string{"RAIS setting DatadogAddress", "RAIS setting TracerOutputDirectory"}}, // Plugins = "": no warning
		{"rais4.toml", "/images/iiif", "https://images.example.org", []string{"RAIS setting S3Zone", "RAIS setting CapabilitiesFile"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			// INFO, so that "serving IIIF" is logged whatever the file's level.
			c := launchConfig(t, "../../internal/config/testdata/"+tc.file, nil, "RAIS_TILEPATH="+samples, "RAIS_LOGLEVEL=INFO")
			var logged []string
			deadline := time.After(30 * time.Second)
			for ready := false; !ready; {
				select {
				case line, ok := <-c.lines:
					if !ok {
						t.Fatalf("ended before serving:\n%s", strings.Join(logged, "\n"))
					}
					logged = append(logged, line)
					ready = strings.Contains(line, "serving IIIF")
				case <-deadline:
					t.Fatalf("not serving within 30s:\n%s", strings.Join(logged, "\n"))
				}
			}
			log := strings.Join(logged, "\n")
			for _, w := range tc.warnings {
				if !strings.Contains(log, "level=WARN") || !strings.Contains(log, w) {
					t.Errorf("no warning %q in:\n%s", w, log)
				}
			}
			base := tc.baseURL
			if base == "" {
				base = "http://" + c.addr
			}
			resp, err := http.Get("http://" + c.addr + tc.webPath + "/page.tif/info.json")
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			err = json.NewDecoder(resp.Body).Decode(&doc)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("RAIS's info.json URL: %d %v", resp.StatusCode, err)
			}
			if want := base + tc.webPath + "/page.tif"; doc["@id"] != want {
				t.Errorf("@id %v, want %s (2.1, the same unversioned base)", doc["@id"], want)
			}
			resp, err = http.Get("http://" + c.addr + tc.webPath + "/page.tif/full/600,/0/default.jpg")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" {
				t.Errorf("RAIS's image URL: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		})
	}
}

// TestAdminOnTheIIIFPort: RAIS allows AdminAddress = Address; the admin
// endpoints are then served on the IIIF listener beside the images (with
// the same token rules: TestPublicAdminWithoutTokenIsReadOnly), and the
// dashboard beside the demo page.
func TestAdminOnTheIIIFPort(t *testing.T) {
	addr := freePort(t)
	c := &child{addr: addr, lines: make(chan string, 1024)}
	c.cmd = exec.Command(binary, "-config", "/dev/null", "-address", addr, "-admin-address", addr,
		"-tile-path", t.TempDir(), "-cache-dir", "", "-demo-page=true")
	c.run(t)
	c.waitFor(t, "serving IIIF")
	for path, want := range map[string]int{"/metrics": 200, "/stats": 200, "/iiif/3/none.tif/info.json": 404, "/iiif/none.tif/info.json": 404,
		// "/" is the demo page's; the dashboard moves to /dashboard/.
		"/": 200, "/demo/api/ids": 200, "/dashboard/": 200, "/dashboard/static/dashboard.js": 200} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func tileStats(t *testing.T, admin string) (maxBytes int64, revalidate string) {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Tiers map[string]struct {
			MaxBytes   int64  `json:"maxBytes"`
			Revalidate string `json:"revalidate"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Tiers["tile"].MaxBytes, st.Tiers["tile"].Revalidate
}

// SIGHUP under load: the live keys apply, the others are reported as
// needing a restart, a bad file is rejected whole, no request fails and the
// process keeps running.
func TestSIGHUPReloadsUnderLoadWithoutFailingARequest(t *testing.T) {
	dir := samplesDir(t)
	conf := filepath.Join(t.TempDir(), "rais.toml")
	writeConf := func(body string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte("TilePath = \""+dir+"\"\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("[Tiers.Tile]\nMaxBytes = \"1GB\"\n")
	c := startConfig(t, conf)
	admin := adminAddress(t, c)
	if max, _ := tileStats(t, admin); max != 1<<30 {
		t.Fatalf("tile budget at start %d, want 1GB", max)
	}

	// Load: four clients over a set of tiles until told to stop.
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				url := fmt.Sprintf("http://%s/iiif/3/page.tif/%d,%d,256,256/256,/0/default.jpg", c.addr, 256*((i+w)%8), 256*(i%8))
				if i%5 == 0 {
					url = fmt.Sprintf("http://%s/iiif/3/page-plain.jpg/%d,0,512,512/128,/0/default.jpg", c.addr, 512*(i%5))
				}
				status, _, _, err := fetch(client, url)
				if err != nil || status != http.StatusOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %d %v", url, status, err))
					continue
				}
				ok.Add(1)
			}
		}()
	}
	waitServed := func(n int64) {
		t.Helper()
		for i := 0; ok.Load() < n; i++ {
			if i > 30_000 {
				t.Fatalf("the load stalled at %d responses", ok.Load())
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitServed(50)

	// A good change: live keys apply, TileCacheLen needs a restart.
	writeConf("TileCacheLen = 5\nLogLevel = \"WARN\"\n[Tiers.Tile]\nMaxBytes = \"512MB\"\nRevalidate = \"5m\"\n")
	if err := c.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	line := c.waitLine(t, "SIGHUP: configuration reloaded")
	for _, want := range []string{"Tiers.Tile.MaxBytes", "Tiers.Tile.Revalidate", "LogLevel", "needsRestart=TileCacheLen"} {
		if !strings.Contains(line, want) {
			t.Errorf("reload log lacks %s: %s", want, line)
		}
	}
	if max, reval := tileStats(t, admin); max != 512<<20 || reval != "5m0s" {
		t.Errorf("after SIGHUP: tile budget %d revalidate %s, want 512MB and 5m0s", max, reval)
	}
	n := ok.Load()
	waitServed(n + 50)

	// A bad file is rejected whole: the running configuration stays. The
	// level is WARN now, so the rejection (an error) is the line to wait for.
	writeConf("JPGQuality = 0\n[Tiers.Tile]\nMaxBytes = \"1MB\"\n")
	c.cmd.Process.Signal(syscall.SIGHUP)
	if line := c.waitLine(t, "configuration rejected"); !strings.Contains(line, "JPGQuality") {
		t.Errorf("rejection does not name the bad key: %s", line)
	}
	if max, _ := tileStats(t, admin); max != 512<<20 {
		t.Errorf("a rejected file changed the budget to %d", max)
	}

	// A burst of SIGHUPs during load.
	writeConf("[Tiers.Tile]\nMaxBytes = \"256MB\"\n")
	for range 5 {
		c.cmd.Process.Signal(syscall.SIGHUP)
	}
	n = ok.Load()
	waitServed(n + 50)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", failed.Load(), failed.Load()+ok.Load(), firstErr.Load())
	}
	for i := 0; ; i++ { // the burst is handled, one reload after another
		if max, _ := tileStats(t, admin); max == 256<<20 {
			break
		}
		if i > 3000 {
			t.Fatal("the burst of SIGHUPs was not applied")
		}
		time.Sleep(time.Millisecond)
	}
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid)); err != nil || strings.Contains(string(stat), ") Z ") {
		t.Fatalf("the process exited (%v): %s", err, stat)
	}
	if status, _, _, err := fetch(client, "http://"+c.addr+"/healthz"); err != nil || status != http.StatusOK {
		t.Fatalf("healthz after reloads: %d %v", status, err)
	}
}

// TestSIGHUPSaysWhatItDidOnceAndQuietly: a reload that raises LogLevel
// from WARN to INFO still logs what it did (the line was written at the old
// level and lost), and the RAIS keys iiif-proxy does not implement, said at
// start, are not said again on every SIGHUP; a new one is.
func TestSIGHUPSaysWhatItDidOnceAndQuietly(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "rais.toml")
	write := func(body string) {
		if err := os.WriteFile(conf, []byte("TilePath = \""+samplePyramid(t)+"\"\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("LogLevel = \"WARN\"\nPlugins = \"s3-images.so\"\n")
	c := launchConfig(t, conf, nil)
	c.waitFor(t, "RAIS setting Plugins")
	write("LogLevel = \"INFO\"\nPlugins = \"s3-images.so\"\n")
	c.cmd.Process.Signal(syscall.SIGHUP)
	var seen []string
	deadline := time.After(10 * time.Second)
	for done := false; !done; {
		select {
		case line := <-c.lines:
			seen = append(seen, line)
			done = strings.Contains(line, "SIGHUP: configuration reloaded")
		case <-deadline:
			t.Fatalf("no reload line within 10s:\n%s", strings.Join(seen, "\n"))
		}
	}
	if s := strings.Join(seen, "\n"); strings.Contains(s, "RAIS setting Plugins") {
		t.Errorf("the Plugins warning was said again on SIGHUP:\n%s", s)
	}
	write("LogLevel = \"INFO\"\nPlugins = \"s3-images.so\"\nS3Zone = \"us-west-2\"\n")
	c.cmd.Process.Signal(syscall.SIGHUP)
	if line := c.waitLine(t, "RAIS setting"); !strings.Contains(line, "S3Zone") {
		t.Errorf("after a new RAIS key: %s", line)
	}
}

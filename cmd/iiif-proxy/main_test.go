package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// These tests run the real binary: built once, started as a child process,
// spoken to over loopback, stopped by its PID.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "iiif-proxy-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// World-readable, so that the fault tests can run the binary as nobody.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "iiif-proxy")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// child is a running iiif-proxy.
type child struct {
	cmd   *exec.Cmd
	lines chan string // its stderr, line by line
	addr  string
	admin string
}

func start(t *testing.T, env ...string) *child {
	t.Helper()
	return startConfig(t, "/dev/null", env...)
}

// startConfig starts iiif-proxy with a configuration file and waits until
// it listens.
func startConfig(t *testing.T, file string, env ...string) *child {
	t.Helper()
	c := launchConfig(t, file, nil, env...)
	c.waitFor(t, "serving IIIF")
	return c
}

// launch starts the binary, with setup (if not nil) applied to its command
// first, and does not wait for it to listen.
func launch(t *testing.T, setup func(*exec.Cmd), env ...string) *child {
	t.Helper()
	return launchConfig(t, "/dev/null", setup, env...)
}

func launchConfig(t *testing.T, file string, setup func(*exec.Cmd), env ...string) *child {
	t.Helper()
	c := &child{addr: freePort(t), admin: freePort(t), lines: make(chan string, 1024)}
	c.cmd = exec.Command(binary, "-config", file, "-address", c.addr, "-admin-address", c.admin)
	c.cmd.Env = append(append(os.Environ(), "RAIS_CACHEDIR="+t.TempDir()), env...)
	if setup != nil {
		setup(c.cmd)
	}
	c.run(t)
	return c
}

// run starts c.cmd, sends its stderr line by line to c.lines, and kills it
// at cleanup if the test did not stop it.
func (c *child) run(t *testing.T) {
	t.Helper()
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
}

// waitLine reads the child's log until a line contains s and returns it.
func (c *child) waitLine(t *testing.T, s string) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				t.Fatalf("the process ended before logging %q", s)
			}
			if strings.Contains(line, s) {
				return line
			}
		case <-deadline:
			t.Fatalf("no log line with %q within 30s", s)
		}
	}
}

// waitFor reads the child's log until a line contains s.
func (c *child) waitFor(t *testing.T, s string) {
	t.Helper()
	c.waitLine(t, s)
}

func samplesDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command(binary, "samples", "-small", "-dir", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("samples: %v\n%s", err, out)
	}
	return dir
}

func TestServesSamplesAndShutsDownGracefully(t *testing.T) {
	dir := samplesDir(t)
	c := start(t, "RAIS_TILEPATH="+dir, "RAIS_LOGLEVEL=DEBUG")
	base := "http://" + c.addr + "/iiif/3/"

	resp, err := http.Get(base + "page.tif/info.json")
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ Width, Height int }
	err = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || info.Width != 3000 || info.Height != 4000 {
		t.Fatalf("info.json: %d %v %+v", resp.StatusCode, err, info)
	}
	for _, id := range []string{"page.tif", "page-plain.jpg", "page-jp2.jp2", "page-png.png", "page-webp.webp", "pattern.tif"} {
		resp, err := http.Get(base + id + "/0,0,512,512/256,/0/default.jpg")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || len(body) < 1000 {
			t.Errorf("%s tile: %d %s, %d bytes", id, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}

	// A slow render is in flight when SIGTERM arrives: it must complete.
	type result struct {
		status int
		n      int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "page-plain.jpg/full/max/33/default.png")
		if err != nil {
			done <- result{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, len(body), err}
	}()
	c.waitFor(t, "msg=rendering id=page-plain.jpg canonical=full/max/33/default.png")
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.status != 200 || r.n < 100_000 {
		t.Errorf("in-flight request during shutdown: %d, %d bytes, %v", r.status, r.n, r.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	waited := make(chan error, 1)
	go func() { waited <- c.cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the process did not exit after SIGTERM")
	}
	if _, err := net.DialTimeout("tcp", c.addr, time.Second); err == nil {
		t.Error("still listening after exit")
	}
}

func TestBadConfigurationListsEveryProblem(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "rais.toml")
	if err := os.WriteFile(cfg, []byte("TilePath = \"/nowhere\"\nJPGQuality = 500\nBogus = true\nPlugins = \"x.so\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "-config", cfg, "-log-level", "LOUD")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2\n%s", err, out)
	}
	for _, want := range []string{"TilePath", "JPGQuality", "unknown key Bogus", "LogLevel", "Plugins"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not mention %s:\n%s", want, out)
		}
	}
}

func fetch(client *http.Client, url string) (int, []byte, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, resp.Header.Get("X-Cache"), err
}

func TestCacheSurvivesSIGKILLUnderLoad(t *testing.T) {
	dir := samplesDir(t)
	cacheDir := t.TempDir()
	var paths []string
	for y := 0; y < 4000; y += 512 {
		for x := 0; x < 3000; x += 512 {
			paths = append(paths,
				fmt.Sprintf("page.tif/%d,%d,256,256/256,/0/default.jpg", x, y),      // passes through
				fmt.Sprintf("page.tif/%d,%d,512,512/256,/0/gray.jpg", x, y),         // renders, other tier
				fmt.Sprintf("page-plain.jpg/%d,%d,512,512/max/0/default.jpg", x, y)) // renders, tile tier
		}
	}
	paths = append(paths, "page.tif/full/300,/0/default.webp", "page-jp2.jp2/full/200,/0/default.png", "page.tif/info.json")

	a := start(t, "RAIS_TILEPATH="+dir, "RAIS_CACHEDIR="+cacheDir)
	client := &http.Client{Timeout: 30 * time.Second}
	var served atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < w+3*len(paths); i++ { // bounded; the kill ends it sooner
				status, _, _, err := fetch(client, "http://"+a.addr+"/iiif/3/"+paths[i%len(paths)])
				if err != nil {
					return
				}
				if status == 200 {
					served.Add(1)
				}
			}
		}()
	}
	loadStart := time.Now()
	for i := 0; served.Load() < 60; i++ { // count, then kill mid-load
		if i > 30_000 {
			t.Fatal("the server never answered 60 requests")
		}
		time.Sleep(time.Millisecond)
	}
	// The store runs without a WAL: writes reach the disk at the next
	// memtable flush, every 2 s, and a crash loses those since the last one.
	// Kill after a flush has had time to happen, still mid-load.
	time.Sleep(3*time.Second - time.Since(loadStart))
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.cmd.Wait()
	wg.Wait()

	b := start(t, "RAIS_TILEPATH="+dir, "RAIS_CACHEDIR="+cacheDir)
	fresh := start(t, "RAIS_TILEPATH="+dir)
	// The tiers open in the background: wait for the tile tier (bounded)
	// so that a slow open is not mistaken for a lost cache.
	for i := 0; metric(t, b, `iiif_cache_state{tier="tile"}`) != "0"; i++ {
		if i > 200 {
			t.Fatalf("the tile tier did not open after the crash: state %q", metric(t, b, `iiif_cache_state{tier="tile"}`))
		}
		time.Sleep(50 * time.Millisecond)
	}
	hits := 0
	for _, p := range paths {
		sb, bb, xb, err := fetch(client, "http://"+b.addr+"/iiif/3/"+p)
		if err != nil || sb != 200 {
			t.Fatalf("after the crash, %s: %d %v", p, sb, err)
		}
		sf, bf, _, err := fetch(client, "http://"+fresh.addr+"/iiif/3/"+p)
		if err != nil || sf != 200 {
			t.Fatalf("fresh server, %s: %d %v", p, sf, err)
		}
		if !bytes.Equal(bb, bf) && !strings.HasSuffix(p, "info.json") {
			t.Errorf("%s: after the crash the cache served %d bytes (%s) that differ from a fresh render (%d bytes)", p, len(bb), xb, len(bf))
		}
		if xb == "HIT" {
			hits++
		}
	}
	t.Logf("%d of %d responses were served from the cache that survived SIGKILL (%d answered before the kill)", hits, len(paths), served.Load())
	if hits == 0 {
		t.Error("nothing written before the kill survived it")
	}
}

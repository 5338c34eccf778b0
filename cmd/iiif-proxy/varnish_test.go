package main

// Purge forwarding against real Varnish (Debian's varnishd), running
// conf/varnish.vcl, the file the README tells sites to use, with its
// backend pointed at the iiif-proxy binary under test.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/proxy"
	"github.com/iiif-proxy/iiif-proxy/purge"
)

const varnishdBin = "/usr/sbin/varnishd"

// varnish is one varnishd in front of an iiif-proxy.
type varnish struct {
	addr string
	cmd  *exec.Cmd
	out  *logBuf // varnishd's output, for failure messages
}

// logBuf collects a process's output; String may be called while it runs.
type logBuf struct {
	mu sync.Mutex // protects b
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startVarnish runs varnishd (manager in the foreground, -F) on addr with
// conf/varnish.vcl, its backend set to backend ("host:port"), in a working
// directory of its own (-n); stopped by PID at cleanup.
func startVarnish(t *testing.T, backend, addr string) *varnish {
	t.Helper()
	if _, err := os.Stat(varnishdBin); err != nil {
		missingTool(t, varnishdBin)
	}
	if _, err := exec.LookPath("cc"); err != nil {
		missingTool(t, "cc (varnishd compiles its VCL with it)")
	}
	// Not t.TempDir: varnishd runs its child as another user (vcache),
	// which must traverse the directory; the test's temp root is 0700.
	dir, err := os.MkdirTemp("", "iiif-varnish-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	vcl, err := os.ReadFile("../../conf/varnish.vcl")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(backend)
	be := regexp.MustCompile(`\.host = "[^"]*";\s*\.port = "[^"]*";`)
	if !be.Match(vcl) {
		t.Fatal("conf/varnish.vcl has no backend .host and .port to point at the test server")
	}
	vcl = be.ReplaceAll(vcl, []byte(fmt.Sprintf(`.host = "%s"; .port = "%s";`, host, port)))
	vclFile := filepath.Join(dir, "iiif-proxy.vcl")
	if err := os.WriteFile(vclFile, vcl, 0o644); err != nil {
		t.Fatal(err)
	}
	v := &varnish{addr: addr, out: &logBuf{}}
	v.cmd = exec.Command(varnishdBin, "-F", "-n", filepath.Join(dir, "work"), "-a", v.addr, "-T", "127.0.0.1:0",
		"-f", vclFile, "-s", "malloc,32m", "-p", "thread_pool_min=5", "-p", "thread_pools=1")
	v.cmd.Stdout, v.cmd.Stderr = v.out, v.out
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopCmd(v.cmd) })
	waitPort(t, v.addr)
	return v
}

// get fetches path through Varnish and says whether Varnish answered from
// its cache: X-Varnish holds two transaction ids on a hit, one on a miss
// (the request went to iiif-proxy).
func (v *varnish) get(t *testing.T, path string) (hit bool) {
	t.Helper()
	resp, err := http.Get("http://" + v.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s through Varnish: %s\n%s", path, resp.Status, v.out)
	}
	hit = len(strings.Fields(resp.Header.Get("X-Varnish"))) == 2
	if xc := resp.Header.Get("X-Cache"); hit && (xc != "HIT" || resp.Header.Get("X-Cache-Layer") != "varnish") {
		t.Errorf("GET %s: a Varnish hit says X-Cache %q, X-Cache-Layer %q: want HIT from varnish (conf/varnish.vcl)",
			path, xc, resp.Header.Get("X-Cache-Layer"))
	}
	return hit
}

// A purge on iiif-proxy's admin API reaches the Varnish caches in front:
// one that takes BANs drops every URL of the image (tiles, info.json, each
// version form and percent-encoding) and nothing else; one that takes
// PURGE drops the info.json and base URLs it is sent (tiles stay: the
// README says so). A dead webhook target costs the purge nothing and is
// counted.
func TestPurgeReachesVarnish(t *testing.T) {
	if _, err := os.Stat(varnishdBin); err != nil {
		missingTool(t, varnishdBin)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // refuses connections
	banAddr, purgeAddr := freePort(t), freePort(t)
	// Varnish's ports are chosen first, iiif-proxy (its backend) started
	// first.
	// A tree of its own: the test replaces a source (the shared samples
	// must not change under other tests).
	images := t.TempDir()
	pattern, err := os.ReadFile(filepath.Join(samplePyramid(t), "pattern.tif"))
	if err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(images, "sub"), 0o755)
	for _, f := range []string{"pattern.tif", "sub/pattern.tif"} {
		if err := os.WriteFile(filepath.Join(images, f), pattern, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := launchConfig(t, "/dev/null", nil, "RAIS_TILEPATH="+images, "RAIS_TIERS_TILE_REVALIDATE=1s",
		"RAIS_PURGEFORWARD=ban http://"+banAddr+",purge http://"+purgeAddr+",webhook http://"+dead+"/hook",
		"RAIS_PURGEFORWARDATTEMPTS=2", "RAIS_PURGEFORWARDBACKOFF=10ms")
	c.waitFor(t, "serving IIIF")
	ban := startVarnish(t, c.addr, banAddr)
	pur := startVarnish(t, c.addr, purgeAddr)

	const (
		tile    = "/iiif/3/sub%2Fpattern.tif/0,0,256,256/256,/0/default.jpg"
		tile2   = "/iiif/2/sub%2fpattern.tif/0,0,512,512/256,/0/default.jpg" // 2.1, lower-case escape
		info3   = "/iiif/3/sub%2Fpattern.tif/info.json"
		infoRAI = "/iiif/sub%2Fpattern.tif/info.json" // RAIS's unversioned form
		other   = "/iiif/3/pattern.tif/0,0,256,256/256,/0/default.jpg"
	)
	paths := []string{tile, tile2, info3, infoRAI, other}
	for _, v := range []*varnish{ban, pur} {
		for _, p := range paths {
			if v.get(t, p) {
				t.Fatalf("first GET %s through Varnish was a hit", p)
			}
			if !v.get(t, p) {
				t.Fatalf("second GET %s through Varnish was not a hit: the VCL or the headers keep it from caching", p)
			}
		}
	}

	start := time.Now()
	out, errOut, code := runBinary(t, binary, "purge", "-config", "/dev/null", "-admin", c.admin, "sub/pattern.tif")
	if code != 0 {
		t.Fatalf("purge: exit %d\n%s\n%s", code, out, errOut)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the purge took %v: forwarding to a dead target must not delay it", took)
	}

	// Wait for forwarding: 1 BAN, 6 PURGEs (info.json and base of 3 forms),
	// the webhook given up after 2 attempts.
	st := waitForwarded(t, c, ban, func(f []purge.TargetStats) bool {
		return len(f) == 3 && f[0].Sent == 1 && f[1].Sent == 6 && f[2].Dropped == 1
	})
	if f := st; f[0].Failed != 0 || f[1].Failed != 0 || f[2].Failed != 2 || f[2].Retried != 1 {
		t.Errorf("forwarding counters %+v: want no failure at Varnish, 2 attempts at the dead webhook", f)
	}

	// The ban: every URL of the image is fetched from iiif-proxy again;
	// another image's tile is still a hit.
	for _, p := range []string{tile, tile2, info3, infoRAI} {
		if ban.get(t, p) {
			t.Errorf("after the BAN, %s is still a Varnish hit", p)
		}
	}
	if !ban.get(t, other) {
		t.Errorf("after the BAN of sub/pattern.tif, %s (another image) is no longer a hit", other)
	}
	// PURGE: the info.json of each form goes; tiles stay (nothing names them).
	for _, p := range []string{info3, infoRAI} {
		if pur.get(t, p) {
			t.Errorf("after the PURGE, %s is still a Varnish hit", p)
		}
	}
	if !pur.get(t, tile) || !pur.get(t, other) {
		t.Errorf("PURGE took tiles it does not name: the README's account of PURGE is wrong")
	}

	// A source replaced: the first request that reaches iiif-proxy after
	// the tile tier's Revalidate (1s) finds it changed, purges it here and
	// forwards the purge: Varnish fetches the image's URLs again.
	for _, p := range []string{info3, tile} {
		if !ban.get(t, p) {
			t.Fatalf("%s is not cached in Varnish again", p)
		}
	}
	time.Sleep(1100 * time.Millisecond) // the binary's clock cannot be moved
	if err := os.WriteFile(filepath.Join(images, "sub", "pattern.tif.new"), pattern, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(images, "sub", "pattern.tif.new"), filepath.Join(images, "sub", "pattern.tif")); err != nil {
		t.Fatal(err) // a new inode: a new identity
	}
	resp, err := http.Get("http://" + c.addr + tile) // not through Varnish
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Cache"); got != "MISS" {
		t.Fatalf("the replaced source's tile: X-Cache %s, want MISS", got)
	}
	// To every target, as the admin purge was.
	waitForwarded(t, c, ban, func(f []purge.TargetStats) bool { return f[0].Sent == 2 && f[1].Sent == 12 && f[2].Dropped == 2 })
	for _, p := range []string{info3, tile} {
		if ban.get(t, p) {
			t.Errorf("after the source changed, %s is still a Varnish hit", p)
		}
	}

	resp, err = http.Get("http://" + c.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		fmt.Sprintf(`iiif_purge_forward_total{result="sent",target="ban http://%s"} 2`, banAddr),
		fmt.Sprintf(`iiif_purge_forward_total{result="dropped",target="webhook http://%s/hook"} 2`, dead),
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
}

// waitForwarded polls the server's /stats until done holds for its purge
// forwarding counters, and returns them.
func waitForwarded(t *testing.T, c *child, v *varnish, done func([]purge.TargetStats) bool) []purge.TargetStats {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var st proxy.Stats
		resp, err := http.Get("http://" + c.admin + "/stats")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if done(st.PurgeForward) {
			return st.PurgeForward
		}
		if time.Now().After(deadline) {
			t.Fatalf("forwarding counters %+v after 20s\nVarnish:\n%s", st.PurgeForward, v.out)
		}
	}
}

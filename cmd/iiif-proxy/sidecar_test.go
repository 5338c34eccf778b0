package main

// Sidecar mode against real upstreams: Debian's IIPImage (iipsrv, FastCGI)
// behind nginx, and a second iiif-proxy in embedded mode, each serving the
// sample pyramid on loopback. One suite holds both to the same behaviour.
// The sidecar itself runs in this process (proxy + cache + upstream client)
// so that its clock can be moved instead of slept on; the upstreams are
// real processes, stopped and frozen by their PIDs.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/cache/cacheconf"
	"github.com/iiif-proxy/iiif-proxy/proxy"
	"github.com/iiif-proxy/iiif-proxy/renderer/upstream"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/store"
)

const (
	iipsrvBin = "/usr/lib/iipimage-server/iipsrv.fcgi"
	nginxBin  = "/usr/sbin/nginx"
)

// upstreamServer is a real IIIF server the sidecar sits in front of.
type upstreamServer interface {
	// URL is the Upstream setting: "http://127.0.0.1:port/prefix".
	URL() string
	// Version is the IIIF version the server speaks.
	Version() rules.Version
	// Requests counts the requests it logged whose path contains s.
	Requests(t *testing.T, s string) int
	// Freeze and Thaw stop and resume it (SIGSTOP, SIGCONT): connections
	// are accepted and never answered.
	Freeze(t *testing.T)
	Thaw(t *testing.T)
	// ConditionalInfo says whether it answers a conditional request for
	// an unchanged info.json with 304 (IIPImage 1.1 sends the document
	// again, with the same Last-Modified).
	ConditionalInfo() bool
	// Stop kills it by PID; Start starts it again on the same address.
	Stop(t *testing.T)
	Start(t *testing.T)
}

// sidecarSamples writes the sample pyramid (pattern.tif, 4000×3000) and a
// copy under a subdirectory, for identifiers with an escaped slash.
var sidecarSamples = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "iiif-sidecar-samples-")
	if err != nil {
		return "", err
	}
	os.Chmod(dir, 0o755) // iipsrv may run as another user
	if out, err := exec.Command(binary, "samples", "-only", "pattern", "-dir", dir).CombinedOutput(); err != nil {
		return "", fmt.Errorf("samples: %v\n%s", err, out)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(dir, "pattern.tif"))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "pattern.tif"), b, 0o644); err != nil {
		return "", err
	}
	// Whole seconds, an hour ago: HTTP dates have whole seconds, and a
	// server comparing If-Modified-Since with a file written this very
	// second would call it modified.
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, f := range []string{"pattern.tif", "sub/pattern.tif"} {
		if err := os.Chtimes(filepath.Join(dir, f), old, old); err != nil {
			return "", err
		}
	}
	return dir, nil
})

func samplePyramid(t *testing.T) string {
	t.Helper()
	dir, err := sidecarSamples()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// missingTool skips the test naming what is missing, or fails it in CI
// (CI=true), where `make test` installs it (sidecar-deps).
func missingTool(t *testing.T, what string) {
	t.Helper()
	msg := fmt.Sprintf("%s is missing: `make sidecar-deps` (or apt-get install iipimage-server nginx-light varnish) installs it", what)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// ---- IIPImage behind nginx

type iipimage struct {
	dir, images   string
	listen, fcgi  string
	nginx, iipsrv *exec.Cmd
}

func startIIPImage(t *testing.T) *iipimage {
	t.Helper()
	for _, bin := range []string{iipsrvBin, nginxBin} {
		if _, err := os.Stat(bin); err != nil {
			missingTool(t, bin)
		}
	}
	s := &iipimage{dir: t.TempDir(), images: samplePyramid(t), listen: freePort(t), fcgi: freePort(t)}
	os.Chmod(s.dir, 0o755)
	conf := fmt.Sprintf(`worker_processes 1;
daemon off;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 1024; }
http {
    log_format counted '$request_uri $status';
    access_log %[1]s/access.log counted;
    client_body_temp_path %[1]s/tmp-client;
    fastcgi_temp_path %[1]s/tmp-fastcgi;
    proxy_temp_path %[1]s/tmp-proxy;
    uwsgi_temp_path %[1]s/tmp-uwsgi;
    scgi_temp_path %[1]s/tmp-scgi;
    fastcgi_buffer_size 32k;
    fastcgi_buffers 64 16k;
    fastcgi_max_temp_file_size 0;
    server {
        listen %[2]s;
        # /iiif/{identifier}/... -> iipsrv.fcgi?IIIF={identifier}/...
        location ~ ^/iiif/(.+)$ {
            fastcgi_pass %[3]s;
            fastcgi_param QUERY_STRING    IIIF=$1;
            fastcgi_param REQUEST_METHOD  $request_method;
            fastcgi_param SCRIPT_NAME     /iiif;
            fastcgi_param REQUEST_URI     $request_uri;
            fastcgi_param SERVER_PROTOCOL $server_protocol;
            fastcgi_param SERVER_NAME     $host;
            fastcgi_param SERVER_PORT     $server_port;
            fastcgi_param HTTP_HOST       $http_host;
            fastcgi_param HTTP_IF_MODIFIED_SINCE $http_if_modified_since if_not_empty;
        }
    }
}
`, s.dir, s.listen, s.fcgi)
	if err := os.WriteFile(filepath.Join(s.dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Start(t)
	t.Cleanup(func() {
		for _, c := range []*exec.Cmd{s.nginx, s.iipsrv} {
			stopCmd(c)
		}
	})
	return s
}

func stopCmd(c *exec.Cmd) {
	if c == nil || c.Process == nil || c.ProcessState != nil {
		return
	}
	c.Process.Signal(syscall.SIGCONT)
	c.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.Process.Kill()
		<-done
	}
}

func waitPort(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after 10s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *iipimage) Start(t *testing.T) {
	t.Helper()
	if s.iipsrv == nil || s.iipsrv.ProcessState != nil {
		s.iipsrv = exec.Command(iipsrvBin, "--bind", s.fcgi, "--backlog", "1024")
		s.iipsrv.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LOGFILE=" + filepath.Join(s.dir, "iipsrv.log"),
			"VERBOSITY=1", "MAX_IMAGE_CACHE_SIZE=0", "FILESYSTEM_PREFIX=" + s.images + "/", "JPEG_QUALITY=75"}
		if err := s.iipsrv.Start(); err != nil {
			t.Fatalf("starting iipsrv: %v", err)
		}
		waitPort(t, s.fcgi)
	}
	s.nginx = exec.Command(nginxBin, "-p", s.dir, "-c", filepath.Join(s.dir, "nginx.conf"), "-e", filepath.Join(s.dir, "nginx-error.log"))
	if out, err := exec.Command(nginxBin, "-t", "-q", "-p", s.dir, "-c", filepath.Join(s.dir, "nginx.conf"), "-e", filepath.Join(s.dir, "nginx-error.log")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	if err := s.nginx.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	waitPort(t, s.listen)
}

func (s *iipimage) URL() string            { return "http://" + s.listen + "/iiif" }
func (s *iipimage) Version() rules.Version { return rules.V2 }
func (s *iipimage) ConditionalInfo() bool  { return false }
func (s *iipimage) Freeze(t *testing.T)    { sendSignal(t, s.iipsrv, syscall.SIGSTOP) }
func (s *iipimage) Thaw(t *testing.T)      { sendSignal(t, s.iipsrv, syscall.SIGCONT) }

// Stop stops nginx, the HTTP front: connections are refused.
func (s *iipimage) Stop(t *testing.T) { stopCmd(s.nginx) }

func (s *iipimage) Requests(t *testing.T, sub string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, "access.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Count(string(b), sub)
}

// settledRequests counts the upstream's requests matching sub once at
// least want are logged (bounded): nginx writes its access log line after
// the response has gone, so a count taken at once can miss the last one.
func settledRequests(t *testing.T, up interface {
	Requests(*testing.T, string) int
}, sub string, want int) int {
	t.Helper()
	n := up.Requests(t, sub)
	for i := 0; n < want && i < 100; i++ {
		time.Sleep(20 * time.Millisecond)
		n = up.Requests(t, sub)
	}
	return n
}

func sendSignal(t *testing.T, c *exec.Cmd, sig syscall.Signal) {
	t.Helper()
	if err := c.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to pid %d: %v", sig, c.Process.Pid, err)
	}
	if sig == syscall.SIGSTOP {
		waitStopped(t, c.Process.Pid)
	}
}

// waitStopped waits until every thread of pid is stopped: SIGSTOP is
// delivered asynchronously, and a thread still running could answer one
// more request.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		stopped := len(tasks) > 0
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			i := bytes.LastIndexByte(b, ')')
			if err != nil || i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
				stopped = false
				break
			}
		}
		if stopped {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d did not stop within 5s", pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// ---- iiif-proxy in embedded mode

type embedded struct {
	addr string
	c    *child
	mu   sync.Mutex // protects log
	log  []string   // its request log lines, across restarts
}

func startEmbedded(t *testing.T) *embedded {
	t.Helper()
	e := &embedded{addr: freePort(t)}
	e.Start(t)
	t.Cleanup(func() { stopCmd(e.c.cmd) })
	return e
}

func (e *embedded) Start(t *testing.T) {
	t.Helper()
	c := &child{addr: e.addr, admin: freePort(t)}
	c.cmd = exec.Command(binary, "-config", "/dev/null", "-address", c.addr, "-admin-address", c.admin,
		"-tile-path", samplePyramid(t), "-log-level", "DEBUG", "-cache-dir", "", "-access-log")
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		b := make([]byte, 0, 4096)
		buf := make([]byte, 64<<10)
		for {
			n, err := stderr.Read(buf)
			b = append(b, buf[:n]...)
			for {
				i := bytes.IndexByte(b, '\n')
				if i < 0 {
					break
				}
				if line := string(b[:i]); strings.Contains(line, "msg=access") {
					e.mu.Lock()
					e.log = append(e.log, line)
					e.mu.Unlock()
				}
				b = b[i+1:]
			}
			if err != nil {
				return
			}
		}
	}()
	e.c = c
	waitPort(t, e.addr)
}

func (e *embedded) URL() string            { return "http://" + e.addr + "/iiif/3" }
func (e *embedded) Version() rules.Version { return rules.V3 }
func (e *embedded) ConditionalInfo() bool  { return true }
func (e *embedded) Freeze(t *testing.T)    { sendSignal(t, e.c.cmd, syscall.SIGSTOP) }
func (e *embedded) Thaw(t *testing.T)      { sendSignal(t, e.c.cmd, syscall.SIGCONT) }
func (e *embedded) Stop(t *testing.T)      { stopCmd(e.c.cmd) }

func (e *embedded) Requests(t *testing.T, sub string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, l := range e.log {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// ---- the sidecar under test

type sidecar struct {
	base string // http://127.0.0.1:port
	p    *proxy.Proxy
	u    *upstream.Upstream
	now  atomic.Int64 // the sidecar's clock, unix ns
}

func (s *sidecar) clock() time.Time        { return time.Unix(0, s.now.Load()) }
func (s *sidecar) advance(d time.Duration) { s.now.Add(int64(d)) }

func startSidecar(t *testing.T, up upstreamServer) *sidecar { return startSidecarAt(t, up.URL(), 100) }

// startSidecarAt starts a sidecar with Upstream = url, keeping
// sourceCacheLen source descriptions in memory (0: every request asks).
func startSidecarAt(t *testing.T, url string, sourceCacheLen int) *sidecar {
	t.Helper()
	s := &sidecar{}
	s.now.Store(time.Now().UnixNano()) // the store stamps entries with the real time
	u, err := upstream.New(upstream.Config{URL: url, Timeout: 1500 * time.Millisecond,
		ConnectTimeout: time.Second, MaxConns: 16, Backoff: time.Second, MaxBackoff: 2 * time.Second, Clock: s.clock})
	if err != nil {
		t.Fatal(err)
	}
	s.u = u
	cfg := proxy.Config{SourceCacheLen: sourceCacheLen, Clock: s.clock, RenderTimeout: 10 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	dir := t.TempDir()
	for tr := range rules.NumTiers {
		st, err := store.Open(store.Config{Dir: filepath.Join(dir, tr.String())})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		cfg.Tiers[tr] = proxy.TierConfig{Store: st, MemLen: 100, Policy: cacheconf.Policy{Revalidate: time.Minute, CacheControl: "public"}}
	}
	p, err := proxy.New(cfg, u)
	if err != nil {
		t.Fatal(err)
	}
	s.p = p
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := p.Server()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		sidecarClient.CloseIdleConnections() // or Shutdown waits for them to time out
		srv.Shutdown()
		<-done
		u.Close()
	})
	s.base = "http://" + ln.Addr().String()
	return s
}

type got struct {
	status int
	header http.Header
	body   []byte
}

var sidecarClient = &http.Client{Timeout: 20 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}

func hget(t *testing.T, url string, hdr ...string) got {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := sidecarClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return got{resp.StatusCode, resp.Header, b}
}

// canonical is path (a request in version v for the 4000×3000 sample) as
// the upstream is asked for it: its version's canonical form.
func canonical(t *testing.T, v, upv rules.Version, path string) string {
	t.Helper()
	req, err := rules.Parse(v, path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := req.Resolve(rules.ImageInfo{Width: 4000, Height: 3000}, rules.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	res.Version = upv
	return string(rules.AppendEscapedID(nil, req.ID)) + "/" + res.Canonical()
}

func TestSidecarInFrontOfIIPImage(t *testing.T) { sidecarSuite(t, startIIPImage(t)) }

func TestSidecarInFrontOfEmbeddedIIIFProxy(t *testing.T) { sidecarSuite(t, startEmbedded(t)) }

// sidecarSuite is the one behaviour both upstreams are held to.
func sidecarSuite(t *testing.T, up upstreamServer) {
	sc := startSidecar(t, up)
	upv := up.Version()

	t.Run("info.json", func(t *testing.T) {
		for _, v := range []rules.Version{rules.V3, rules.V2} {
			for _, id := range []string{"pattern.tif", "sub%2Fpattern.tif"} {
				r := hget(t, sc.base+"/iiif/"+v.String()[:1]+"/"+id+"/info.json")
				if r.status != http.StatusOK {
					t.Fatalf("%s %s: %d %s", v, id, r.status, r.body)
				}
				var doc map[string]any
				if err := json.Unmarshal(r.body, &doc); err != nil {
					t.Fatal(err)
				}
				key, want := "id", sc.base+"/iiif/3/"+id
				if v == rules.V2 {
					key, want = "@id", sc.base+"/iiif/2/"+id
				}
				if doc[key] != want || doc["width"] != 4000.0 || doc["height"] != 3000.0 {
					t.Errorf("%s %s: %s=%v width=%v, want %s", v, id, key, doc[key], doc["width"], want)
				}
				if v == upv {
					// The upstream's own document, byte for byte but the id.
					direct := hget(t, up.URL()+"/"+id+"/info.json")
					var ud map[string]any
					json.Unmarshal(direct.body, &ud)
					upID, _ := ud[key].(string)
					if upID == "" || !bytes.Equal(bytes.Replace(direct.body, []byte(jsonString(upID)), []byte(jsonString(want)), 1), r.body) {
						t.Errorf("%s %s: not the upstream's document with the id rewritten:\n%s\n%s", v, id, direct.body, r.body)
					}
				}
			}
		}
		if n := up.Requests(t, "sub%2Fpattern.tif/info.json"); n == 0 {
			t.Errorf("the escaped slash did not reach the upstream as %%2F")
		}
	})

	// PNG: IIPImage 1.1 answers 400 (it makes JPEG only), which must pass
	// through uncached; iiif-proxy makes it.
	paths := []string{"0,0,256,256/256,/0/default.jpg", "256,256,256,256/256,/0/default.jpg",
		"0,0,1024,1024/256,/0/default.jpg", "full/200,/0/default.jpg", "full/!300,300/0/default.jpg", "full/90,/0/default.png"}
	t.Run("images", func(t *testing.T) {
		for _, v := range []rules.Version{rules.V3, rules.V2} {
			for _, path := range paths {
				for _, id := range []string{"pattern.tif", "sub%2Fpattern.tif"} {
					url := sc.base + "/iiif/" + v.String()[:1] + "/" + id + "/" + path
					first, second := hget(t, url), hget(t, url)
					direct := hget(t, up.URL()+"/"+canonical(t, v, upv, id+"/"+path))
					if direct.status >= 400 && direct.status < 500 {
						if first.status != direct.status || !bytes.Equal(first.body, direct.body) || second.header.Get("X-Cache") != "" {
							t.Errorf("%s: the upstream's %d came through as %d %q (X-Cache %q)", url, direct.status, first.status, first.body, second.header.Get("X-Cache"))
						}
						continue
					}
					if first.status != http.StatusOK || direct.status != http.StatusOK {
						t.Fatalf("%s: proxy %d, upstream %d", url, first.status, direct.status)
					}
					if !bytes.Equal(first.body, direct.body) || !bytes.Equal(second.body, direct.body) {
						t.Errorf("%s: %d bytes through the proxy, %d from the upstream: not identical", url, len(first.body), len(direct.body))
					}
					if x := second.header.Get("X-Cache"); x != "HIT" {
						t.Errorf("%s: second X-Cache %s", url, x)
					}
					if first.header.Get("Last-Modified") == "" || first.header.Get("ETag") != second.header.Get("ETag") {
						t.Errorf("%s: validators %q %q / %q", url, first.header.Get("Last-Modified"), first.header.Get("ETag"), second.header.Get("ETag"))
					}
				}
			}
		}
	})

	tile := sc.base + "/iiif/3/pattern.tif/0,0,256,256/256,/0/default.jpg"
	t.Run("conditional requests", func(t *testing.T) {
		r := hget(t, tile)
		if c := hget(t, tile, "If-None-Match", r.header.Get("ETag")); c.status != http.StatusNotModified {
			t.Errorf("If-None-Match: %d", c.status)
		}
		if c := hget(t, tile, "If-Modified-Since", r.header.Get("Last-Modified")); c.status != http.StatusNotModified {
			t.Errorf("If-Modified-Since: %d", c.status)
		}
		if c := hget(t, tile, "If-None-Match", `"other"`); c.status != http.StatusOK {
			t.Errorf("a different ETag: %d", c.status)
		}
	})

	t.Run("404 passes through, remembered", func(t *testing.T) {
		for range 3 {
			if r := hget(t, sc.base+"/iiif/3/missing.tif/info.json"); r.status != http.StatusNotFound {
				t.Errorf("missing image: %d", r.status)
			}
		}
		if n := settledRequests(t, up, "missing.tif", 1); n != 1 {
			t.Errorf("the upstream was asked %d times for a missing image, want 1", n)
		}
		if r := hget(t, sc.base+"/iiif/3/pattern.tif/0,0,0,0/max/0/default.jpg"); r.status != http.StatusBadRequest {
			t.Errorf("a bad URL: %d, want 400 at the edge", r.status)
		}
		if n := up.Requests(t, "0,0,0,0"); n != 0 {
			t.Errorf("a bad URL reached the upstream")
		}
	})

	t.Run("stampede of 200 reaches the upstream once", func(t *testing.T) {
		path := "512,512,256,256/256,/0/default.jpg"
		up2 := canonical(t, rules.V3, upv, "pattern.tif/"+path)
		before := up.Requests(t, up2)
		var wg sync.WaitGroup
		bodies := make([][]byte, 200)
		for i := range bodies {
			wg.Go(func() {
				r := hget(t, sc.base+"/iiif/3/pattern.tif/"+path)
				if r.status == http.StatusOK {
					bodies[i] = r.body
				}
			})
		}
		wg.Wait()
		for i, b := range bodies {
			if b == nil || !bytes.Equal(b, bodies[0]) {
				t.Fatalf("response %d differs or failed", i)
			}
		}
		if n := settledRequests(t, up, up2, before+1) - before; n != 1 {
			t.Errorf("200 concurrent requests reached the upstream %d times, want 1", n)
		}
	})

	t.Run("upstream frozen: 504, nothing cached", func(t *testing.T) {
		up.Freeze(t)
		r := hget(t, sc.base+"/iiif/3/pattern.tif/768,768,256,256/256,/0/default.jpg")
		up.Thaw(t)
		if r.status != http.StatusGatewayTimeout {
			t.Errorf("a frozen upstream: %d %v, want 504", r.status, r.header)
		}
	})

	t.Run("upstream stopped: stale-if-error, 502", func(t *testing.T) {
		sc.advance(2 * time.Minute) // every entry is past its tier's Revalidate
		up.Stop(t)
		for _, path := range paths[:3] {
			r := hget(t, sc.base+"/iiif/3/pattern.tif/"+path)
			if r.status != http.StatusOK || r.header.Get("X-Cache") != "STALE" {
				t.Errorf("%s with the upstream down: %d %s, want 200 STALE", path, r.status, r.header.Get("X-Cache"))
			}
		}
		if r := hget(t, sc.base+"/iiif/3/pattern.tif/1024,1024,256,256/256,/0/default.jpg"); r.status != http.StatusBadGateway {
			t.Errorf("nothing stale and the upstream down: %d, want 502", r.status)
		}
		st := sc.u.Stats().Upstream
		if st.Up || st.Errors == 0 {
			t.Errorf("upstream stats after failures: %+v, want it marked down", st)
		}
		// Down: requests fail at once, without reaching it.
		refused := st.Refused
		hget(t, sc.base+"/iiif/3/pattern.tif/1280,1280,256,256/256,/0/default.jpg")
		if sc.u.Stats().Upstream.Refused == refused {
			t.Error("a down upstream was asked again before its backoff")
		}
	})

	t.Run("recovery", func(t *testing.T) {
		up.Start(t)
		sc.advance(time.Minute) // past the backoff: the next request probes
		r := hget(t, sc.base+"/iiif/3/pattern.tif/1024,1024,256,256/256,/0/default.jpg")
		if r.status != http.StatusOK {
			t.Fatalf("after the upstream came back: %d %s", r.status, r.body)
		}
		if !sc.u.Stats().Upstream.Up {
			t.Error("still marked down after a success")
		}
		sc.advance(2 * time.Minute)
		nm := sc.u.Stats().Upstream.NotModified
		r = hget(t, tile)
		if r.status != http.StatusOK || r.header.Get("X-Cache") != "REVALIDATED" {
			t.Errorf("an old entry after recovery: %d %s, want REVALIDATED", r.status, r.header.Get("X-Cache"))
		}
		if up.ConditionalInfo() && sc.u.Stats().Upstream.NotModified == nm {
			t.Errorf("revalidation was not answered 304 (a conditional request that moves no bytes)")
		}
	})

	t.Run("info.json unusable: normalised keys", func(t *testing.T) { unusableInfo(t, up) })
}

// unusableInfo runs a second sidecar in front of up through a loopback
// front that answers info.json 500 once told to (an upstream whose
// info.json is broken while its images work), keeping no description in
// memory, so each request describes its image again.
func unusableInfo(t *testing.T, up upstreamServer) {
	upv := up.Version()
	front := startFront(t, up.URL())
	sc := startSidecarAt(t, front.URL(), 0)

	// A stored description asks in the version the upstream speaks, from
	// whichever stored document it is made (in front of IIPImage, the 3.0
	// one is the proxy's own, built from IIPImage's 2.1).
	for _, v := range []string{"3", "2"} {
		if r := hget(t, sc.base+"/iiif/"+v+"/pattern.tif/info.json"); r.status != http.StatusOK {
			t.Fatalf("info.json %s: %d", v, r.status)
		}
	}
	front.failInfo.Store(true)
	path := "pattern.tif/0,0,256,256/256,/0/default.jpg"
	r := hget(t, sc.base+"/iiif/3/"+path)
	want := canonical(t, rules.V3, upv, path)
	direct := hget(t, up.URL()+"/"+want)
	if r.status != http.StatusOK || !bytes.Equal(r.body, direct.body) || front.count(want) != 1 {
		t.Errorf("%s from a stored description: %d, upstream asked for %q, want %q once", path, r.status, front.paths(), want)
	}

	// No description at all: keyed and asked by the normalised form.
	id := "sub%2Fpattern.tif"
	for _, tc := range []struct{ v, path, same string }{
		{"3", "full/200,/0/default.jpg", "full/200,/360/default.jpg"},
		{"2", "0,0,512,512/256,/0/default.jpg", "0,0,512,512/256,/0.0/default.jpg"},
		{"3", "full/!300,300/0/default.jpg", "full/!300,300/360.0/default.jpg"},
	} {
		first := hget(t, sc.base+"/iiif/"+tc.v+"/"+id+"/"+tc.path)
		again := hget(t, sc.base+"/iiif/"+tc.v+"/"+id+"/"+tc.same)
		direct := hget(t, up.URL()+"/"+id+"/"+tc.path)
		if first.status != http.StatusOK || direct.status != http.StatusOK || !bytes.Equal(first.body, direct.body) {
			t.Errorf("%s: %d (%d bytes), upstream %d (%d bytes): want the same bytes", tc.path, first.status, len(first.body), direct.status, len(direct.body))
		}
		if first.header.Get("X-Cache") != "MISS" || again.header.Get("X-Cache") != "HIT" || !bytes.Equal(again.body, first.body) {
			t.Errorf("%s then %s: X-Cache %s, %s; want MISS then a HIT on the same entry", tc.path, tc.same, first.header.Get("X-Cache"), again.header.Get("X-Cache"))
		}
		if n := front.count(id + "/" + tc.path); n != 1 {
			t.Errorf("%s: the upstream was asked %d times, want once", tc.path, n)
		}
	}
	if n := front.count(id + "/info.json"); n != 1 {
		t.Errorf("the broken info.json was asked %d times, want once (remembered)", n)
	}
	if r := hget(t, sc.base+"/iiif/3/"+id+"/0,0,0,0/max/0/default.jpg"); r.status != http.StatusBadRequest || front.count("0,0,0,0") != 0 {
		t.Errorf("a bad URL without a description: %d, want 400 at the edge", r.status)
	}
}

// front passes requests through to a real upstream, logging their paths,
// and answers info.json 500 while failInfo is set.
type front struct {
	srv      *httptest.Server
	failInfo atomic.Bool
	mu       sync.Mutex // protects asked
	asked    []string   // escaped paths, without the leading slash
}

func startFront(t *testing.T, upURL string) *front {
	t.Helper()
	target, err := url.Parse(upURL)
	if err != nil {
		t.Fatal(err)
	}
	f := &front{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.asked = append(f.asked, strings.TrimPrefix(r.URL.EscapedPath(), "/"))
		f.mu.Unlock()
		if f.failInfo.Load() && strings.HasSuffix(r.URL.Path, "/info.json") {
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *front) URL() string { return f.srv.URL }

func (f *front) paths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.asked)
}

// count counts the paths asked that contain s.
func (f *front) count(s string) int {
	n := 0
	for _, p := range f.paths() {
		if strings.Contains(p, s) {
			n++
		}
	}
	return n
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/internal/testfs"
)

// Cache faults, end to end: the binary serves correct bytes (compared with a
// server without a cache) through a full cache disk and an unwritable cache
// directory, never exits, opens its port within 2 s whatever the cache's
// state, and stores again once the fault is cleared.

var (
	sharedSamplesOnce sync.Once
	sharedSamplesDir  string
	sharedSamplesErr  error
)

// worldSamples generates the small samples once, beside the binary, where
// nobody can read them.
func worldSamples(t *testing.T) string {
	t.Helper()
	sharedSamplesOnce.Do(func() {
		dir := filepath.Join(filepath.Dir(binary), "samples")
		out, err := exec.Command(binary, "samples", "-small", "-dir", dir).CombinedOutput()
		if err != nil {
			sharedSamplesErr = fmt.Errorf("samples: %v\n%s", err, out)
			return
		}
		sharedSamplesDir = dir
	})
	if sharedSamplesErr != nil {
		t.Fatal(sharedSamplesErr)
	}
	return sharedSamplesDir
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs and change users (CI runs as root)")
	}
}

// drain reads a child's log so it never blocks on stderr, and counts lines.
type drain struct {
	mu    sync.Mutex
	n     int
	last  []string
	bad   []string // lines no fault may cause: a panic, an abandoned database
	ended chan struct{}
}

func drainLog(c *child) *drain {
	d := &drain{ended: make(chan struct{})}
	go func() {
		defer close(d.ended)
		for line := range c.lines {
			d.mu.Lock()
			d.n++
			if strings.Contains(line, "panic") || strings.Contains(line, "abandoned a database") {
				d.bad = append(d.bad, line)
			}
			d.last = append(d.last, line)
			if len(d.last) > 20 {
				d.last = d.last[1:]
			}
			d.mu.Unlock()
		}
	}()
	return d
}

func (d *drain) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return fmt.Sprintf("%d log lines, last:\n%s", d.n, strings.Join(d.last, "\n"))
}

// alive fails the test if the child has exited.
func (d *drain) alive(t *testing.T) {
	t.Helper()
	select {
	case <-d.ended:
		t.Fatalf("the server exited: %s", d)
	default:
	}
}

// waitListening waits up to limit for the child's port to accept.
func waitListening(t *testing.T, c *child, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		conn, err := net.DialTimeout("tcp", c.addr, 50*time.Millisecond)
		if err == nil {
			conn.Close()
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("port %s not listening after %v", c.addr, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tilePaths are distinct tile and thumbnail requests, rendered and passed
// through.
func tilePaths() []string {
	var paths []string
	for y := 0; y < 4000; y += 512 {
		for x := 0; x < 3000; x += 512 {
			paths = append(paths,
				fmt.Sprintf("page.tif/%d,%d,256,256/256,/0/default.jpg", x, y),
				fmt.Sprintf("page-plain.jpg/%d,%d,512,512/256,/0/default.jpg", x, y))
		}
	}
	return append(paths, "page.tif/full/300,/0/default.jpg", "page-png.png/full/200,/0/default.png")
}

// checkAll fetches every path from srv and ref and fails on any difference;
// it returns the X-Cache values seen.
func checkAll(t *testing.T, client *http.Client, srv, ref *child, paths []string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for _, p := range paths {
		s, b, x, err := fetch(client, "http://"+srv.addr+"/iiif/3/"+p)
		if err != nil || s != http.StatusOK {
			t.Fatalf("%s: %d %v", p, s, err)
		}
		rs, rb, _, err := fetch(client, "http://"+ref.addr+"/iiif/3/"+p)
		if err != nil || rs != http.StatusOK {
			t.Fatalf("reference %s: %d %v", p, rs, err)
		}
		if !bytes.Equal(b, rb) {
			t.Fatalf("%s: %d bytes (%s) differ from the uncached server's %d", p, len(b), x, len(rb))
		}
		seen[x]++
	}
	return seen
}

// hitsAgain polls until a fresh request for path is stored and then hit.
func hitsAgain(t *testing.T, client *http.Client, srv *child, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, _, _, _ = fetch(client, "http://"+srv.addr+"/iiif/3/"+path)
		_, _, x, err := fetch(client, "http://"+srv.addr+"/iiif/3/"+path)
		if err == nil && x == "HIT" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never became a HIT again (last %q, %v)", path, x, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func metric(t *testing.T, c *child, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + c.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimPrefix(line, name+" ")
		}
	}
	return ""
}

func TestFullCacheDisk(t *testing.T) {
	needRoot(t)
	samples := worldSamples(t)
	mnt := testfs.MountTmpfs(t, "16m")
	cacheEnv := []string{"RAIS_TILEPATH=" + samples, "RAIS_CACHEDIR=" + filepath.Join(mnt, "cache"), "RAIS_CACHEMINFREE=2MB", "RAIS_TILECACHELEN=0"} // disk hits only
	ref := start(t, "RAIS_TILEPATH="+samples, "RAIS_CACHEDIR=")
	client := &http.Client{Timeout: 30 * time.Second}
	paths := tilePaths()[:40]
	began := time.Now()
	phase := func(what string) { t.Logf("%6.2fs %s", time.Since(began).Seconds(), what) }

	srv := start(t, cacheEnv...)
	logs := drainLog(srv)
	checkAll(t, client, srv, ref, paths[:20])
	if seen := checkAll(t, client, srv, ref, paths[:20]); seen["HIT"] == 0 {
		t.Fatalf("nothing cached before the fill: %v", seen)
	}
	fill := filepath.Join(mnt, "fill")
	testfs.Fill(t, fill)
	checkAll(t, client, srv, ref, paths) // at once, before the tiers look at the free space
	deadline := time.Now().Add(5 * time.Second)
	for st := ""; st != "1" && st != "2"; st = metric(t, srv, `iiif_cache_state{tier="tile"}`) {
		if time.Now().After(deadline) {
			t.Fatalf("tile tier state %q 5s after the disk filled, want 1 (full) or 2 (degraded)", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for range 2 { // the cached ones, and more that cannot be stored
		t.Logf("full disk: %v", checkAll(t, client, srv, ref, paths))
	}
	logs.alive(t)
	phase("served on a full disk")
	os.Remove(fill)
	hitsAgain(t, client, srv, "page.tif/0,0,512,512/128,/0/default.jpg")
	logs.alive(t)
	phase("stores again")

	// Stopping with a full disk does not hang; starting with one does not
	// wait.
	testfs.Fill(t, fill)
	stopWithin(t, srv, logs, 20*time.Second)

	phase("stopped")
	srv = launch(t, nil, cacheEnv...)
	logs = drainLog(srv)
	if took := waitListening(t, srv, 2*time.Second); true {
		t.Logf("with the cache disk full, the port opened in %v", took)
	}
	checkAll(t, client, srv, ref, paths)
	phase("served after a start on a full disk")
	os.Remove(fill)
	hitsAgain(t, client, srv, "page.tif/512,0,512,512/128,/0/default.jpg")
	phase("stores again")
	logs.alive(t)
	logs.mu.Lock()
	n := logs.n
	logs.mu.Unlock()
	if n > 100 {
		t.Errorf("the log grew by %d lines: %s", n, logs)
	}
}

// stopWithin sends SIGTERM and fails unless the process exits cleanly
// within limit (the shutdown grace is 30 s).
func stopWithin(t *testing.T, srv *child, logs *drain, limit time.Duration) {
	t.Helper()
	began := time.Now()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
		t.Logf("exited %v after SIGTERM", time.Since(began).Round(time.Millisecond))
	case <-time.After(limit):
		t.Fatalf("no exit within %v of SIGTERM: %s", limit, logs)
	}
}

// tierStates returns iiif_cache_state of every tier.
func tierStates(t *testing.T, c *child) map[string]string {
	t.Helper()
	resp, err := http.Get("http://" + c.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	states := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, `iiif_cache_state{tier="`); ok {
			tier, v, _ := strings.Cut(rest, `"} `)
			states[tier] = v
		}
	}
	return states
}

// inService waits up to limit for every tier to serve from its database:
// state 0 (ok) or 1 (full: hits served, nothing stored), not 2 or 3.
func inService(t *testing.T, c *child, limit time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		st := tierStates(t, c)
		ok := len(st) > 0
		for _, v := range st {
			ok = ok && (v == "0" || v == "1")
		}
		if ok {
			return time.Since(began)
		}
		if time.Since(began) > limit {
			t.Fatalf("tiers not in service %v after start: %v", limit, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaveFree writes a file at path that leaves about leave bytes free.
func leaveFree(t *testing.T, path string, leave int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		t.Fatal(err)
	}
	if n := int64(st.Bavail)*int64(st.Bsize) - leave; n > 0 {
		if err := os.WriteFile(path, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCacheFillsItsOwnCacheDisk is the trial that found a crash, a hang
// and a wedge (/tmp/trial3): an 8 MB tmpfs as CacheDir, the default
// CacheMinFree (5 %), filled by the cache's own PNG thumbnails and tiles.
// Every request is answered, the process neither panics nor abandons a
// database, SIGTERM ends it well within the grace, and a restart on what
// the cache left (then on a disk with less than twice the reserve free)
// has every tier back in service by itself.
func TestCacheFillsItsOwnCacheDisk(t *testing.T) {
	needRoot(t)
	samples := worldSamples(t)
	mnt := testfs.MountTmpfs(t, "8m")
	env := []string{"RAIS_TILEPATH=" + samples, "RAIS_CACHEDIR=" + filepath.Join(mnt, "cache"), "RAIS_TILECACHELEN=0"}
	client := &http.Client{Timeout: 30 * time.Second}
	began := time.Now()
	phase := func(what string) { t.Logf("%6.2fs %s", time.Since(began).Seconds(), what) }
	srv := start(t, env...)
	logs := drainLog(srv)
	get := func(srv *child, p string) string {
		t.Helper()
		s, _, x, err := fetch(client, "http://"+srv.addr+"/iiif/3/"+p)
		if err != nil || s != http.StatusOK {
			t.Fatalf("%s: %d %v", p, s, err)
		}
		return x
	}
	free := func() int64 {
		var st syscall.Statfs_t
		_ = syscall.Statfs(mnt, &st)
		return int64(st.Bavail) * int64(st.Bsize)
	}
	thumb := func(n int) string { return fmt.Sprintf("page-plain.jpg/full/%d,/0/default.png", n) }
	for n := 300; n <= 900; n += 6 {
		get(srv, thumb(n))
	}
	for _, p := range tilePaths()[:40] {
		get(srv, p)
	}
	phase(fmt.Sprintf("filled: %d bytes free, states %v", free(), tierStates(t, srv)))
	for i := range 20 { // the trial's requests after the fill, faster
		get(srv, thumb(300+i*30))
		time.Sleep(250 * time.Millisecond)
	}
	logs.alive(t)
	phase(fmt.Sprintf("served: %d bytes free, states %v", free(), tierStates(t, srv)))
	stopWithin(t, srv, logs, 15*time.Second)

	srv = start(t, env...)
	logs2 := drainLog(srv)
	took := inService(t, srv, 20*time.Second)
	phase(fmt.Sprintf("restarted on what the cache left: in service after %v, %d bytes free", took, free()))
	get(srv, thumb(303))
	stopWithin(t, srv, logs2, 15*time.Second)

	// Less than twice the reserve (CacheMinFree/4) free: no tier can open
	// and none is below the reserve, where the emergency drop fires.
	leaveFree(t, filepath.Join(mnt, "fill"), 150<<10)
	srv = start(t, env...)
	logs3 := drainLog(srv)
	took = inService(t, srv, 30*time.Second)
	phase(fmt.Sprintf("restarted with %d bytes free: in service after %v, states %v", free(), took, tierStates(t, srv)))
	for range 3 {
		get(srv, thumb(306))
	}
	logs3.alive(t)
	stopWithin(t, srv, logs3, 15*time.Second)
	for _, d := range []*drain{logs, logs2, logs3} {
		d.mu.Lock()
		if len(d.bad) > 0 {
			t.Errorf("the log says: %s", strings.Join(d.bad, "\n"))
		}
		d.mu.Unlock()
	}
}

// TestUnwritableCacheDir runs the server as nobody and makes its cache
// directory read-only under it (chmod -R a-w), then writable again.
func TestUnwritableCacheDir(t *testing.T) {
	needRoot(t)
	samples := worldSamples(t)
	cache, err := os.MkdirTemp("", "iiif-proxy-cache-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("chmod", "-R", "u+w", cache).Run()
		os.RemoveAll(cache)
	})
	const nobody = 65534
	if err := os.Chown(cache, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	ref := start(t, "RAIS_TILEPATH="+samples, "RAIS_CACHEDIR=")
	asNobody := func(cmd *exec.Cmd) {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		cmd.Dir = "/"
	}
	srv := launch(t, asNobody, "RAIS_TILEPATH="+samples, "RAIS_CACHEDIR="+cache, "HOME=/", "RAIS_TILECACHELEN=0")
	logs := drainLog(srv)
	waitListening(t, srv, 2*time.Second)
	client := &http.Client{Timeout: 30 * time.Second}
	paths := tilePaths()[:30]
	hitsAgain(t, client, srv, paths[0]) // the tier is open and stores

	if out, err := exec.Command("chmod", "-R", "a-w", cache).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v: %s", err, out)
	}
	// Requests go on being answered while the next flush (within 2 s)
	// meets the fault: poll the state between rounds, bounded.
	for round := 0; metric(t, srv, `iiif_cache_state{tier="tile"}`) != "2"; round++ {
		if round >= 40 {
			t.Fatalf("tile tier state %q with the cache read-only, want 2 (degraded)", metric(t, srv, `iiif_cache_state{tier="tile"}`))
		}
		seen := checkAll(t, client, srv, ref, paths)
		if round%10 == 0 {
			t.Logf("read-only cache, round %d: %v", round, seen)
		}
		time.Sleep(250 * time.Millisecond)
	}
	checkAll(t, client, srv, ref, paths) // and while degraded
	logs.alive(t)
	if f := metric(t, srv, `iiif_cache_store_faults_total{kind="readonly",tier="tile"}`); f == "" || f == "0" {
		t.Errorf("readonly faults of the tile tier: %q", f)
	}
	if out, err := exec.Command("chmod", "-R", "u+w", cache).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v: %s", err, out)
	}
	hitsAgain(t, client, srv, "page.tif/1024,1024,512,512/128,/0/default.jpg")
	checkAll(t, client, srv, ref, paths[:10])
	logs.alive(t)
}

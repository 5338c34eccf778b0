package main

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// children lists the PIDs of pid's child processes.
func children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// TestPyramidBuildDiesWithTheServer: a server killed with SIGKILL (as the
// OOM killer does) while it builds an automatic pyramid takes the builder
// with it. The child used to be re-parented to init and go on for minutes
// at nice 19, holding a deleted file open.
func TestPyramidBuildDiesWithTheServer(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("needs /proc")
	}
	samples := samplesDir(t)
	dir := t.TempDir()
	const copies = 8 // a build may finish before it is seen: try another source
	for i := range copies {
		if err := os.Link(filepath.Join(samples, "page-plain.jpg"), filepath.Join(dir, "p"+strconv.Itoa(i)+".jpg")); err != nil {
			t.Fatal(err)
		}
	}
	c := start(t, "RAIS_TILEPATH="+dir, "RAIS_PYRAMIDMINPIXELS=1000000")
	server := c.cmd.Process.Pid
	builder := 0
	for i := 0; i < copies && builder == 0; i++ {
		// The first request for a large flat source starts its build in
		// the background (and is answered from the flat file).
		resp, err := http.Get("http://" + c.addr + "/iiif/3/p" + strconv.Itoa(i) + ".jpg/0,0,256,256/256,/0/default.jpg")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for range 300 { // up to 3 s for the child to show
			if kids := children(server); len(kids) > 0 {
				builder = kids[0]
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if builder == 0 {
		t.Fatalf("no pyramid builder seen for %d sources", copies)
	}
	// Stopped, the builder cannot die of a write to its progress pipe
	// (SIGPIPE, once the server is gone), which hid the missing death
	// signal: only a signal sent to it kills it now (SIGKILL works on a
	// stopped process).
	if err := syscall.Kill(builder, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(builder, syscall.SIGKILL) })
	for range 200 {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(builder) + "/stat"); strings.Contains(string(b), ") T ") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	c.cmd.Wait()
	for range 500 { // 5 s
		if err := syscall.Kill(builder, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the pyramid builder (pid %d) outlived the killed server by 5 s", builder)
}

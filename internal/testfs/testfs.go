// Package testfs holds the file-system helpers of the fault tests: a tmpfs
// mounted for one test, a file that fills a file system, and an unmount that
// waits for the processes still using the mount. Only tests import it.
package testfs

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// MountTmpfs mounts a tmpfs of size ("8m", "64k") at a new directory and
// unmounts it at cleanup (after the test's servers stop: cleanups run last
// first). Without root, or where mounting is refused, the test is skipped.
func MountTmpfs(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { Unmount(t, dir) })
	return dir
}

// Fill writes a file of zeros at path until its file system is full.
func Fill(t testing.TB, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// Unmount unmounts dir, retrying for up to 5 s while it is busy (a process
// that used it may still be exiting), then lazily, reporting the failure.
func Unmount(t testing.TB, dir string) {
	var out []byte
	var err error
	for range 20 {
		if out, err = exec.Command("umount", dir).CombinedOutput(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	_ = exec.Command("umount", "-l", dir).Run()
	t.Errorf("umount %s: %v: %s (unmounted lazily)", dir, err, out)
}

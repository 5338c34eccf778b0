package dirlock

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAnotherProcessIsRefused: a second process cannot take a held
// directory (and is told the holder's PID); once the holder is gone, it
// can. flock locks belong to open files, so the holder here is a real
// second process (flock(1), from util-linux).
func TestAnotherProcessIsRefused(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The same process opening the file again is a different open file:
	// refused too, which is what two renderers in one test would meet.
	if _, err := Acquire(dir); !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second Acquire: %v, want ErrHeld naming the pid", err)
	}
	l.Release()
	l.Release() // twice is harmless

	flock, err := exec.LookPath("flock")
	if err != nil {
		t.Skip("flock(1) not found")
	}
	// Another process holds it for as long as it sleeps: flock(1) itself,
	// with -o so that its child (sleep) does not inherit the locked file
	// and hold it past flock's exit.
	holder := exec.Command(flock, "-x", "-o", dir+"/LOCK", "sleep", "30")
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // flock and its sleep, stopped together
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() { _ = syscall.Kill(-holder.Process.Pid, syscall.SIGKILL); _ = holder.Wait() }
	t.Cleanup(stop)
	held := false
	for i := 0; i < 200 && !held; i++ { // until flock(1) has it, at most 10 s
		if l2, err := Acquire(dir); err == nil {
			l2.Release()
			time.Sleep(50 * time.Millisecond)
		} else if errors.Is(err, ErrHeld) {
			held = true
		} else {
			t.Fatal(err)
		}
	}
	if !held {
		t.Fatal("the other process's lock was never seen")
	}
	stop()
	l3, err := Acquire(dir)
	if err != nil {
		t.Fatalf("after the holder exited: %v", err)
	}
	l3.Release()
	if _, err := os.Stat(dir + "/LOCK"); err != nil {
		t.Fatal(err)
	}
}

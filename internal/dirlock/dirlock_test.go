package dirlock

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMain doubles as the holder process of TestAnotherProcessIsRefused:
// with DIRLOCK_HOLD set, it takes that directory's lock, says so, and
// waits to be killed. (flock(1) forks a child that shares the locked open
// file, and a killed child can keep the lock past its parent's exit.)
func TestMain(m *testing.M) {
	if dir := os.Getenv("DIRLOCK_HOLD"); dir != "" {
		if _, err := Acquire(dir); err != nil {
			os.Stdout.WriteString("error: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("held\n")
		time.Sleep(time.Minute) // killed long before
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestAnotherProcessIsRefused: a second process cannot take a held
// directory (and is told the holder's PID); once the holder is gone, it
// can.
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

	holder := exec.Command(os.Args[0], "-test.run=^$")
	holder.Env = append(os.Environ(), "DIRLOCK_HOLD="+dir)
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "held\n" {
		t.Fatalf("holder: %q", line)
	}
	_, err = Acquire(dir)
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("while another process holds it: %v, want ErrHeld naming its pid", err)
	}
	_ = holder.Process.Kill()
	_ = holder.Wait()
	l3, err := Acquire(dir)
	if err != nil {
		t.Fatalf("after the holder exited: %v", err)
	}
	l3.Release()
}

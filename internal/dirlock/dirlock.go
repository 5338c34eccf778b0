// Package dirlock keeps a directory to one process: the pyramid tier and
// the S3 source cache clean up what they find at start (a build or a
// download cut short by a crash), which would delete the files another
// process sharing the same CacheDir is writing. The store tiers have
// Pebble's own lock; these directories take this one.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrHeld says another process holds the directory.
var ErrHeld = errors.New("in use by another process")

// Lock is a held directory lock.
type Lock struct{ f *os.File }

// Acquire takes dir's lock (the file LOCK in it, holding the holder's PID)
// without waiting: an error wrapping ErrHeld, naming the holder, when
// another process has it. The lock goes with the process, so a crash
// leaves nothing to clear.
func Acquire(dir string) (*Lock, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if pid := strings.TrimSpace(string(holder)); pid != "" {
				return nil, fmt.Errorf("%s: %w (pid %s)", dir, ErrHeld, pid)
			}
			return nil, fmt.Errorf("%s: %w", dir, ErrHeld)
		}
		return nil, fmt.Errorf("%s: lock: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Release gives the lock up. Releasing nil does nothing.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}

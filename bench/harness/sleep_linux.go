package harness

import (
	"syscall"
	"time"
)

// shortSleep sleeps for d (under a couple of milliseconds) with the
// kernel's precision (tens of microseconds). Go's timers round a wait
// shorter than a millisecond up to one when the process is otherwise idle
// (epoll_wait takes milliseconds), which would make an open loop at a few
// thousand requests a second send each request up to 1 ms late. The blocking
// syscall hands the P to the workers while it lasts.
func shortSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil) // EINTR: wake early, the caller checks the clock
}

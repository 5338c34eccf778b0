//go:build !linux

package harness

import "time"

// shortSleep sleeps for d; see sleep_linux.go.
func shortSleep(d time.Duration) { time.Sleep(d) }

package sources

import (
	"sync"
	"time"
)

// breaker is a circuit breaker in front of the store. Closed, every request
// goes; after limit failures in a row it opens, and requests fail at once
// for a cooldown; then one probe goes through (half-open): a success closes
// it, a failure opens it again for twice as long (up to 16 cooldowns). A
// dead store therefore costs one timeout per cooldown, not one per request.
type breaker struct {
	limit    int
	cooldown time.Duration
	now      func() time.Time

	mu      sync.Mutex // protects the rest
	fails   int        // failures in a row
	open    bool
	until   time.Time // open: when a probe may go
	wait    time.Duration
	probing bool // half-open: the probe is in flight
	opens   uint64
}

// allow reports whether a request may go to the store now. A true from a
// half-open breaker makes the caller the probe: it must report back with
// done.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return true
	}
	if b.probing || b.now().Before(b.until) {
		return false
	}
	b.probing = true
	return true
}

// done records the outcome of a request allow let through: ok is false for
// a failure of the store (not for a missing object).
func (b *breaker) done(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	if ok {
		b.fails, b.open, b.wait = 0, false, 0
		return
	}
	b.fails++
	if b.open {
		b.wait = min(2*b.wait, 16*b.cooldown)
		b.until = b.now().Add(b.wait)
		return
	}
	if b.fails >= b.limit {
		b.open, b.wait = true, b.cooldown
		b.until = b.now().Add(b.wait)
		b.opens++
	}
}

// state is "closed", "open" or "half-open", and the failures in a row.
func (b *breaker) state() (string, int, uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !b.open:
		return "closed", b.fails, b.opens
	case b.probing || !b.now().Before(b.until):
		return "half-open", b.fails, b.opens
	}
	return "open", b.fails, b.opens
}

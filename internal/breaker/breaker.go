// Package breaker is the circuit breaker in front of a remote service: the
// object store of the S3 sources and of the shared render tier, and the
// upstream IIIF server in sidecar mode. A service that is down costs one
// timeout per cooldown, not one per request.
//
// Closed, every operation goes. After Limit failures in a row it opens:
// operations fail at once, but for one probe once the cooldown has passed
// (half-open). A failed probe doubles the cooldown, up to MaxCooldown; a
// success closes the breaker. A miss (404) or a lost race (412) is an
// answer from the store, not a failure: callers report it as ok.
package breaker

import (
	"sync"
	"time"
)

// Breaker is a circuit breaker. Set the exported fields before first use;
// the zero value of each has a default.
type Breaker struct {
	Limit       int              // failures in a row that open it; default 3
	Cooldown    time.Duration    // first wait before a probe; default 1s
	MaxCooldown time.Duration    // the wait doubles up to this; default 30 × Cooldown
	Now         func() time.Time // the clock; default time.Now
	OnChange    func(open bool)  // called, under the breaker's lock, when it opens or closes

	mu      sync.Mutex // protects the fields below
	fails   int        // failures in a row
	open    bool
	probing bool      // half-open: the probe is out
	until   time.Time // open: when a probe may go
	wait    time.Duration
	opens   uint64
}

func (b *Breaker) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Breaker) limits() (limit int, first, most time.Duration) {
	limit, first, most = b.Limit, b.Cooldown, b.MaxCooldown
	if limit <= 0 {
		limit = 3
	}
	if first <= 0 {
		first = time.Second
	}
	if most < first {
		most = 30 * first
	}
	return limit, first, most
}

// Allow reports whether an operation may go to the store now. A true from a
// half-open breaker makes the caller the probe: like every caller, it must
// report its outcome with Done (or Abandon).
func (b *Breaker) Allow() bool {
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

// Done records the outcome of an operation Allow let through: ok is false
// for a failure of the store (no answer, 5xx, 403, a missing bucket).
func (b *Breaker) Done(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	limit, first, most := b.limits()
	if ok {
		wasOpen := b.open
		b.fails, b.open, b.probing, b.wait = 0, false, false, 0
		if wasOpen && b.OnChange != nil {
			b.OnChange(false)
		}
		return
	}
	b.fails++
	if b.open {
		// Only the probe's failure says the store is still down; an
		// operation let through before the breaker opened says nothing new.
		if b.probing {
			b.probing = false
			b.wait = min(2*b.wait, most)
			b.until = b.now().Add(b.wait)
		}
		return
	}
	if b.fails >= limit {
		b.open, b.wait = true, first
		b.until = b.now().Add(b.wait)
		b.opens++
		if b.OnChange != nil {
			b.OnChange(true)
		}
	}
}

// Abandon records an operation whose outcome says nothing of the store
// (its caller left): a probe that ends so lets the next operation probe.
func (b *Breaker) Abandon() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

// State is "closed", "open" or "half-open" (the cooldown has passed, or a
// probe is out), the failures in a row, and how many times it has opened.
func (b *Breaker) State() (state string, fails int, opens uint64) {
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

// Wait is the current cooldown (zero when closed).
func (b *Breaker) Wait() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wait
}

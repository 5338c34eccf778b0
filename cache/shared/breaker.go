package shared

import (
	"sync"
	"time"
)

// breaker stops a node from waiting on a dead object store. After
// breakerFailures failures in a row it opens: every operation fails at once
// (ErrUnavailable) but for one probe per backoff, which starts at 1 s and
// doubles to 30 s; the first success closes it. A store that is down costs
// each request nothing; one that comes back is used again within the
// backoff. Misses (404) and lost races (412) are answers, not failures.
type breaker struct {
	now func() time.Time

	mu       sync.Mutex // protects the fields below
	fails    int
	open     bool
	probing  bool // a probe is out
	next     time.Time
	backoff  time.Duration
	opens    uint64
	changeFn func(open bool)
}

const (
	breakerFailures   = 3
	breakerMinBackoff = time.Second
	breakerMaxBackoff = 30 * time.Second
)

// allow says whether an operation may go to the store now; a probe
// (half-open) must report its outcome through done like any other.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return true
	}
	if b.probing || b.now().Before(b.next) {
		return false
	}
	b.probing = true
	return true
}

// done records an operation's outcome.
func (b *breaker) done(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		wasOpen := b.open
		b.fails, b.open, b.probing, b.backoff = 0, false, false, 0
		if wasOpen && b.changeFn != nil {
			b.changeFn(false)
		}
		return
	}
	b.fails++
	if b.open {
		if b.probing {
			b.probing = false
			b.backoff = min(2*b.backoff, breakerMaxBackoff)
			b.next = b.now().Add(b.backoff)
		}
		return
	}
	if b.fails >= breakerFailures {
		b.open, b.backoff = true, breakerMinBackoff
		b.next = b.now().Add(b.backoff)
		b.opens++
		if b.changeFn != nil {
			b.changeFn(true)
		}
	}
}

// abandon records an operation whose outcome says nothing of the store
// (its caller left): a probe that ends so lets the next operation probe.
func (b *breaker) abandon() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

// state is "closed", "open" or "half-open" (the backoff passed: the next
// operation probes).
func (b *breaker) state() (string, uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !b.open:
		return "closed", b.opens
	case b.probing || !b.now().Before(b.next):
		return "half-open", b.opens
	}
	return "open", b.opens
}

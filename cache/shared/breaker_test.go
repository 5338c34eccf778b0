package shared

import (
	"testing"
	"time"
)

// TestBreaker: three failures open it; while open nothing goes through but
// one probe per backoff, which doubles on failure; a success closes it; an
// abandoned probe lets the next operation probe.
func TestBreaker(t *testing.T) {
	clk := newClock()
	b := &breaker{now: clk.now}
	for range breakerFailures - 1 {
		if !b.allow() {
			t.Fatal("refused while closed")
		}
		b.done(false)
	}
	if st, _ := b.state(); st != "closed" {
		t.Fatalf("%s after %d failures", st, breakerFailures-1)
	}
	b.allow()
	b.done(false)
	if st, n := b.state(); st != "open" || n != 1 || b.allow() {
		t.Fatalf("%s (%d opens) after %d failures, or let through", st, n, breakerFailures)
	}
	clk.advance(breakerMinBackoff)
	if !b.allow() || b.allow() {
		t.Fatal("not exactly one probe after the backoff")
	}
	b.done(false) // the probe failed: the backoff doubles
	clk.advance(breakerMinBackoff)
	if b.allow() {
		t.Fatal("probe before the doubled backoff")
	}
	clk.advance(breakerMinBackoff)
	if !b.allow() {
		t.Fatal("no probe after the doubled backoff")
	}
	b.abandon()
	if !b.allow() {
		t.Fatal("no probe after an abandoned one")
	}
	b.done(true)
	if st, _ := b.state(); st != "closed" || !b.allow() {
		t.Fatalf("%s after a successful probe", st)
	}
	for range 20 { // the backoff is bounded
		b.allow()
		b.done(false)
		clk.advance(time.Hour)
	}
	if b.backoff > breakerMaxBackoff {
		t.Fatalf("backoff %v", b.backoff)
	}
}

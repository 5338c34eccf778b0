package breaker

import (
	"testing"
	"time"
)

const (
	breakerFailures   = 3
	breakerMinBackoff = time.Second
	breakerMaxBackoff = 30 * time.Second
)

// TestBreaker: three failures open it; while open nothing goes through but
// one probe per backoff, which doubles on failure; a success closes it; an
// abandoned probe lets the next operation probe.
func TestBreaker(t *testing.T) {
	clk := time.Unix(1e9, 0)
	b := &Breaker{Limit: breakerFailures, Cooldown: breakerMinBackoff, MaxCooldown: breakerMaxBackoff,
		Now: func() time.Time { return clk }}
	advance := func(d time.Duration) { clk = clk.Add(d) }
	var changes []bool
	b.OnChange = func(open bool) { changes = append(changes, open) }
	for range breakerFailures - 1 {
		if !b.Allow() {
			t.Fatal("refused while closed")
		}
		b.Done(false)
	}
	if st, _, _ := b.State(); st != "closed" {
		t.Fatalf("%s after %d failures", st, breakerFailures-1)
	}
	b.Allow()
	b.Done(false)
	if st, _, n := b.State(); st != "open" || n != 1 || b.Allow() {
		t.Fatalf("%s (%d opens) after %d failures, or let through", st, n, breakerFailures)
	}
	advance(breakerMinBackoff)
	if !b.Allow() || b.Allow() {
		t.Fatal("not exactly one probe after the backoff")
	}
	b.Done(false) // the probe failed: the backoff doubles
	advance(breakerMinBackoff)
	if b.Allow() {
		t.Fatal("probe before the doubled backoff")
	}
	advance(breakerMinBackoff)
	if !b.Allow() {
		t.Fatal("no probe after the doubled backoff")
	}
	b.Abandon()
	if !b.Allow() {
		t.Fatal("no probe after an abandoned one")
	}
	b.Done(true)
	if st, _, _ := b.State(); st != "closed" || !b.Allow() {
		t.Fatalf("%s after a successful probe", st)
	}
	for range 20 { // the backoff is bounded
		b.Allow()
		b.Done(false)
		advance(time.Hour)
	}
	if w := b.Wait(); w > breakerMaxBackoff {
		t.Fatalf("backoff %v", w)
	}
	if len(changes) < 3 || !changes[0] || changes[1] {
		t.Errorf("OnChange calls %v: want open, closed, open…", changes)
	}
}

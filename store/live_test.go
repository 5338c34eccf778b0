package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A smaller budget set live is enforced by a sweep it wakes (SweepEvery is
// an hour), and a shorter retention drops entries unread for longer.
func TestSetLimitsAppliesLive(t *testing.T) {
	swept := make(chan struct{}, 1)
	clk := newClock()
	cfg := Config{fs: vfs.NewMem(), Dir: "db", SweepEvery: time.Hour, Logger: quiet, now: clk.Now,
		afterSweep: func() {
			select {
			case swept <- struct{}{}:
			default:
			}
		}}
	tier, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	<-swept // the pass Open starts
	for i := range 100 {
		mustPut(t, tier, fmt.Sprint(i), jpeg(1000, byte(i)))
	}
	before := tier.Stats().Bytes
	if err := tier.SetLimits(before/2, 0); err != nil {
		t.Fatal(err)
	}
	// From no budget to one, the tier is also reopened with an LSM shaped
	// for it (reshape.go): look once it is back in service.
	eventually(t, "the budget applied", func() bool {
		st := tier.Stats()
		return st.State == StateOK && st.Bytes <= before/2 && st.Evicted > 0
	})
	if max, ret := tier.Limits(); max != before/2 || ret != 0 {
		t.Errorf("Limits() = %d %s", max, ret)
	}
	// Retention: everything was written "now"; two hours on, a one-hour
	// retention set live drops it all.
	clk.Advance(2 * time.Hour)
	if err := tier.SetLimits(0, time.Hour); err != nil {
		t.Fatal(err)
	}
	// Back to no budget: reopened again, with Pebble's defaults.
	eventually(t, "the retention applied", func() bool {
		st := tier.Stats()
		return st.State == StateOK && st.Entries == 0 && st.Expired > 0
	})
	if err := tier.SetLimits(-1, 0); err == nil {
		t.Error("negative budget accepted")
	}
}

package store

import (
	"errors"
	"time"
)

// SetLimits changes the tier's byte budget and retention while it serves
// (SIGHUP), with the meanings of Config.MaxBytes and Config.Retention, and
// wakes the sweeper so that a smaller budget or a shorter retention applies
// now rather than at the next SweepEvery. Both live in atomics that every
// reader loads (Put, the expiry check on reads, the sweeper): t.cfg is read
// without a lock everywhere, so writing its fields here would be a data race.
func (t *Tier) SetLimits(maxBytes int64, retention time.Duration) error {
	if maxBytes < 0 || retention < 0 {
		return errors.New("store: SetLimits: MaxBytes and Retention must be >= 0")
	}
	t.maxBytes.Store(maxBytes)
	t.retentionSecs.Store(ceilSeconds(retention))
	t.wakeSweeper()
	return nil
}

// Limits returns the byte budget and retention in force.
func (t *Tier) Limits() (maxBytes int64, retention time.Duration) {
	return t.maxBytes.Load(), time.Duration(t.retentionSecs.Load()) * time.Second
}

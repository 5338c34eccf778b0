package store

import (
	"errors"
	"time"
)

// SetLimits changes the tier's byte budget and retention while it serves
// (SIGHUP), with the meanings of Config.MaxBytes and Config.Retention. The
// database in service applies them at once (its sweeper is woken, so a
// smaller budget or a shorter retention takes effect now rather than at the
// next SweepEvery), and every database the tier opens later starts with
// them. A budget far from the one the database was shaped for has the
// supervisor reopen it in place with a new shape (reshape.go). Engines read them from atomics: their cfg is read without a lock
// everywhere, so writing its fields here would be a data race.
func (t *Tier) SetLimits(maxBytes int64, retention time.Duration) error {
	if maxBytes < 0 || retention < 0 {
		return errors.New("store: SetLimits: MaxBytes and Retention must be >= 0")
	}
	t.limitsMu.Lock()
	t.maxBytes, t.retention = maxBytes, retention
	t.limitsMu.Unlock()
	if e := t.eng.Load(); e != nil {
		e.setLimits(maxBytes, retention)
		if needsReshape(e.cfg.MaxBytes, maxBytes) {
			t.askReshape()
		}
	}
	return nil
}

// Limits returns the byte budget and retention in force.
func (t *Tier) Limits() (maxBytes int64, retention time.Duration) {
	t.limitsMu.Lock()
	defer t.limitsMu.Unlock()
	return t.maxBytes, t.retention
}

// setLimits applies a budget and retention to a database in service.
func (t *engine) setLimits(maxBytes int64, retention time.Duration) {
	t.maxBytes.Store(maxBytes)
	t.retentionSecs.Store(ceilSeconds(retention))
	t.wakeSweeper()
}

package store

// A budget changed while the tier serves (SIGHUP: SetLimits) is applied at
// once to the counters, eviction and Put's bound (overBound), but the LSM's
// shape (sizeToBudget: file sizes, base level, memtables) is fixed when
// Pebble opens the database: Pebble v2.1.7 reads those options without a
// lock from then on and has no setter for them. A tier whose budget moved
// far from the one its database was shaped for is therefore reopened in
// place by its supervisor: the engine is retired as after a fault but
// without one (Close flushes the memtable; calls in flight finish, new ones
// are answered ErrOpening and served uncached), and the next open shapes
// the LSM for the budget in force. That is the path every fault takes, so
// it is as safe with concurrent requests as recovering from one; what a
// reopen costs is a moment uncached and the reads not yet checkpointed
// into the access index (a restart loses the same).
//
// Until the reopen, and with any shape, the bound holds: overBound declines
// what would pass it. The shape decides how often it has to: a database
// shaped for 4 × the budget has compactions 4 × too large for the bound,
// and declines most Puts. So small moves (within reshapeRatio) do not
// reopen: their transients stay within that ratio of the shaped ones.

// reshapeRatio: a budget within this factor of the one the database was
// shaped for keeps the database open.
const reshapeRatio = 1.25

// needsReshape reports whether a database shaped for budget old should be
// reopened for budget now.
func needsReshape(old, now int64) bool {
	a, b := shapeFor(old), shapeFor(now)
	switch {
	case a == b:
		return false
	case a.isDefault() || b.isDefault():
		return true // shaped to unshaped or back
	}
	r := float64(now) / float64(old)
	return r > reshapeRatio || r < 1/reshapeRatio
}

// askReshape tells the supervisor to reopen the database in service if the
// budget in force needs another shape.
func (t *Tier) askReshape() {
	t.reshape.Store(true)
	t.kick()
}

// reshapeIfAsked reopens e for the budget in force if SetLimits asked for
// it and the shape must change; it reports whether e was retired.
func (t *Tier) reshapeIfAsked(e *engine) bool {
	if !t.reshape.Swap(false) {
		return false
	}
	limit, _ := t.Limits()
	if !needsReshape(e.cfg.MaxBytes, limit) {
		return false
	}
	t.log.Info("store: reopening the tier to shape its LSM for a new budget", "from", e.cfg.MaxBytes, "to", limit)
	t.setOut(StateOpening, "reopening for a new budget")
	t.retire(e, "reshaping for a new budget")
	t.reshapes.Add(1)
	return true
}

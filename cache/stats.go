package cache

import "sync/atomic"

// faultOp is the store operation that failed.
type faultOp uint8

const (
	opGet faultOp = iota
	opPut
	opTouch
	opRefresh
	opPurge
	numOps
)

var opNames = [numOps]string{"get", "put", "touch", "refresh", "purge"}

func (o faultOp) String() string { return opNames[o] }

// tierCounters are a tier's counters since start.
type tierCounters struct {
	memHits, diskHits, sharedHits, misses, collapsed, tooLarge atomic.Uint64
	unchanged, changed, stale, background                      atomic.Uint64
	faults                                                     [numOps]atomic.Uint64
}

// TierStats are one tier's counters since start.
type TierStats struct {
	MemHits  uint64 `json:"memHits"`  // answered from memory
	DiskHits uint64 `json:"diskHits"` // answered from the store
	// SharedHits are fills answered from the shared layer (rendered by
	// another node, or by this one before its local copy went).
	SharedHits uint64 `json:"sharedHits"`
	Misses     uint64 `json:"misses"`    // fills that rendered
	Collapsed  uint64 `json:"collapsed"` // requests served by another request's fill
	TooLarge   uint64 `json:"tooLarge"`  // rendered responses over MaxEntryBytes, served but not stored
	// Revalidations of old entries, by result.
	Unchanged uint64 `json:"revalidatedUnchanged"`
	Changed   uint64 `json:"revalidatedChanged"`
	// Stale counts entries served old: their source unreachable, or being
	// checked in the background.
	Stale uint64 `json:"stale"`
	// Background counts revalidations run in the background.
	Background uint64 `json:"backgroundRevalidations"`
	// Faults are store failures that made a request go uncached, by
	// operation (get, put, touch, refresh, purge).
	Faults map[string]uint64 `json:"faults,omitempty"`
	// Memory is the number of entries in memory now.
	Memory int `json:"memoryEntries"`
}

// FaultTotal is the sum of Faults.
func (s TierStats) FaultTotal() uint64 {
	var n uint64
	for _, v := range s.Faults {
		n += v
	}
	return n
}

// Stats returns a snapshot of the tier's counters.
func (t *Tier) Stats() TierStats {
	c := &t.stats
	s := TierStats{
		MemHits: c.memHits.Load(), DiskHits: c.diskHits.Load(), SharedHits: c.sharedHits.Load(), Misses: c.misses.Load(),
		Collapsed: c.collapsed.Load(), TooLarge: c.tooLarge.Load(),
		Unchanged: c.unchanged.Load(), Changed: c.changed.Load(),
		Stale: c.stale.Load(), Background: c.background.Load(),
		Memory: t.mem.Len(),
	}
	for op := range numOps {
		if n := c.faults[op].Load(); n > 0 {
			if s.Faults == nil {
				s.Faults = map[string]uint64{}
			}
			s.Faults[op.String()] = n
		}
	}
	return s
}

// Stats are the counters of every tier, by name.
type Stats map[string]TierStats

// Stats returns a snapshot of every tier's counters.
func (c *Cache) Stats() Stats {
	s := Stats{}
	for _, t := range c.tiers {
		s[t.name] = t.Stats()
	}
	return s
}

package sources

import (
	"slices"
	"syscall"
)

// room reports whether n more bytes may be cached for e: within MaxBytes
// and above the free-space minimum, once less recently used objects are
// evicted. A run larger than the whole budget never fits.
func (s *Store) room(n int64, e *entry) bool {
	if n > s.cfg.MaxBytes {
		return false
	}
	s.mu.Lock()
	over := s.bytes+n > s.cfg.MaxBytes
	s.mu.Unlock()
	if over {
		s.evictTo(s.cfg.MaxBytes-n, e)
	}
	if !s.headroom(n) {
		s.evictTo(0, e) // free what can be freed, then look again
		if !s.headroom(n) {
			return false
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes+n <= s.cfg.MaxBytes
}

// headroom reports whether n more bytes leave the free-space minimum free.
func (s *Store) headroom(n int64) bool {
	if s.cfg.MinFreeBytes == 0 && s.cfg.MinFreePercent == 0 {
		return true
	}
	free, total, err := s.free(s.cfg.Dir)
	if err != nil {
		return false
	}
	minFree := uint64(s.cfg.MinFreeBytes)
	if p := uint64(s.cfg.MinFreePercent * float64(total) / 100); p > minFree {
		minFree = p
	}
	return free >= minFree+uint64(n)
}

// account adds bytes newly cached for e and evicts others past the budget.
func (s *Store) account(n int64, e *entry) {
	s.mu.Lock()
	s.bytes += n
	over := s.bytes > s.cfg.MaxBytes
	s.mu.Unlock()
	if over {
		s.evictTo(s.cfg.MaxBytes, e)
	}
}

// evict brings the cache under its budget, least recently used first,
// sparing keep.
func (s *Store) evict(keep *entry) { s.evictTo(s.cfg.MaxBytes, keep) }

// evictTo removes the least recently used entries but keep until the cache
// holds at most target bytes (0: every entry but keep).
func (s *Store) evictTo(target int64, keep *entry) {
	s.mu.Lock()
	if s.bytes <= target && target > 0 {
		s.mu.Unlock()
		return
	}
	es := make([]*entry, 0, len(s.index))
	for _, e := range s.index {
		if e != keep {
			es = append(es, e)
		}
	}
	slices.SortFunc(es, func(a, b *entry) int { return int(min(max(a.lastUse.Load()-b.lastUse.Load(), -1), 1)) })
	bytes := s.bytes
	var victims []*entry
	for _, e := range es {
		if bytes <= target && target > 0 {
			break
		}
		e.mu.Lock()
		held := e.heldBytes()
		e.mu.Unlock()
		delete(s.index, e.obj.ID)
		bytes -= held
		victims = append(victims, e)
	}
	s.mu.Unlock()
	for _, e := range victims {
		s.stats.evicted.Add(1)
		s.remove(e)
	}
}

func statfsFree(dir string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}

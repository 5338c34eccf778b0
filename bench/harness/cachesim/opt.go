package cachesim

import "container/heap"

// opt is Belady's rule for variable sizes: on a miss, the incoming object
// and the cached ones compete by next use, and the furthest go first. An
// object is admitted only if the room it needs comes from entries used
// later than it; otherwise it bypasses the cache.
type opt struct {
	next    []int // request → next request for the same object
	h       optHeap
	size    []int64
	used    int64
	budget  int64
	evicted int64
	popped  []int32 // scratch
}

func newOPT(budget int64, objects int, next []int) *opt {
	c := &opt{next: next, size: make([]int64, objects), budget: budget,
		h: optHeap{key: make([]int, objects), pos: make([]int32, objects)}}
	for k := range c.h.pos {
		c.h.pos[k] = -1
	}
	return c
}

func (c *opt) access(i int, k int32, size int64) bool {
	n := c.next[i]
	if c.h.pos[k] >= 0 {
		c.h.key[k] = n
		heap.Fix(&c.h, int(c.h.pos[k]))
		return true
	}
	if size > c.budget || n == Never {
		return false
	}
	// Take the furthest entries while they are used later than k; put them
	// back if they do not free enough. Bounded by the entries cached.
	c.popped = c.popped[:0]
	free := c.budget - c.used
	for free < size && c.h.Len() > 0 && c.h.key[c.h.top()] > n {
		v := heap.Pop(&c.h).(int32)
		c.popped = append(c.popped, v)
		free += c.size[v]
	}
	if free < size {
		for _, v := range c.popped {
			heap.Push(&c.h, v)
		}
		return false
	}
	for _, v := range c.popped {
		c.used -= c.size[v]
		c.evicted++
	}
	c.h.key[k], c.size[k] = n, size
	heap.Push(&c.h, k)
	c.used += size
	return false
}

func (c *opt) evictions() int64 { return c.evicted }

// optHeap is a max-heap of cached objects by next use.
type optHeap struct {
	items []int32
	key   []int   // object → next use
	pos   []int32 // object → index in items, -1 if not cached
}

func (h *optHeap) top() int32         { return h.items[0] }
func (h *optHeap) Len() int           { return len(h.items) }
func (h *optHeap) Less(a, b int) bool { return h.key[h.items[a]] > h.key[h.items[b]] }
func (h *optHeap) Swap(a, b int) {
	h.items[a], h.items[b] = h.items[b], h.items[a]
	h.pos[h.items[a]], h.pos[h.items[b]] = int32(a), int32(b)
}
func (h *optHeap) Push(x any) {
	k := x.(int32)
	h.pos[k] = int32(len(h.items))
	h.items = append(h.items, k)
}
func (h *optHeap) Pop() any {
	k := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	h.pos[k] = -1
	return k
}

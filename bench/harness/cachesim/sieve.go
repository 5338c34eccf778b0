package cachesim

// sieve is SIEVE: a FIFO whose hits set a visited bit; the hand walks from
// the oldest entry towards the newest, clearing bits, and evicts the first
// entry it finds unvisited, staying there for the next eviction.
type sieve struct {
	q       queue
	in      []bool
	visited []bool
	size    []int64
	hand    int32 // -1: start again at the tail
	used    int64
	budget  int64
	evicted int64
}

func newSieve(budget int64, objects int) *sieve {
	return &sieve{q: newQueue(newLinks(objects)), in: make([]bool, objects), visited: make([]bool, objects),
		size: make([]int64, objects), hand: -1, budget: budget}
}

func (c *sieve) access(_ int, k int32, size int64) bool {
	if c.in[k] {
		c.visited[k] = true
		return true
	}
	if size > c.budget {
		return false
	}
	for c.used+size > c.budget { // bounded: each pass evicts one entry
		c.evict()
	}
	c.q.pushHead(k)
	c.in[k], c.visited[k], c.size[k] = true, false, size
	c.used += size
	return false
}

// evict removes one entry; the cache must not be empty. Bounded: the hand
// clears a bit at every entry it passes, so within one lap it finds one
// unvisited.
func (c *sieve) evict() {
	o := c.hand
	if o < 0 {
		o = c.q.tail
	}
	for c.visited[o] {
		c.visited[o] = false
		if o = c.q.newer[o]; o < 0 {
			o = c.q.tail
		}
	}
	c.hand = c.q.newer[o]
	c.q.remove(o)
	c.in[o] = false
	c.used -= c.size[o]
	c.evicted++
}

func (c *sieve) evictions() int64 { return c.evicted }

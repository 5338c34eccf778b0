package cachesim

// queueCache is FIFO, or LRU when a hit moves its entry to the head.
type queueCache struct {
	q       queue
	in      []bool
	size    []int64
	used    int64
	budget  int64
	lru     bool
	evicted int64
}

func newQueueCache(budget int64, objects int, lru bool) *queueCache {
	return &queueCache{q: newQueue(newLinks(objects)), in: make([]bool, objects), size: make([]int64, objects),
		budget: budget, lru: lru}
}

func (c *queueCache) access(_ int, k int32, size int64) bool {
	if c.in[k] {
		if c.lru {
			c.q.remove(k)
			c.q.pushHead(k)
		}
		return true
	}
	if size > c.budget {
		return false
	}
	// Bounded: each pass removes an entry, and an empty cache fits size.
	for c.used+size > c.budget {
		v := c.q.tail
		c.q.remove(v)
		c.in[v] = false
		c.used -= c.size[v]
		c.evicted++
	}
	c.q.pushHead(k)
	c.in[k], c.size[k] = true, size
	c.used += size
	return false
}

func (c *queueCache) evictions() int64 { return c.evicted }

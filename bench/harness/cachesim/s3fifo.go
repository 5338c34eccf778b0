package cachesim

// Where an object is in S3-FIFO.
const (
	s3None uint8 = iota
	s3Small
	s3Main
	s3Ghost
)

// s3fifo is S3-FIFO as in the SOSP 2023 paper (libCacheSim's S3FIFOv0):
// new objects enter the small queue, or the main queue when the ghost
// remembers them; the small queue's oldest entry moves to the main queue
// if it was read again while there, else it leaves and its key joins the
// ghost; the main queue reinserts an entry that was read, decrementing its
// two-bit counter, and evicts one that was not.
type s3fifo struct {
	small, main, ghost    queue
	where                 []uint8
	freq                  []uint8 // 0..3
	size                  []int64
	smallBytes, mainBytes int64
	ghostBytes            int64
	budget, smallBudget   int64
	evicted               int64
}

// s3SmallShare is the small queue's share of the budget, the paper's 10 %.
const s3SmallShare = 0.10

func newS3FIFO(budget int64, objects int) *s3fifo {
	l := newLinks(objects)
	return &s3fifo{small: newQueue(l), main: newQueue(l), ghost: newQueue(l), where: make([]uint8, objects),
		freq: make([]uint8, objects), size: make([]int64, objects),
		budget: budget, smallBudget: int64(float64(budget) * s3SmallShare)}
}

func (c *s3fifo) access(_ int, k int32, size int64) bool {
	switch c.where[k] {
	case s3Small, s3Main:
		c.freq[k] = min(c.freq[k]+1, 3)
		return true
	}
	if size > c.budget {
		return false
	}
	c.size[k] = size
	ghost := c.where[k] == s3Ghost
	if ghost {
		c.ghost.remove(k)
		c.ghostBytes -= size
		c.where[k] = s3None
	}
	// Bounded: every pass evicts an entry, moves one from small to main, or
	// lowers a main entry's counter, which is at most 3.
	for c.smallBytes+c.mainBytes+size > c.budget {
		if c.small.len > 0 && (c.smallBytes >= c.smallBudget || c.main.len == 0) {
			c.evictSmall()
		} else {
			c.evictMain()
		}
	}
	c.freq[k] = 0
	if ghost {
		c.main.pushHead(k)
		c.where[k] = s3Main
		c.mainBytes += size
	} else {
		c.small.pushHead(k)
		c.where[k] = s3Small
		c.smallBytes += size
	}
	return false
}

func (c *s3fifo) evictSmall() {
	t := c.small.tail
	c.small.remove(t)
	c.smallBytes -= c.size[t]
	if c.freq[t] > 0 {
		c.freq[t] = 0
		c.main.pushHead(t)
		c.where[t] = s3Main
		c.mainBytes += c.size[t]
		return
	}
	c.evicted++
	c.ghost.pushHead(t)
	c.where[t] = s3Ghost
	c.ghostBytes += c.size[t]
	// The ghost remembers about as many keys as the main queue holds: here
	// as many bytes' worth as its budget.
	for c.ghostBytes > c.budget-c.smallBudget {
		g := c.ghost.tail
		c.ghost.remove(g)
		c.where[g] = s3None
		c.ghostBytes -= c.size[g]
	}
}

func (c *s3fifo) evictMain() {
	t := c.main.tail
	c.main.remove(t)
	if c.freq[t] > 0 {
		c.freq[t]--
		c.main.pushHead(t)
		return
	}
	c.where[t] = s3None
	c.mainBytes -= c.size[t]
	c.evicted++
}

func (c *s3fifo) evictions() int64 { return c.evicted }

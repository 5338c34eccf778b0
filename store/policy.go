package store

import (
	"github.com/cespare/xxhash/v2"
)

// policy is a tier's eviction order, kept in memory so that a hit writes
// nothing: S3-FIFO (Yang et al., SOSP 2023), the policy that did best on
// the harness's traces (bench/RESULTS.md, "Cache policy"): 1.2 to 1.35 ×
// LRU's hit ratio on viewer traces and more with a crawler mixed in,
// against SIEVE's 1.15, because its small probationary queue lets one-hit
// tiles (a crawler's, a viewer passing over a region) leave without
// displacing tiles read twice.
//
//   - A new entry enters the small queue, or the main queue when the ghost
//     (hashes of keys recently evicted from the small queue) remembers it.
//   - A hit sets a two-bit frequency; nothing moves and nothing is written.
//   - Eviction takes the small queue's oldest entry while the small queue
//     holds at least a tenth of the budget: read since it entered, it moves
//     to the main queue, else it leaves (its hash joins the ghost). From
//     the main queue, an entry read since it was last looked at goes back
//     to the head with its counter decremented; one that was not leaves.
//
// The policy also remembers each entry's last read (Unix seconds) for
// Retention, and the access bucket of its index key on disk ("persisted"):
// the index ("a"+bucket+key, its value the entry's size) is how the order
// survives a restart. Put writes the index key; a hit only changes memory;
// an entry whose last read moved TouchEvery past its index key is queued,
// and the sweeper moves those index keys in batches (a few bytes each, at
// most once per TouchEvery per entry, never the value). At open the order
// is rebuilt from the index, least recently stored or checkpointed first.
//
// Memory: one node per entry, about 100 bytes plus the key, and 16 bytes
// per ghost hash (at most as many as the main queue holds).
type policy struct {
	nodes       map[string]*pnode
	small, main pqueue
	ghost       ghost
	pending     []*pnode // nodes whose index key lags their last read by TouchEvery
}

// Where a node is.
const (
	inSmall uint8 = iota + 1
	inMain
)

type pnode struct {
	key        string
	prev, next *pnode
	size       int64 // len(key) + len(value), as counted for MaxBytes
	access     int64 // last read or write, Unix seconds
	persisted  int64 // access bucket of its index key on disk
	freq       uint8 // 0..3
	where      uint8
	queued     bool // in policy.pending
}

func newPolicy() *policy {
	return &policy{nodes: make(map[string]*pnode)}
}

// pqueue is a doubly linked FIFO: push at the head, take from the tail.
type pqueue struct {
	head, tail *pnode
	len        int
	bytes      int64
}

func (q *pqueue) pushHead(n *pnode) {
	n.prev, n.next = nil, q.head
	if q.head != nil {
		q.head.prev = n
	} else {
		q.tail = n
	}
	q.head = n
	q.len++
	q.bytes += n.size
}

func (q *pqueue) remove(n *pnode) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		q.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		q.tail = n.prev
	}
	n.prev, n.next = nil, nil
	q.len--
	q.bytes -= n.size
}

func (p *policy) queue(n *pnode) *pqueue {
	if n.where == inSmall {
		return &p.small
	}
	return &p.main
}

// add records a Put of key (size bytes) at now, whose index key has bucket
// now. A replaced entry keeps its place and counts as read.
func (p *policy) add(key []byte, size, now int64) {
	if n, ok := p.nodes[string(key)]; ok {
		q := p.queue(n)
		q.bytes += size - n.size
		n.size = size
		n.access, n.persisted = now, now
		n.freq = min(n.freq+1, 3)
		return
	}
	n := &pnode{key: string(key), size: size, access: now, persisted: now}
	p.nodes[n.key] = n
	if p.ghost.take(xxhash.Sum64(key)) {
		n.where = inMain
		p.main.pushHead(n)
	} else {
		n.where = inSmall
		p.small.pushHead(n)
	}
}

// load records an entry found in the index at open, in index order (least
// recent first). dup reports that key was already loaded under an earlier
// bucket old, whose index key is therefore stale.
func (p *policy) load(key []byte, size, bucket int64) (old int64, dup bool) {
	if n, ok := p.nodes[string(key)]; ok {
		old = n.persisted
		n.access, n.persisted = bucket, bucket
		return old, true
	}
	n := &pnode{key: string(key), size: size, access: bucket, persisted: bucket, where: inMain}
	p.nodes[n.key] = n
	p.main.pushHead(n)
	return 0, false
}

// hit records a read of key at now and returns the previous last read
// (false if the policy does not know key). touchSecs is TouchEvery.
func (p *policy) hit(key []byte, now, touchSecs int64) (int64, bool) {
	n, ok := p.nodes[string(key)]
	if !ok {
		return 0, false
	}
	prev := n.access
	n.freq = min(n.freq+1, 3)
	if now > n.access {
		n.access = now
	}
	if !n.queued && n.access-n.persisted >= touchSecs {
		n.queued = true
		p.pending = append(p.pending, n)
	}
	return prev, true
}

// get returns key's node, or nil.
func (p *policy) get(key []byte) *pnode { return p.nodes[string(key)] }

// remove forgets key (dropped, purged): no ghost, it was not evicted.
func (p *policy) remove(key []byte) {
	n, ok := p.nodes[string(key)]
	if !ok {
		return
	}
	p.queue(n).remove(n)
	delete(p.nodes, n.key)
	n.where = 0 // a queued node is skipped by takePending
}

// reset forgets everything (PurgeAll).
func (p *policy) reset() {
	*p = policy{nodes: make(map[string]*pnode)}
}

// victim picks the next entry to evict under a budget of limit bytes (zero:
// the current contents) and forgets it. It returns the victim's key, the
// bucket of its index key and its size; false when the policy is empty.
func (p *policy) victim(limit int64) (key string, persisted, size int64, ok bool) {
	if limit <= 0 {
		limit = p.small.bytes + p.main.bytes
	}
	smallLimit := limit / 10
	// Bounded: each pass evicts, moves a node from small to main, or lowers
	// a main node's counter (at most 3 per node).
	for p.small.len+p.main.len > 0 {
		if p.small.len > 0 && (p.small.bytes >= smallLimit || p.main.len == 0) {
			n := p.small.tail
			p.small.remove(n)
			if n.freq > 0 {
				n.freq = 0
				n.where = inMain
				p.main.pushHead(n)
				continue
			}
			p.ghost.add(xxhash.Sum64String(n.key), p.main.len)
			return p.forget(n)
		}
		n := p.main.tail
		p.main.remove(n)
		if n.freq > 0 {
			n.freq--
			p.main.pushHead(n)
			continue
		}
		return p.forget(n)
	}
	return "", 0, 0, false
}

func (p *policy) forget(n *pnode) (string, int64, int64, bool) {
	delete(p.nodes, n.key)
	n.where = 0
	return n.key, n.persisted, n.size, true
}

// checkpoint is one index key to move: from bucket old to bucket access.
type checkpoint struct {
	key         []byte
	old, access int64
	size        int64
}

// takePending returns up to max index keys to move. The caller locks their
// stripes, checks with get that each node's persisted bucket is still old,
// writes the moves and then sets persisted; if the write fails, the index
// keeps the old bucket and the node is queued again by its next read.
func (p *policy) takePending(max int) []checkpoint {
	var out []checkpoint
	i := 0
	for ; i < len(p.pending) && len(out) < max; i++ {
		n := p.pending[i]
		n.queued = false
		if n.where == 0 || n.access == n.persisted {
			continue // gone, or already written by a Put
		}
		out = append(out, checkpoint{key: []byte(n.key), old: n.persisted, access: n.access, size: n.size})
	}
	p.pending = p.pending[i:]
	if len(p.pending) == 0 {
		p.pending = nil
	}
	return out
}

// ghost remembers the hashes of keys recently evicted from the small queue,
// at most as many as the main queue holds (and at least ghostMin), oldest
// forgotten first.
type ghost struct {
	ring  []uint64
	head  int // index of the oldest hash in ring
	count map[uint64]uint32
}

const ghostMin = 1024

func (g *ghost) add(h uint64, mainLen int) {
	if g.count == nil {
		g.count = make(map[uint64]uint32)
	}
	g.ring = append(g.ring, h)
	g.count[h]++
	limit := max(mainLen, ghostMin)
	for len(g.ring)-g.head > limit {
		g.drop(g.ring[g.head])
		g.head++
	}
	if g.head > len(g.ring)/2 && g.head > ghostMin {
		g.ring = append(g.ring[:0:0], g.ring[g.head:]...)
		g.head = 0
	}
}

func (g *ghost) drop(h uint64) {
	if c := g.count[h]; c > 1 {
		g.count[h] = c - 1
	} else {
		delete(g.count, h)
	}
}

// take reports whether h is remembered, and forgets one occurrence (its
// ring slot stays until it ages out, then drop finds no count and is a
// no-op for it, or lowers another occurrence's: a hash collision at worst).
func (g *ghost) take(h uint64) bool {
	if _, ok := g.count[h]; !ok {
		return false
	}
	g.drop(h)
	return true
}

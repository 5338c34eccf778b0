package cachesim

// links are the prev and next pointers of objects in intrusive doubly linked
// lists, indexed by object; -1 is none. An object is in at most one of the
// lists that share links.
type links struct {
	newer, older []int32
}

func newLinks(objects int) *links {
	l := &links{newer: make([]int32, objects), older: make([]int32, objects)}
	for k := range l.newer {
		l.newer[k], l.older[k] = -1, -1
	}
	return l
}

// queue is a list of objects from head (newest) to tail (oldest).
type queue struct {
	*links
	head, tail int32
	len        int
}

func newQueue(l *links) queue { return queue{links: l, head: -1, tail: -1} }

func (q *queue) pushHead(k int32) {
	q.newer[k], q.older[k] = -1, q.head
	if q.head >= 0 {
		q.newer[q.head] = k
	} else {
		q.tail = k
	}
	q.head = k
	q.len++
}

func (q *queue) remove(k int32) {
	n, o := q.newer[k], q.older[k]
	if n >= 0 {
		q.older[n] = o
	} else {
		q.head = o
	}
	if o >= 0 {
		q.newer[o] = n
	} else {
		q.tail = n
	}
	q.newer[k], q.older[k] = -1, -1
	q.len--
}

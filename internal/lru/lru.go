// Package lru is a small, concurrency-safe, fixed-capacity least-recently-used
// map. It backs the renderer's source-metadata cache and the proxy's
// in-memory tile and info caches (RAIS's TileCacheLen and InfoCacheLen).
package lru

import (
	"container/list"
	"sync"
)

// Cache holds at most Cap entries; the zero value is not usable, use New.
type Cache[K comparable, V any] struct {
	mu    sync.Mutex // protects ll and items
	cap   int
	ll    *list.List // front = most recently used; elements hold *entry[K, V]
	items map[K]*list.Element
	evict func(K, V) // called, outside mu, for values dropped or replaced; may be nil
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// New returns a cache holding up to capacity entries. A capacity of zero or
// less gives a cache that stores nothing, so callers need no special case for
// "cache off".
func New[K comparable, V any](capacity int) *Cache[K, V] {
	return NewWithEvict[K, V](capacity, nil)
}

// NewWithEvict is New with a function called for every value that leaves the
// cache (evicted, replaced, removed, or refused by a zero-capacity cache), so
// values that hold resources can release them.
func NewWithEvict[K comparable, V any](capacity int, evict func(K, V)) *Cache[K, V] {
	return &Cache[K, V]{cap: capacity, ll: list.New(), items: make(map[K]*list.Element), evict: evict}
}

func (c *Cache[K, V]) dropped(gone []entry[K, V]) {
	if c.evict != nil {
		for _, e := range gone {
			c.evict(e.key, e.val)
		}
	}
}

// Get returns the value for key and marks it recently used.
func (c *Cache[K, V]) Get(key K) (v V, ok bool) {
	if c.cap <= 0 {
		return v, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return v, false
	}
	c.ll.MoveToFront(el)
	return el.Value.(*entry[K, V]).val, true
}

// Add stores val under key, evicting the least recently used entry when full.
func (c *Cache[K, V]) Add(key K, val V) {
	if c.cap <= 0 {
		c.dropped([]entry[K, V]{{key, val}})
		return
	}
	var gone []entry[K, V]
	c.mu.Lock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*entry[K, V])
		gone = append(gone, *e)
		e.val = val
		c.ll.MoveToFront(el)
	} else {
		c.items[key] = c.ll.PushFront(&entry[K, V]{key, val})
		if c.ll.Len() > c.cap {
			last := c.ll.Back()
			c.ll.Remove(last)
			e := last.Value.(*entry[K, V])
			delete(c.items, e.key)
			gone = append(gone, *e)
		}
	}
	c.mu.Unlock()
	c.dropped(gone)
}

// Remove drops key if present.
func (c *Cache[K, V]) Remove(key K) {
	c.RemoveFunc(func(k K) bool { return k == key })
}

// RemoveFunc drops every entry whose key satisfies match.
func (c *Cache[K, V]) RemoveFunc(match func(K) bool) {
	var gone []entry[K, V]
	c.mu.Lock()
	for k, el := range c.items {
		if match(k) {
			gone = append(gone, *el.Value.(*entry[K, V]))
			c.ll.Remove(el)
			delete(c.items, k)
		}
	}
	c.mu.Unlock()
	c.dropped(gone)
}

// Len returns the number of entries.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

package shared

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
)

// queue is the layer's background writer: entries to write (bounded in
// number and bytes: past either, a write is dropped and counted, so a slow
// or dead store costs memory up to the bound and never a response), and
// small operations (lease releases, refresh copies, deletes of corrupt or
// purged objects; bounded in number, dropped past it: a lease left behind
// expires, a refresh comes again with the next read).
type queue struct {
	l        *Layer
	puts     chan putJob
	small    chan func()
	maxBytes int64
	bytes    atomic.Int64
	mu       sync.RWMutex // protects closed against sends on closed channels
	closed   bool
	wg       sync.WaitGroup
}

type putJob struct {
	key   string
	value []byte
	lease string // released after the write ("" when none)
}

func newQueue(l *Layer, n int, maxBytes int64, writers int) *queue {
	q := &queue{l: l, puts: make(chan putJob, n), small: make(chan func(), n), maxBytes: maxBytes}
	for range writers {
		q.wg.Add(1)
		go q.run()
	}
	return q
}

func (q *queue) run() {
	defer q.wg.Done()
	puts, small := q.puts, q.small
	for puts != nil || small != nil {
		select {
		case j, ok := <-puts:
			if !ok {
				puts = nil
				continue
			}
			q.bytes.Add(-int64(len(j.value)))
			q.write(j)
		case f, ok := <-small:
			if !ok {
				small = nil
				continue
			}
			f()
		}
	}
}

// write stores one entry, then releases its lease: in this order, a node
// waiting on the lease finds the entry the moment the lease is gone.
func (q *queue) write(j putJob) {
	l := q.l
	err := l.call(context.Background(), func(ctx context.Context) error {
		_, err := l.c.PutObject(ctx, l.bucket, j.key, bytes.NewReader(j.value), int64(len(j.value)),
			minio.PutObjectOptions{ContentType: "application/octet-stream"})
		return err
	})
	if err != nil {
		l.stats.drops.Add(1)
	} else {
		l.stats.writes.Add(1)
		l.stats.bytes.Add(uint64(len(j.value)))
	}
	if j.lease != "" {
		l.releaseNow(j.lease)
	}
}

// put queues an entry's write, or drops it (counted) and releases its
// lease when the queue is full.
func (q *queue) put(key string, value []byte, lease string) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if !q.closed && q.bytes.Add(int64(len(value))) <= q.maxBytes {
		select {
		case q.puts <- putJob{key, value, lease}:
			return
		default:
		}
	}
	if !q.closed {
		q.bytes.Add(-int64(len(value)))
	}
	q.l.stats.drops.Add(1)
	q.releaseLocked(lease)
}

// do queues a small operation; false when it was dropped.
func (q *queue) do(f func()) bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.doLocked(f)
}

func (q *queue) doLocked(f func()) bool {
	if q.closed {
		return false
	}
	select {
	case q.small <- f:
		return true
	default:
		return false
	}
}

func (q *queue) release(lease string) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	q.releaseLocked(lease)
}

func (q *queue) releaseLocked(lease string) {
	if lease != "" {
		q.doLocked(func() { q.l.releaseNow(lease) })
	}
}

func (q *queue) copy(key string) bool { return q.do(func() { q.l.doRefresh(key) }) }

func (q *queue) remove(key string) {
	q.do(func() {
		_ = q.l.call(context.Background(), func(ctx context.Context) error {
			return q.l.c.RemoveObject(ctx, q.l.bucket, key, minio.RemoveObjectOptions{})
		})
	})
}

// size is the writes waiting now: entries and bytes.
func (q *queue) size() (int, int64) { return len(q.puts), q.bytes.Load() }

// close stops taking work and waits up to wait for what is queued.
func (q *queue) close(wait time.Duration) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	close(q.puts)
	close(q.small)
	q.mu.Unlock()
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
	}
}

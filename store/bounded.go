package store

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Every Pebble call the store makes that waits for a flush or a compaction
// is bounded here. Pebble retries a failed flush at once and forever (its
// flush loop reschedules itself after an error), and DB.Flush waits for
// the memtable to reach an sstable: on a full disk, where faultFS refuses
// new sstables below the reserve, that never happens. An unbounded Flush
// kept the sweeper, and with it engine.Close, waiting forever: every
// ENOSPC ended with the database abandoned after closeTimeout (its
// goroutines, memory and open files leaked), and a flush in the
// supervisor's shedding kept Tier.Close, and SIGTERM, from ever finishing.
// Giving up the wait is safe: the flush goes on (or keeps failing) inside
// Pebble, DB.Close stops its retries, and without a WAL an unflushed
// memtable is what a crash would lose anyway.

// flushWait bounds a wait for a flush: a healthy flush of a 4 MB memtable
// takes milliseconds; one that has not finished in this time is failing.
const flushWait = 5 * time.Second

// errFlushStuck is a flush that did not finish within flushWait. It is
// ErrUnavailable to callers: the tier is out of space, or going out of
// service, and a purge that meets it is kept for the next open.
var errFlushStuck = fmt.Errorf("%w: a flush did not finish within %v (the file system is full or failing)", ErrUnavailable, flushWait)

// flushBounded flushes the memtable and waits for it at most flushWait, or
// until stop is closed (nil: no stop), or ctx ends.
func (t *engine) flushBounded(ctx context.Context, stop <-chan struct{}) error {
	flushed, err := t.db.AsyncFlush()
	if err != nil {
		return err
	}
	if flushed == nil {
		return nil
	}
	timer := time.NewTimer(flushWait)
	defer timer.Stop()
	select {
	case <-flushed:
		t.hooks.flushed()
		return nil
	case <-stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return errFlushStuck
	}
}

// flushWithin is flushBounded without a context.
func (t *engine) flushWithin(stop <-chan struct{}) error {
	return t.flushBounded(context.Background(), stop)
}

// untilDone returns a context that ends when the engine closes, or when
// stop (if not nil) is closed: a manual compaction's wait (it flushes
// first, and waits for its turn) must not outlive the engine or the Tier.
func (t *engine) untilDone(stop <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-t.done:
		case <-stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	return ctx, cancel
}

// openPebble is pebble.Open turned panic-safe for one known case: Open's
// own clean-up after a failed open (an ENOSPC while writing the OPTIONS or
// MANIFEST of a database that has tables) closes its file cache while a
// table reader still holds a reference, and genericcache panics "element
// has outstanding references", killing the process. The panic is raised
// in a deferred clean-up after every lock of Open is released, so recovering
// it is safe; what the clean-up did not reach (its cleanup goroutine, the
// open files of its object provider) is leaked, and the directory's lock,
// which faultFS holds for it, is released here. The Tier drops the
// directory after such a failure (Tier.open), so an open of the same files
// cannot panic again.
func openPebble(dir string, opts *pebble.Options) (db *pebble.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db = nil
			if fs, ok := opts.FS.(*faultFS); ok {
				fs.releaseLock()
			}
			err = &openPanicError{dir: dir, v: r}
		}
	}()
	return pebble.Open(dir, opts)
}

// openPanicError is a pebble.Open that panicked (see openPebble).
type openPanicError struct {
	dir string
	v   any
}

func (e *openPanicError) Error() string {
	return fmt.Sprintf("store: open %s: pebble panicked in its clean-up of a failed open: %v", e.dir, e.v)
}

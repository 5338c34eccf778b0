package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/iiif-proxy/iiif-proxy/renderer"
)

// File reads one object version through the source cache. It stays usable
// when its version is evicted or replaced (the data file is unlinked, not
// closed, until the last File closes).
type File struct {
	s      *Store
	e      *entry
	closed atomic.Bool
}

// Open returns a reader of obj (from Stat or Known), cached or not yet.
// A newer version in the cache is renderer.ErrSourceChanged: obj is not
// put back in its place.
func (s *Store) Open(obj Object) (*File, error) {
	for range 3 {
		s.mu.Lock()
		e := s.index[obj.ID]
		s.mu.Unlock()
		if e != nil && e.obj != obj {
			return nil, renderer.ErrSourceChanged
		}
		if e == nil {
			var err error
			if e, err = s.add(obj); err != nil {
				return nil, err
			}
		}
		e.mu.Lock()
		if e.gone && e.refs == 0 {
			// Removed meanwhile (its file is gone): start again.
			e.mu.Unlock()
			continue
		}
		if e.refs == 0 {
			f, err := os.OpenFile(s.path(e.name, ".data"), os.O_RDWR, 0)
			if err != nil {
				e.mu.Unlock()
				return nil, err
			}
			e.f = f
		}
		e.refs++
		e.mu.Unlock()
		e.lastUse.Store(s.now().UnixNano())
		return &File{s: s, e: e}, nil
	}
	return nil, fmt.Errorf("S3 object %s: evicted as fast as it is opened", obj.Key)
}

// Object is the version f reads.
func (f *File) Object() Object { return f.e.obj }

// Size is the object's size.
func (f *File) Size() int64 { return f.e.obj.Size }

// ErrSince is the last failure of the store met by any read of f's
// version at or after t (a *renderer.UnavailableError, or
// renderer.ErrSourceChanged when the object was overwritten), or nil: a
// decoder that failed on f since t failed because of the store, not
// because of the bytes.
func (f *File) ErrSince(t time.Time) error {
	if f.e.failAt.Load() < t.UnixNano() {
		return nil
	}
	if p := f.e.failErr.Load(); p != nil {
		return *p
	}
	return nil
}

// note records err as a failure of f's version when it is the store's.
func (f *File) note(err error) {
	var ue *renderer.UnavailableError
	if errors.As(err, &ue) || errors.Is(err, renderer.ErrSourceChanged) {
		f.e.failErr.Store(&err)
		f.e.failAt.Store(f.s.now().UnixNano())
	}
}

// Clone returns another reader of f's version, which keeps its data open
// until it is closed too.
func (f *File) Clone() *File {
	e := f.e
	e.mu.Lock()
	e.refs++
	e.mu.Unlock()
	return &File{s: f.s, e: e}
}

// Close releases f.
func (f *File) Close() error {
	if f.closed.Swap(true) {
		return nil
	}
	e := f.e
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		err := e.f.Close()
		e.f = nil
		return err
	}
	return nil
}

// ReadAt reads from the cache, fetching the blocks it lacks first.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	size := f.e.obj.Size
	if off >= size {
		return 0, io.EOF
	}
	want := p
	if off+int64(len(p)) > size {
		want = p[:size-off]
	}
	if len(want) == 0 {
		return 0, nil
	}
	if err := f.ensure(context.Background(), off, int64(len(want)), want); err != nil {
		f.note(err)
		return 0, err
	}
	if len(want) < len(p) {
		return len(want), io.EOF
	}
	return len(want), nil
}

// ensure makes sure [off, off+n) is in the cache. When it cannot be cached
// (no room on disk), it reads the range from the store straight into p
// (when p is not nil) instead.
func (f *File) ensure(ctx context.Context, off, n int64, p []byte) error {
	e, s := f.e, f.s
	e.lastUse.Store(s.now().UnixNano())
	b0, b1 := off/e.block, (off+n-1)/e.block
	for attempt := 0; ; attempt++ {
		var claimed []int64
		var waits []chan struct{}
		e.mu.Lock()
		for b := b0; b <= b1; b++ {
			if e.bit(b) {
				continue
			}
			if ch, ok := e.inflight[b]; ok {
				waits = append(waits, ch)
				continue
			}
			if e.inflight == nil {
				e.inflight = map[int64]chan struct{}{}
			}
			e.inflight[b] = make(chan struct{})
			claimed = append(claimed, b)
		}
		e.mu.Unlock()
		if len(claimed) == 0 && len(waits) == 0 {
			if p != nil {
				_, err := e.f.ReadAt(p, off)
				return err
			}
			return nil
		}
		var ferr error
		for i := 0; i < len(claimed); {
			j := i + 1
			for j < len(claimed) && claimed[j] == claimed[j-1]+1 {
				j++
			}
			if ferr == nil {
				ferr = f.fetch(ctx, claimed[i], claimed[j-1])
			} else {
				f.release(claimed[i:j])
			}
			i = j
		}
		for _, ch := range waits {
			select {
			case <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if errors.Is(ferr, errNoRoom) {
			if p == nil {
				// A whole copy cannot be read around the cache.
				return &renderer.UnavailableError{Err: fmt.Errorf("S3 object %s: %w", e.obj.Key, errNoRoom)}
			}
			s.stats.uncached.Add(1)
			return f.s.getRange(ctx, e.obj, off, n, bufWriter(p), nil)
		}
		if ferr != nil {
			return ferr
		}
		if attempt >= 2 {
			// Another reader's fetch failed twice: say so rather than
			// loop; its error went to its own caller.
			return &renderer.UnavailableError{Err: fmt.Errorf("S3 object %s: blocks could not be fetched", e.obj.Key)}
		}
	}
}

var errNoRoom = errors.New("no room in the source cache")

// fetch gets blocks [b0, b1] (claimed by this reader) in one ranged GET and
// stores them, releasing each block's waiters as soon as it is written.
func (f *File) fetch(ctx context.Context, b0, b1 int64) error {
	e, s := f.e, f.s
	off := b0 * e.block
	n := min((b1+1)*e.block, e.obj.Size) - off
	if !s.room(n, e) {
		f.release(blocks(b0, b1))
		return errNoRoom
	}
	next := b0 // the first block not yet marked
	err := s.getRange(ctx, e.obj, off, n, io.NewOffsetWriter(localWriter{e.f}, off), func(done int64) {
		end := off + done // bytes [0, end) of this range are written
		var added int64
		e.mu.Lock()
		for next <= b1 && min((next+1)*e.block, e.obj.Size) <= end {
			if !e.bit(next) {
				e.have[next/64] |= 1 << (next % 64)
				e.nhave++
				e.dirty = true
				added += e.blockLen(next)
			}
			if ch, ok := e.inflight[next]; ok {
				close(ch)
				delete(e.inflight, next)
			}
			next++
		}
		gone := e.gone
		e.mu.Unlock()
		if !gone {
			s.account(added, e)
		}
	})
	if next <= b1 {
		f.release(blocks(next, b1))
	}
	e.mu.Lock()
	whole, gone := e.whole(), e.gone
	e.mu.Unlock()
	if err == nil && whole && !gone {
		e.persist()
	}
	return err
}

func blocks(b0, b1 int64) []int64 {
	out := make([]int64, 0, b1-b0+1)
	for b := b0; b <= b1; b++ {
		out = append(out, b)
	}
	return out
}

// release gives up claimed blocks that were not fetched: their waiters
// wake and try themselves.
func (f *File) release(bs []int64) {
	e := f.e
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range bs {
		if ch, ok := e.inflight[b]; ok {
			close(ch)
			delete(e.inflight, b)
		}
	}
}

// Whole makes the whole object local and returns a read-only handle on the
// cached copy, for decoders that need a file (flat formats) and for the
// pyramid builder. Close it when done.
func (f *File) Whole(ctx context.Context) (*os.File, error) {
	e := f.e
	if e.obj.Size > 0 {
		if err := f.ensure(ctx, 0, e.obj.Size, nil); err != nil {
			f.note(err)
			return nil, err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.whole() {
		return nil, &renderer.UnavailableError{Err: fmt.Errorf("S3 object %s: %w", e.obj.Key, errNoRoom)}
	}
	fd, err := syscall.Dup(int(e.f.Fd()))
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), e.obj.Key), nil
}

// localWriter marks write errors as the local disk's, not the store's.
type localWriter struct{ f *os.File }

func (w localWriter) WriteAt(p []byte, off int64) (int, error) {
	n, err := w.f.WriteAt(p, off)
	if err != nil {
		err = &localError{err}
	}
	return n, err
}

type localError struct{ err error }

func (e *localError) Error() string { return "source cache: " + e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// bufWriter writes into a byte slice at offsets.
type bufWriter []byte

func (b bufWriter) WriteAt(p []byte, off int64) (int, error) { return copy(b[off:], p), nil }

// put stores data, which starts at block b and covers whole blocks (the
// object's last one may be short), and marks them held.
func (f *File) put(b int64, data []byte) {
	e, s := f.e, f.s
	if !s.room(int64(len(data)), e) {
		return
	}
	if _, err := e.f.WriteAt(data, b*e.block); err != nil {
		return
	}
	var added int64
	e.mu.Lock()
	for k := b; k*e.block < b*e.block+int64(len(data)) && k < e.nblocks; k++ {
		if !e.bit(k) {
			e.have[k/64] |= 1 << (k % 64)
			e.nhave++
			added += e.blockLen(k)
			e.dirty = true
		}
	}
	gone, whole := e.gone, e.whole()
	e.mu.Unlock()
	if !gone {
		s.account(added, e)
		if whole {
			e.persist()
		}
	}
}

package proxy

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// The in-flight budget bounds the bytes held by responses that are being
// written. A body stays referenced until the client has read it (fasthttp
// writes it from the handler's buffer into the socket as the client
// drains it), so without a bound a dozen clients that ask for a 177 MB PNG
// and read slowly pin two gigabytes. Every response body is counted from the
// moment send sets it until fasthttp has written it or dropped it: it goes
// out as a body stream whose Close releases its bytes, and fasthttp closes a
// body stream after writing it, after a failed write and when it resets the
// response of a closed connection. A response that would take the budget
// over its limit gets a fast 503 with Retry-After instead.

var errBusy = errors.New("too many response bytes in flight to slow clients")

// budget counts bytes in flight against a limit. A zero limit means none.
type budget struct {
	limit    atomic.Int64 // may change live (SIGHUP)
	used     atomic.Int64
	refused  atomic.Uint64
	inFlight atomic.Int64 // responses holding bytes now
}

// acquire takes n bytes, or reports false when they do not fit.
func (b *budget) acquire(n int64) bool {
	limit := b.limit.Load()
	for {
		used := b.used.Load()
		if limit > 0 && used+n > limit {
			b.refused.Add(1)
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			b.inFlight.Add(1)
			return true
		}
	}
}

func (b *budget) release(n int64) {
	b.used.Add(-n)
	b.inFlight.Add(-1)
}

// bodyReader is a response body counted against a budget: fasthttp copies it
// to the connection with WriteTo and then calls Close, which releases its
// bytes (once) and hands a pooled buffer back.
type bodyReader struct {
	b      []byte
	off    int
	budget *budget
	pooled bool // b came from bodyBufs and goes back to it
	closed atomic.Bool
}

var _ io.WriterTo = (*bodyReader)(nil)

func (r *bodyReader) Read(p []byte) (int, error) {
	if r.off >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.off:])
	r.off += n
	return n, nil
}

// WriteTo writes the rest of the body in one call, as SetBodyRaw would.
func (r *bodyReader) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(r.b[r.off:])
	r.off += n
	return int64(n), err
}

// Close releases the body's bytes; fasthttp may call it more than once.
func (r *bodyReader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.budget.release(int64(len(r.b)))
	if r.pooled {
		putBodyBuf(r.b)
	}
	r.b = nil
	return nil
}

// bodyBufs hold disk hits between the store and the socket. Buffers above
// maxPooledBody are left to the GC, so one huge response does not stay
// pinned in the pool.
var bodyBufs sync.Pool

const maxPooledBody = 1 << 20

func getBodyBuf() []byte {
	if b, ok := bodyBufs.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

func putBodyBuf(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooledBody {
		return
	}
	b = b[:0]
	bodyBufs.Put(&b)
}

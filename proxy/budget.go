package proxy

import (
	"errors"
	"io"
	"math"
	"sync"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/iiif-proxy/iiif-proxy/rules"
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
//
// An image request reserves its bytes before it reads the cache or starts a
// render, at an upper estimate (3 bytes a pixel, twice that for an arbitrary
// rotation's larger canvas), and trims the reservation to the body's real
// size once it has it. Otherwise a crowd of requests for a 177 MB PNG would
// each read it from disk (or render it) only to be refused, and the
// refused copies alone would take gigabytes.

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

// resize changes a reservation of from bytes to to bytes. When the larger
// size does not fit, it releases the reservation whole and reports false.
func (b *budget) resize(from, to int64) bool {
	limit := b.limit.Load()
	for {
		used := b.used.Load()
		if to > from && limit > 0 && used+to-from > limit {
			b.refused.Add(1)
			b.release(from)
			return false
		}
		if b.used.CompareAndSwap(used, used+to-from) {
			return true
		}
	}
}

// estimate is the most bytes res's response is expected to take: the
// output's pixels at 3 bytes each (RGB, as uncompressed TIFF would take;
// PNG rarely does worse), doubled for an arbitrary rotation, plus 1 KB of
// headers and format overhead, capped at the limit so that a request larger
// than the whole budget is still served when nothing else is in flight
// rather than refused for ever.
func (b *budget) estimate(w, h int, rotated bool) int64 {
	n := int64(w)*int64(h)*3 + 1024
	if rotated {
		n *= 2
	}
	if limit := b.limit.Load(); limit > 0 && n > limit {
		n = limit
	}
	return n
}

// reserve takes the in-flight bytes res's response may need before the
// cache is read or a render starts, so that a request the budget cannot take
// is refused (503, Retry-After) before it costs anything. The caller defers
// unreserve(held) and hands held to send, which moves the bytes to the body
// stream.
func (p *Proxy) reserve(ctx *fasthttp.RequestCtx, res rules.Resolved) (held *int64, ok bool) {
	n := p.budget.estimate(res.Width, res.Height, math.Mod(res.Rotation.Degrees, 90) != 0)
	if !p.budget.acquire(n) {
		p.fail(ctx, errBusy)
		return nil, false
	}
	return &n, true
}

// unreserve releases what a reservation still holds: nothing once send
// handed it to a body stream.
func (p *Proxy) unreserve(held *int64) {
	if *held > 0 {
		p.budget.release(*held)
	}
}

func (b *budget) release(n int64) {
	b.used.Add(-n)
	b.inFlight.Add(-1)
}

// bodyReader is a response body counted against a budget: fasthttp copies it
// to the connection with WriteTo and then calls Close, which releases its
// bytes. fasthttp closes a body stream once (it forgets the stream as it
// closes it), so readers are pooled; spare carries a disk hit's buffer back
// to the next disk hit, so the steady state allocates nothing.
type bodyReader struct {
	b      []byte
	off    int
	budget *budget
	pooled bool   // b is a disk hit's buffer, to reuse
	spare  []byte // a buffer for getBodyBuf
}

var _ io.WriterTo = (*bodyReader)(nil)

var bodyReaders = sync.Pool{New: func() any { return new(bodyReader) }}

// newBodyReader returns a reader of b that holds len(b) bytes of budget
// until it is closed.
func newBodyReader(b []byte, bud *budget, pooled bool) *bodyReader {
	r := bodyReaders.Get().(*bodyReader)
	r.b, r.off, r.budget, r.pooled = b, 0, bud, pooled
	return r
}

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

// Close releases the body's bytes and recycles the reader.
func (r *bodyReader) Close() error {
	r.budget.release(int64(len(r.b)))
	if r.pooled && r.spare == nil && cap(r.b) <= maxPooledBody {
		r.spare = r.b[:0]
	}
	r.b, r.budget = nil, nil
	bodyReaders.Put(r)
	return nil
}

// maxPooledBody is the largest disk-hit buffer kept for reuse: one huge
// response must not stay pinned in the pool.
const maxPooledBody = 1 << 20

// getBodyBuf returns a buffer for a disk hit, empty but with capacity when
// a closed reader left one.
func getBodyBuf() []byte {
	r := bodyReaders.Get().(*bodyReader)
	b := r.spare
	r.spare = nil
	bodyReaders.Put(r)
	return b
}

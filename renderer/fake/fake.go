// Package fake is a renderer for tests of everything above the renderer
// contract (cache, proxy): it counts every call, can hold renders at a gate
// until the test lets them go, fails on demand, and needs no cgo. Its bodies
// are text that names what was rendered from which version of the source, so
// a test can tell a stale body from a fresh one by reading it.
package fake

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// Renderer is a fake renderer. The zero value has no sources; use Set.
type Renderer struct {
	mu      sync.Mutex // protects sources, infoErr, renderErr, gate
	sources map[string]*renderer.Source
	infoErr map[string]error
	rendErr map[string]error
	gate    chan struct{} // when not nil, Render waits for it to close

	// Infos and Renders count calls; Started counts renders that reached
	// the gate (or went past it).
	Infos, Renders, Started atomic.Int64
	// Lim are the limits Limits reports.
	Lim rules.Limits
}

var _ renderer.Renderer = (*Renderer)(nil)

// New returns a fake renderer with no sources.
func New() *Renderer { return &Renderer{} }

// Set adds or replaces source id as a width × height image. Each call makes
// a new version: a new Identity and a new ModTime (version seconds after
// 2020-01-01), as a replaced file would have.
func (f *Renderer) Set(id string, width, height int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sources == nil {
		f.sources = map[string]*renderer.Source{}
	}
	ver := 1
	if old, ok := f.sources[id]; ok {
		ver = old.Detail.(int) + 1
	}
	f.sources[id] = &renderer.Source{ID: id, Width: width, Height: height, TileWidth: 256, TileHeight: 256,
		ScaleFactors: []int{1, 2, 4}, ModTime: time.Date(2020, 1, 1, 0, 0, ver, 0, time.UTC),
		Identity: "fake:" + strconv.Itoa(ver), Detail: ver}
}

// Remove deletes source id.
func (f *Renderer) Remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sources, id)
}

// FailInfo makes Info(id) fail with err (nil stops it).
func (f *Renderer) FailInfo(id string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.infoErr == nil {
		f.infoErr = map[string]error{}
	}
	f.infoErr[id] = err
}

// FailRender makes Render of id fail with err (nil stops it).
func (f *Renderer) FailRender(id string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rendErr == nil {
		f.rendErr = map[string]error{}
	}
	f.rendErr[id] = err
}

// Hold makes renders wait until the returned function is called.
func (f *Renderer) Hold() (release func()) {
	g := make(chan struct{})
	f.mu.Lock()
	f.gate = g
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.gate = nil
			f.mu.Unlock()
			close(g)
		})
	}
}

// Info describes id.
func (f *Renderer) Info(ctx context.Context, id string) (*renderer.Source, error) {
	f.Infos.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.infoErr[id]; err != nil {
		return nil, err
	}
	s, ok := f.sources[id]
	if !ok {
		return nil, renderer.ErrNotFound
	}
	return s, nil
}

// Sizes are the sizes of the scale factors.
func (f *Renderer) Sizes(s *renderer.Source) []renderer.Size {
	var out []renderer.Size
	for i := len(s.ScaleFactors) - 1; i >= 0; i-- {
		k := s.ScaleFactors[i]
		out = append(out, renderer.Size{Width: (s.Width + k - 1) / k, Height: (s.Height + k - 1) / k})
	}
	return out
}

// Limits returns Lim.
func (f *Renderer) Limits() rules.Limits { return f.Lim }

// Render returns "fake {id} v{version} {key}" after the gate opens, or
// ctx's error if it ends first. A source replaced since Info gives
// ErrSourceChanged.
func (f *Renderer) Render(ctx context.Context, src *renderer.Source, res rules.Resolved) (renderer.Image, error) {
	f.Started.Add(1)
	f.mu.Lock()
	gate, err := f.gate, f.rendErr[src.ID]
	cur, ok := f.sources[src.ID]
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return renderer.Image{}, ctx.Err()
		}
	}
	f.Renders.Add(1)
	if err != nil {
		return renderer.Image{}, err
	}
	if !ok {
		return renderer.Image{}, renderer.ErrNotFound
	}
	if cur.Identity != src.Identity {
		return renderer.Image{}, renderer.ErrSourceChanged
	}
	body := fmt.Appendf(nil, "fake %s v%d ", src.ID, src.Detail.(int))
	body = res.AppendKey(body)
	return renderer.Image{Body: body, MIME: res.Format.MIME(), ModTime: src.ModTime, Identity: src.Identity}, nil
}

// Forwarding is a fake renderer that is also a renderer.Forwarder, like an
// upstream: it can render a request whose source Info cannot describe.
type Forwarding struct {
	*Renderer
	// Forwards counts Forward calls that passed the gate.
	Forwards atomic.Int64
}

var _ renderer.Forwarder = (*Forwarding)(nil)

// Forward returns "fake {id} forwarded {normalised request}" after the gate
// opens, or the error set by FailRender; the image has no Identity.
func (f *Forwarding) Forward(ctx context.Context, id string, req rules.Request) (renderer.Image, error) {
	f.Started.Add(1)
	f.mu.Lock()
	gate, err := f.gate, f.rendErr[id]
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return renderer.Image{}, ctx.Err()
		}
	}
	f.Forwards.Add(1)
	if err != nil {
		return renderer.Image{}, err
	}
	body := fmt.Appendf(nil, "fake %s forwarded ", id)
	return renderer.Image{Body: req.AppendNormalised(body), MIME: req.Format.MIME()}, nil
}

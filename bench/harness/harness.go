// Package harness drives load at IIIF image servers over HTTP and measures
// them: any server, ours or RAIS, Cantaloupe, IIPImage, a CDN.
//
// A run has one or two Targets (two for a comparison), each one or more
// base URLs serving the same identifiers. Discover reads every image's
// info.json from every base first; the workload generators then need no
// responses, so the same request streams can be sent to both targets and on
// a fixed schedule.
//
// Load models:
//   - Closed loop (Config.Rate zero): Concurrency users, each sending its next
//     request when the last one is answered. Latency is from send to
//     response. A server that stalls slows the users down, so the stall shows
//     in few samples: closed loop measures throughput, not waiting.
//   - Open loop (Config.Rate > 0): requests are due at a fixed rate
//     (uniformly spaced, or Poisson), whatever the server does; Concurrency
//     workers (one connection each) send them. Latency is measured from the
//     time the schedule meant to send each request, so a request that waits
//     for a free connection behind a stalled server counts its wait: there is
//     no coordinated omission. Stats.Service keeps the latency from the
//     actual send too, and TargetResult.DispatchLag the harness's own
//     lateness, so one can tell a slow server from a slow harness.
//
// Both models run Warmup first, unrecorded, then Duration (or Requests
// requests) per target. With two targets the measured time is cut into
// slices of Config.Slice that alternate between the targets (A, B, A, B…),
// each target continuing its own copy of the same request streams, so both
// see the same machine conditions and the same schedule; rates are per
// target over its own measured time.
//
// The stampede workload (RunStampede) is different: rounds in which
// Concurrency clients, each with a connection already open, wait at a
// barrier and then send the same never-seen URL at once.
//
// Replay is different again: it sends a fixed request trace (package
// trace) to one server in the trace's order, open loop, and keeps what the
// server said to each request, so that the server's hit ratio can be set
// against offline simulations of the same trace (package cachesim).
//
// Responses are filed by target and tier: X-Cache-Tier when the server sends
// it, else the request's shape. Latencies go into HDR histograms (1 µs to
// 1 h, 3 significant digits), merged across workers at the end.
package harness

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/iiif-proxy/iiif-proxy/bench/harness/workload"
	"github.com/iiif-proxy/iiif-proxy/internal/iiif"
)

// Target is one server under test, reached through one or more base URLs
// (several nodes, or one server's /iiif/3 and /iiif/2) that serve the same
// identifiers. Requests are shared round-robin between the bases.
type Target struct {
	// Name labels the target in reports: "A", "B".
	Name string
	// Bases are IIIF base URLs without the identifier, e.g.
	// http://127.0.0.1:12415/iiif/3.
	Bases []string
	// Metrics is the target's Prometheus endpoint, read around each
	// stampede round to count renders. Empty means none.
	Metrics string

	corpora []workload.Corpus // one per base, filled by Discover
}

// Corpora returns what Discover found: one corpus per base.
func (t *Target) Corpora() []workload.Corpus { return t.corpora }

// Discover reads info.json of every identifier from every base of every
// target, concurrently, and keeps the identifiers that every base serves, in
// the given order, so that all targets replay the same streams. It returns
// one line per identifier dropped, saying why; it fails when none is left.
func Discover(ctx context.Context, targets []*Target, ids []string, timeout time.Duration) (dropped []string, err error) {
	if len(ids) == 0 {
		return nil, errors.New("no identifiers")
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	type slot struct {
		im  iiif.Image
		err error
	}
	type base struct {
		t     *Target
		url   string
		c     *client
		slots []slot
	}
	var bases []*base
	for _, t := range targets {
		if len(t.Bases) == 0 {
			return nil, fmt.Errorf("target %s has no base URL", t.Name)
		}
		for _, u := range t.Bases {
			u = strings.TrimRight(u, "/")
			c, err := newClient(u, 8, true, timeout)
			if err != nil {
				return nil, err
			}
			bases = append(bases, &base{t: t, url: u, c: c, slots: make([]slot, len(ids))})
		}
	}
	type job struct {
		b *base
		i int
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for j := range jobs {
				c := workload.Corpus{Base: j.b.url, Images: []iiif.Image{{ID: ids[j.i]}}}
				u := c.InfoURL(0).URL
				res, err := j.b.c.get(u, req, resp)
				switch {
				case err != nil:
				case res.status != fasthttp.StatusOK:
					err = fmt.Errorf("status %d", res.status)
				default:
					j.b.slots[j.i].im, err = iiif.ParseInfo(ids[j.i], resp.Body())
				}
				if err != nil {
					j.b.slots[j.i].err = fmt.Errorf("%s: %w", u, err)
				}
			}
		})
	}
feed:
	for _, b := range bases {
		for i := range ids {
			select {
			case jobs <- job{b, i}:
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	keep := make([]bool, len(ids))
	var why []string
	for i := range ids {
		keep[i] = true
		for _, b := range bases {
			if err := b.slots[i].err; err != nil {
				keep[i] = false
				why = append(why, err.Error())
				break
			}
		}
	}
	for _, t := range targets {
		t.corpora = nil
	}
	for _, b := range bases {
		c := workload.Corpus{Base: b.url}
		for i, s := range b.slots {
			if keep[i] {
				c.Images = append(c.Images, s.im)
			}
		}
		b.t.corpora = append(b.t.corpora, c)
	}
	if len(why) == len(ids) {
		if len(why) > 3 {
			why = append(why[:3], fmt.Sprintf("and %d more", len(why)-3))
		}
		return why, fmt.Errorf("no identifier is served by every target: %s", strings.Join(why, "; "))
	}
	return why, nil
}

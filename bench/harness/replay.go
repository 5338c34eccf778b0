package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/iiif-proxy/iiif-proxy/bench/harness/trace"
)

// ReplayConfig configures Replay.
type ReplayConfig struct {
	// Base is the IIIF base URL the trace's paths follow, e.g.
	// http://127.0.0.1:12415/iiif/3.
	Base string
	// Rate is the requests due per second, sent on schedule whatever the
	// server does (open loop), latency counted from the due time. Zero
	// sends as fast as the connections allow.
	Rate float64
	// Concurrency is the number of connections, the most requests in
	// flight. Zero means 1: the order of the trace is then the order the
	// server sees, as the simulator assumes.
	Concurrency int
	// Timeout bounds each request. Zero means 30 s.
	Timeout time.Duration
	// NoKeepAlive sends "Connection: close" with every request.
	NoKeepAlive bool
	// Progress, if set, gets a line every Every (zero means 5 s).
	Progress io.Writer
	Every    time.Duration
}

// Validate reports every bad field at once.
func (c ReplayConfig) Validate() error {
	var errs []error
	if c.Base == "" {
		errs = append(errs, errors.New("replay: no base URL"))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate %v: must be ≥ 0", c.Rate))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("connections %d: must be ≥ 1", c.Concurrency))
	}
	if c.Timeout < 0 || c.Every < 0 {
		errs = append(errs, errors.New("durations must be ≥ 0"))
	}
	return errors.Join(errs...)
}

// Replay sends every request of reqs to cfg.Base, in trace order, and
// returns what the server said to each, in the same order. A cancelled ctx
// stops it: the records returned are those of the requests sent, with
// ctx's error.
func Replay(ctx context.Context, cfg ReplayConfig, reqs []trace.Request) ([]trace.Record, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 1
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Every == 0 {
		cfg.Every = 5 * time.Second
	}
	base := strings.TrimRight(cfg.Base, "/") + "/"
	cl, err := newClient(base, cfg.Concurrency, !cfg.NoKeepAlive, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	recs := make([]trace.Record, len(reqs))
	type job struct {
		i   int
		due time.Time
	}
	jobs := make(chan job, 1024)
	var done, hits atomic.Int64
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for j := range jobs {
				q := reqs[j.i]
				r := trace.Record{Path: q.Path, Session: q.Session}
				if ctx.Err() != nil {
					r.Err = "cancelled"
				} else {
					res, err := cl.get(base+q.Path, req, resp)
					r.Latency = time.Since(j.due)
					if err != nil {
						r.Err = errKind(err)
					} else {
						r.Status, r.Cache, r.Tier, r.Bytes = res.status, res.cache, res.tier, int64(res.bytes)
						if trace.HitWords[r.Cache] {
							hits.Add(1)
						}
					}
				}
				recs[j.i] = r // each index written by one worker, read after wg.Wait
				done.Add(1)
			}
		})
	}
	start := time.Now()
	stopProgress := func() {}
	if cfg.Progress != nil {
		t := time.NewTicker(cfg.Every)
		quit := make(chan struct{})
		var pw sync.WaitGroup
		pw.Go(func() {
			for {
				select {
				case <-t.C:
					n := done.Load()
					fmt.Fprintf(cfg.Progress, "replay: %d/%d in %.0fs, %.1f%% hits so far\n", n, len(reqs),
						time.Since(start).Seconds(), 100*float64(hits.Load())/float64(max(n, 1)))
				case <-quit:
					return
				}
			}
		})
		stopProgress = func() { t.Stop(); close(quit); pw.Wait() }
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	sent := 0
	// Bounded by the trace's length.
	for i := range reqs {
		due := time.Now()
		if cfg.Rate > 0 {
			due = start.Add(time.Duration(float64(i) * float64(time.Second) / cfg.Rate))
			sleepUntil(ctx, due, timer)
		}
		if ctx.Err() != nil {
			break
		}
		jobs <- job{i, due}
		sent++
	}
	close(jobs)
	wg.Wait()
	stopProgress()
	return recs[:sent], ctx.Err()
}

package harness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"

	"github.com/iiif-proxy/iiif-proxy/bench/harness/workload"
)

// Config configures a run.
type Config struct {
	// Workload is what to send. Its Seed makes runs repeatable.
	Workload workload.Spec
	// Concurrency is the number of users in closed loop, of connections
	// (requests in flight) in open loop, and of clients per stampede round.
	// In open loop the schedule takes its requests from as many users'
	// streams in turn. Zero means 16.
	Concurrency int
	// Rate, if positive, selects the open loop: requests due per second,
	// per target. Zero means closed loop.
	Rate float64
	// Poisson spaces open-loop requests at random (exponential gaps) instead
	// of evenly.
	Poisson bool
	// Duration is the measured time per target. Zero means 10 s, unless
	// Requests is set.
	Duration time.Duration
	// Requests, if positive, ends the measurement after this many requests
	// per target instead of after Duration.
	Requests int64
	// Warmup runs before the measurement, per target, and is not recorded.
	// Zero means none.
	Warmup time.Duration
	// Slice is how long one target runs before the other takes over when
	// there are two. Zero means 1 s.
	Slice time.Duration
	// NoKeepAlive sends "Connection: close" with every request, so each
	// pays for a new connection.
	NoKeepAlive bool
	// Timeout bounds each request. Zero means 30 s.
	Timeout time.Duration
	// Rounds is the number of stampede rounds. Zero means 10.
	Rounds int
	// Progress reports while the run goes. Nil means silent.
	Progress *Progress
}

func (c Config) withDefaults() Config {
	c.Workload = c.Workload.WithDefaults()
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	if c.Duration == 0 && c.Requests <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Slice == 0 {
		c.Slice = time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Rounds == 0 {
		c.Rounds = 10
	}
	return c
}

// Validate reports every bad field at once.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if err := c.Workload.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency %d: must be ≥ 1", c.Concurrency))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate %v: must be ≥ 0", c.Rate))
	}
	if c.Duration < 0 || c.Warmup < 0 || c.Slice < 0 || c.Timeout < 0 {
		errs = append(errs, errors.New("durations must be ≥ 0"))
	}
	if c.Rounds < 1 {
		errs = append(errs, fmt.Errorf("rounds %d: must be ≥ 1", c.Rounds))
	}
	return errors.Join(errs...)
}

// Result is the outcome of one workload's run.
type Result struct {
	Workload    string
	Open        bool // open loop
	Rate        float64
	Concurrency int
	Warmup      time.Duration
	Targets     []TargetResult
	Stampede    []StampedeResult // the stampede workload only, one per target
}

// TargetResult is one target's measurements.
type TargetResult struct {
	Name  string
	Bases []string
	// Seconds is the measured time: the sum of the target's slices, each
	// from its start to its last response (in open loop at least the
	// schedule's length), so requests still in flight when a slice ends
	// count with the time they took, and a server that falls behind an
	// open-loop schedule shows the rate it really served.
	Seconds float64
	// Tiers holds Stats by tier; All sums them.
	Tiers []TierStats
	All   *Stats
	// DispatchLag (open loop only) is how late the harness handed requests
	// to its workers against the schedule: its own lag, not the server's.
	DispatchLag *hdrhistogram.Histogram
}

// Run sends cfg.Workload to the targets, which Discover must have filled,
// and measures. A cancelled ctx ends the run early with what was measured
// and ctx's error.
func Run(ctx context.Context, cfg Config, targets []*Target) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if len(targets) == 0 {
		return nil, errors.New("no targets")
	}
	for _, t := range targets {
		if len(t.corpora) == 0 {
			return nil, fmt.Errorf("target %s: run Discover first", t.Name)
		}
	}
	if cfg.Workload.Name == workload.Stampede {
		return runStampede(ctx, cfg, targets)
	}
	states := make([]*tstate, len(targets))
	for i, t := range targets {
		st, err := newTState(cfg, t)
		if err != nil {
			return nil, err
		}
		states[i] = st
	}
	stopProgress := cfg.Progress.start(cfg, states)
	defer stopProgress()
	if cfg.Warmup > 0 {
		for i, st := range states {
			st.phase(ctx, cfg, i, cfg.Warmup, false)
		}
	}
	slice := cfg.Slice
	if len(states) == 1 {
		slice = cfg.Duration
		if cfg.Requests > 0 {
			slice = 100 * 365 * 24 * time.Hour // until the count runs out
		}
	}
	// Every pass measures each target unfinished for at most a slice; a
	// target finishes on its duration or its request count, so the loop is
	// bounded by Duration/Slice passes, or by the count in count mode.
	for ctx.Err() == nil {
		busy := false
		for i, st := range states {
			if st.finished(cfg) || ctx.Err() != nil {
				continue
			}
			busy = true
			d := slice
			if cfg.Requests <= 0 {
				d = min(d, cfg.Duration-st.measured)
			}
			st.measured += st.phase(ctx, cfg, i, d, true)
		}
		if !busy {
			break
		}
	}
	res := &Result{Workload: cfg.Workload.Name, Open: cfg.Rate > 0, Rate: cfg.Rate,
		Concurrency: cfg.Concurrency, Warmup: cfg.Warmup}
	for _, st := range states {
		byTier, all := merge(st.recs, cfg.Rate > 0)
		res.Targets = append(res.Targets, TargetResult{Name: st.t.Name, Bases: st.t.Bases,
			Seconds: st.measured.Seconds(), Tiers: byTier, All: all, DispatchLag: st.lag})
	}
	return res, ctx.Err()
}

// tstate is one target during a run. Its generators and recorders outlive
// the slices, so each target continues its streams where it stopped.
type tstate struct {
	t         *Target
	clients   []*client            // per base
	gens      []workload.Generator // per user
	baseOf    []int                // user → base
	recs      []*recorder
	rng       *rand.Rand // open-loop gaps
	lag       *hdrhistogram.Histogram
	remaining atomic.Int64 // count mode: measured requests left
	measured  time.Duration
	live      live
}

// live counts for the progress line.
type live struct {
	requests, errors, bytes, non2xx atomic.Int64
}

func (l *live) add(res response, err error) {
	if err != nil {
		l.errors.Add(1)
		return
	}
	l.requests.Add(1)
	l.bytes.Add(int64(res.bytes))
	if res.status < 200 || res.status > 299 {
		l.non2xx.Add(1)
	}
}

// recorderShards bounds the histograms a target holds however many users.
const recorderShards = 8

func newTState(cfg Config, t *Target) (*tstate, error) {
	st := &tstate{t: t, rng: rand.New(rand.NewPCG(cfg.Workload.Seed, 1<<32))}
	for _, c := range t.corpora {
		cl, err := newClient(c.Base, cfg.Concurrency, !cfg.NoKeepAlive, cfg.Timeout)
		if err != nil {
			return nil, err
		}
		st.clients = append(st.clients, cl)
	}
	for u := range cfg.Concurrency {
		b := u % len(t.corpora)
		g, err := cfg.Workload.New(t.corpora[b], u)
		if err != nil {
			return nil, err
		}
		st.gens = append(st.gens, g)
		st.baseOf = append(st.baseOf, b)
	}
	for range min(cfg.Concurrency, recorderShards) {
		st.recs = append(st.recs, &recorder{open: cfg.Rate > 0})
	}
	if cfg.Rate > 0 {
		st.lag = NewHistogram()
	}
	st.remaining.Store(cfg.Requests)
	return st, nil
}

func (st *tstate) finished(cfg Config) bool {
	if cfg.Requests > 0 {
		return st.remaining.Load() <= 0
	}
	return st.measured >= cfg.Duration-time.Millisecond
}

// phase runs the target, number i, for d (or until its count is used up, when
// recording in count mode), then waits for requests in flight. It returns
// the measured time (see TargetResult.Seconds).
func (st *tstate) phase(ctx context.Context, cfg Config, i int, d time.Duration, rec bool) time.Duration {
	counted := rec && cfg.Requests > 0
	cfg.Progress.begin(i, rec)
	defer cfg.Progress.end()
	if cfg.Rate > 0 {
		return st.open(ctx, cfg, d, rec, counted)
	}
	return st.closed(ctx, cfg, d, rec, counted)
}

func (st *tstate) closed(ctx context.Context, cfg Config, d time.Duration, rec, counted bool) time.Duration {
	var stop atomic.Bool
	start := time.Now()
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()
	stopCtx := context.AfterFunc(ctx, func() { stop.Store(true) })
	defer stopCtx()
	var wg sync.WaitGroup
	for u := range st.gens {
		wg.Go(func() {
			g, cl, r := st.gens[u], st.clients[st.baseOf[u]], st.recs[u%len(st.recs)]
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			// Bounded by the timer, ctx, or the count.
			for !stop.Load() {
				if counted && st.remaining.Add(-1) < 0 {
					stop.Store(true)
					break
				}
				q := g.Next()
				t0 := time.Now()
				res, err := cl.get(q.URL, req, resp)
				t1 := time.Now()
				st.live.add(res, err)
				if rec {
					lat := t1.Sub(t0)
					r.observe(q.Tier, res, err, lat, lat)
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// job is one open-loop request and when it was due.
type job struct {
	q    workload.Request
	base int
	due  time.Time
}

func (st *tstate) open(ctx context.Context, cfg Config, d time.Duration, rec, counted bool) time.Duration {
	// The queue holds a second of requests; a longer backlog blocks the
	// dispatcher, which then sends late, still measuring from the due time.
	jobs := make(chan job, min(max(int(cfg.Rate), 1024), 1<<18))
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Go(func() {
			r := st.recs[w%len(st.recs)]
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for j := range jobs {
				if ctx.Err() != nil {
					continue // drain without sending
				}
				t0 := time.Now()
				res, err := st.clients[j.base].get(j.q.URL, req, resp)
				t1 := time.Now()
				st.live.add(res, err)
				if rec {
					r.observe(j.q.Tier, res, err, t1.Sub(j.due), t1.Sub(t0))
				}
			}
		})
	}
	gap := float64(time.Second) / cfg.Rate
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	due := start
	// Bounded: due advances by a positive gap each pass until end, and the
	// count (if any) runs out.
	for k := 1; due.Before(end) && ctx.Err() == nil; k++ {
		if counted && st.remaining.Add(-1) < 0 {
			break
		}
		sleepUntil(ctx, due, timer)
		if rec {
			record(st.lag, time.Since(due))
		}
		u := (k - 1) % len(st.gens)
		jobs <- job{q: st.gens[u].Next(), base: st.baseOf[u], due: due}
		if cfg.Poisson {
			due = due.Add(time.Duration(st.rng.ExpFloat64() * gap))
		} else {
			due = start.Add(time.Duration(float64(k) * gap))
		}
	}
	close(jobs)
	wg.Wait()
	if counted || ctx.Err() != nil {
		return time.Since(start)
	}
	// The schedule covered all of d, though its last request was due up to
	// a gap before the end.
	return max(time.Since(start), d)
}

// sleepUntil returns at t, or when ctx is done: on a timer for all but the
// last millisecond, then with shortSleep, whose precision is finer.
func sleepUntil(ctx context.Context, t time.Time, timer *time.Timer) {
	if wait := time.Until(t); wait > 2*time.Millisecond {
		timer.Reset(wait - time.Millisecond)
		select {
		case <-timer.C:
		case <-ctx.Done():
			return
		}
	}
	// Bounded: each pass sleeps until t, and only a signal wakes it early.
	for wait := time.Until(t); wait > 0 && ctx.Err() == nil; wait = time.Until(t) {
		if wait < shortSleepMin {
			// At high rates the process is busy and the scheduler checks
			// timers at every switch; a syscall would hold the only P.
			time.Sleep(wait)
			continue
		}
		shortSleep(wait)
	}
}

// shortSleepMin is the shortest wait worth a shortSleep.
const shortSleepMin = 200 * time.Microsecond

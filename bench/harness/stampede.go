package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"

	"github.com/iiif-proxy/iiif-proxy/bench/harness/workload"
)

// StampedeResult is one target's stampede: Rounds rounds in which Clients
// clients sent the same fresh URL at the same instant.
type StampedeResult struct {
	Target  string
	Clients int
	Rounds  []StampedeRound
	// Leaders holds each round's leader latency, Followers everyone else's,
	// both from the barrier's release. The leader is the fastest response
	// whose X-Cache says the origin made it (MISS), else the fastest.
	Leaders, Followers *hdrhistogram.Histogram
}

// StampedeRound is one round at one target. Durations are in nanoseconds in
// JSON.
type StampedeRound struct {
	URL string `json:"url"`
	// Renders counts responses whose X-Cache says MISS, EXPIRED or BYPASS:
	// what the origin made for this round. Meaningful when CacheHeader.
	Renders     int64 `json:"renders"`
	CacheHeader bool  `json:"cacheHeader"`
	// MetricRenders is the rise of RenderMetrics at the target's metrics
	// endpoint over the round, or -1 without one (or when it failed).
	MetricRenders float64 `json:"metricRenders"`
	// SendSpread is the time from the first client's send to the last's,
	// at the client: how well the barrier held.
	SendSpread time.Duration `json:"sendSpreadNs"`
	// Leader is the leader's latency; FollowerP50 and FollowerMax the
	// followers', all from the release.
	Leader      time.Duration    `json:"leaderNs"`
	FollowerP50 time.Duration    `json:"followerP50Ns"`
	FollowerMax time.Duration    `json:"followerMaxNs"`
	Status      map[int]int64    `json:"status"`
	Cache       map[string]int64 `json:"cache"`
	Errors      int64            `json:"errors"`
}

// stampeder is one target's clients: one client, so one connection, per
// stampede user per base.
type stampeder struct {
	t       *Target
	clients [][]*client // [base][user]
	rec     *recorder
	res     *StampedeResult
}

func runStampede(ctx context.Context, cfg Config, targets []*Target) (*Result, error) {
	n := cfg.Concurrency
	var ss []*stampeder
	for _, t := range targets {
		s := &stampeder{t: t, rec: &recorder{},
			res: &StampedeResult{Target: t.Name, Clients: n, Leaders: NewHistogram(), Followers: NewHistogram()}}
		for _, c := range t.corpora {
			var cs []*client
			for range n {
				cl, err := newClient(c.Base, 1, !cfg.NoKeepAlive, cfg.Timeout)
				if err != nil {
					return nil, err
				}
				cs = append(cs, cl)
			}
			s.clients = append(s.clients, cs)
		}
		if err := s.connect(ctx); err != nil {
			return nil, err
		}
		ss = append(ss, s)
	}
	// Fresh spots every run: the seed is mixed with the clock, so a second
	// run does not find the first one's renders in the cache.
	rng := rand.New(rand.NewPCG(cfg.Workload.Seed, uint64(time.Now().UnixNano())))
	used := map[workload.Spot]bool{}
	images := len(targets[0].corpora[0].Images)
	for r := 0; r < cfg.Rounds && ctx.Err() == nil; r++ {
		spot := workload.NewSpot(rng, images)
		for i := 0; used[spot] && i < 100; i++ {
			spot = workload.NewSpot(rng, images)
		}
		used[spot] = true
		for _, s := range ss {
			if ctx.Err() != nil {
				break
			}
			rd := s.round(ctx, r, spot)
			s.res.Rounds = append(s.res.Rounds, rd)
			cfg.Progress.Status("%s stampede round %d/%d: %d clients, %s, followers p50 %v max %v, send spread %v",
				s.t.Name, r+1, cfg.Rounds, n, rendersText(rd), rd.FollowerP50.Round(time.Microsecond),
				rd.FollowerMax.Round(time.Microsecond), rd.SendSpread.Round(time.Microsecond))
		}
	}
	res := &Result{Workload: workload.Stampede, Concurrency: n}
	for _, s := range ss {
		byTier, all := merge([]*recorder{s.rec}, false)
		res.Targets = append(res.Targets, TargetResult{Name: s.t.Name, Bases: s.t.Bases, Seconds: s.roundTime(),
			Tiers: byTier, All: all})
		res.Stampede = append(res.Stampede, *s.res)
	}
	return res, ctx.Err()
}

// roundTime sums the rounds' durations, from release to the last response.
func (s *stampeder) roundTime() float64 {
	var t time.Duration
	for _, rd := range s.res.Rounds {
		t += max(rd.Leader, rd.FollowerMax)
	}
	return t.Seconds()
}

func rendersText(rd StampedeRound) string {
	var s string
	if rd.CacheHeader {
		s = fmt.Sprintf("%d render(s) by X-Cache", rd.Renders)
	} else {
		s = "no X-Cache"
	}
	if rd.MetricRenders >= 0 {
		s += fmt.Sprintf(", %.0f by metrics", rd.MetricRenders)
	}
	return s
}

// connect opens every client's connection with an info.json request, so the
// rounds measure requests, not handshakes.
func (s *stampeder) connect(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(s.clients)*len(s.clients[0]))
	for b, cs := range s.clients {
		u := s.t.corpora[b].InfoURL(0).URL
		for i, cl := range cs {
			wg.Go(func() {
				if ctx.Err() != nil {
					return
				}
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				if _, err := cl.get(u, req, resp); err != nil {
					errs[b*len(cs)+i] = fmt.Errorf("target %s: connecting stampede client: %w", s.t.Name, err)
				}
			})
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// round runs one round: every client waits at the barrier, then all send.
func (s *stampeder) round(ctx context.Context, r int, spot workload.Spot) StampedeRound {
	b := r % len(s.clients)
	q := s.t.corpora[b].StampedeURL(spot)
	rd := StampedeRound{URL: q.URL, MetricRenders: -1, Status: map[int]int64{}, Cache: map[string]int64{}}
	var before float64
	var berr error
	if s.t.Metrics != "" {
		before, berr = scrapeSum(ctx, s.t.Metrics, RenderMetrics)
	}
	cs := s.clients[b]
	n := len(cs)
	sent := make([]time.Time, n)
	lat := make([]time.Duration, n)
	res := make([]response, n)
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	release := make(chan struct{})
	var t0 time.Time // written before release is closed, read after
	for i, cl := range cs {
		ready.Add(1)
		done.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			ready.Done()
			<-release
			sent[i] = time.Now()
			res[i], errs[i] = cl.get(q.URL, req, resp)
			lat[i] = time.Since(t0)
		})
	}
	ready.Wait()
	t0 = time.Now()
	close(release)
	done.Wait()
	if s.t.Metrics != "" && berr == nil {
		if after, err := scrapeSum(ctx, s.t.Metrics, RenderMetrics); err == nil {
			rd.MetricRenders = after - before
		}
	}
	first, last := sent[0], sent[0]
	leader := -1
	for i := range n {
		first, last = minTime(first, sent[i]), maxTime(last, sent[i])
		s.rec.observe(q.Tier, res[i], errs[i], lat[i], lat[i])
		if errs[i] != nil {
			rd.Errors++
			continue
		}
		rd.Status[res[i].status]++
		if w := res[i].cache; w != "" {
			rd.CacheHeader = true
			rd.Cache[w]++
			if renderWords[w] {
				rd.Renders++
				if leader < 0 || lat[i] < lat[leader] {
					leader = i
				}
			}
		}
	}
	rd.SendSpread = last.Sub(first)
	if leader < 0 { // no MISS: the fastest answered response leads
		for i := range n {
			if errs[i] == nil && (leader < 0 || lat[i] < lat[leader]) {
				leader = i
			}
		}
	}
	var follow []time.Duration
	for i := range n {
		if errs[i] != nil {
			continue
		}
		if i == leader {
			rd.Leader = lat[i]
			record(s.res.Leaders, lat[i])
			continue
		}
		follow = append(follow, lat[i])
		record(s.res.Followers, lat[i])
	}
	if len(follow) > 0 {
		slices.Sort(follow)
		rd.FollowerP50, rd.FollowerMax = follow[(len(follow)-1)/2], follow[len(follow)-1]
	}
	return rd
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

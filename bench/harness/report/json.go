package report

import (
	"encoding/json"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/iiif-proxy/iiif-proxy/bench/harness"
)

// Document is the JSON form of a session: every workload's results.
type Document struct {
	Tool    string    `json:"tool"`
	Started time.Time `json:"started"`
	Args    []string  `json:"args"`
	Runs    []Run     `json:"runs"`
}

// Run is one workload's results.
type Run struct {
	Workload      string     `json:"workload"`
	Model         string     `json:"model"` // "closed", "open" or "barrier"
	Rate          float64    `json:"rate,omitempty"`
	Concurrency   int        `json:"concurrency"`
	WarmupSeconds float64    `json:"warmupSeconds"`
	Targets       []Target   `json:"targets"`
	Ratios        []Ratio    `json:"ratios,omitempty"`
	Stampede      []Stampede `json:"stampede,omitempty"`
}

// Target is one target's results; Tiers ends with "all".
type Target struct {
	Name          string   `json:"name"`
	Bases         []string `json:"bases"`
	Seconds       float64  `json:"seconds"`
	Tiers         []Stats  `json:"tiers"`
	DispatchLagMs *Latency `json:"dispatchLagMs,omitempty"`
}

// Stats are one tier's figures.
type Stats struct {
	Tier           string           `json:"tier"`
	Requests       int64            `json:"requests"`
	Errors         int64            `json:"errors"`
	ErrorKinds     map[string]int64 `json:"errorKinds,omitempty"`
	Bytes          int64            `json:"bytes"`
	RequestsPerSec float64          `json:"requestsPerSec"`
	BytesPerSec    float64          `json:"bytesPerSec"`
	LatencyMs      Latency          `json:"latencyMs"`
	ServiceMs      *Latency         `json:"serviceMs,omitempty"`
	Status         map[string]int64 `json:"status"`
	Cache          map[string]int64 `json:"cache,omitempty"`
	HitRatio       *float64         `json:"hitRatio,omitempty"`
	// Percentiles is the latency curve: [percentile, ms] pairs evenly spaced
	// on the nines scale, as the plot draws it.
	Percentiles [][2]float64 `json:"percentiles"`
}

// Latency summarises a histogram in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Ratio is a later target's figures over the first's, for one tier.
type Ratio struct {
	Tier           string  `json:"tier"`
	Of             string  `json:"of"` // "B/A"
	RequestsPerSec float64 `json:"requestsPerSec"`
	BytesPerSec    float64 `json:"bytesPerSec"`
	P50            float64 `json:"p50"`
	P90            float64 `json:"p90"`
	P99            float64 `json:"p99"`
	P999           float64 `json:"p99.9"`
	Max            float64 `json:"max"`
}

// Stampede is one target's stampede.
type Stampede struct {
	Target      string                  `json:"target"`
	Clients     int                     `json:"clients"`
	LeaderMs    Latency                 `json:"leaderMs"`
	FollowersMs Latency                 `json:"followersMs"`
	Rounds      []harness.StampedeRound `json:"rounds"`
}

// JSON writes the results of a session.
func JSON(w io.Writer, started time.Time, args []string, results []*harness.Result) error {
	doc := Document{Tool: "iiif-bench", Started: started, Args: args, Runs: []Run{}}
	for _, r := range results {
		doc.Runs = append(doc.Runs, toRun(r))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func toRun(r *harness.Result) Run {
	run := Run{Workload: r.Workload, Model: "closed", Concurrency: r.Concurrency, WarmupSeconds: r.Warmup.Seconds()}
	switch {
	case r.Workload == "stampede":
		run.Model, run.WarmupSeconds = "barrier", 0
	case r.Open:
		run.Model, run.Rate = "open", r.Rate
	}
	for _, t := range r.Targets {
		jt := Target{Name: t.Name, Bases: t.Bases, Seconds: t.Seconds}
		for _, ts := range t.Tiers {
			jt.Tiers = append(jt.Tiers, toStats(ts.Tier, ts.Stats, t.Seconds))
		}
		jt.Tiers = append(jt.Tiers, toStats("all", t.All, t.Seconds))
		if t.DispatchLag != nil {
			l := toLatency(t.DispatchLag)
			jt.DispatchLagMs = &l
		}
		run.Targets = append(run.Targets, jt)
	}
	names := tierNames(r)
	if !slices.Contains(names, "all") {
		names = append(names, "all")
	}
	for _, t := range r.Targets[1:] {
		for _, tier := range names {
			a, b := rowStats(r.Targets[0], tier), rowStats(t, tier)
			if a == nil || b == nil {
				continue
			}
			ma, mb := metrics(r.Targets[0], a), metrics(t, b)
			q := func(i int) float64 {
				if ma[i] == 0 {
					return 0
				}
				return round3(mb[i] / ma[i])
			}
			run.Ratios = append(run.Ratios, Ratio{Tier: tier, Of: t.Name + "/" + r.Targets[0].Name,
				RequestsPerSec: q(0), BytesPerSec: q(1), P50: q(2), P90: q(3), P99: q(4), P999: q(5), Max: q(6)})
		}
	}
	for _, s := range r.Stampede {
		run.Stampede = append(run.Stampede, Stampede{Target: s.Target, Clients: s.Clients,
			LeaderMs: toLatency(s.Leaders), FollowersMs: toLatency(s.Followers), Rounds: s.Rounds})
	}
	return run
}

func toStats(tier string, s *harness.Stats, secs float64) Stats {
	js := Stats{Tier: tier, Requests: s.Requests, Errors: s.Errors, Bytes: s.Bytes,
		RequestsPerSec: round3(perSec(float64(s.Requests), secs)), BytesPerSec: math.Round(perSec(float64(s.Bytes), secs)),
		LatencyMs: toLatency(s.Latency), Status: map[string]int64{}, Cache: s.Cache, Percentiles: curve(s.Latency)}
	if len(s.ErrorKinds) > 0 {
		js.ErrorKinds = s.ErrorKinds
	}
	if len(s.Cache) == 0 {
		js.Cache = nil
	}
	for c, n := range s.Status {
		js.Status[strconv.Itoa(c)] = n
	}
	if s.Service != nil {
		l := toLatency(s.Service)
		js.ServiceMs = &l
	}
	if r, ok := s.HitRatio(); ok {
		r = round3(r)
		js.HitRatio = &r
	}
	return js
}

func toLatency(h *hdrhistogram.Histogram) Latency {
	l := latencies(h)
	return Latency{P50: ms(l[0]), P90: ms(l[1]), P99: ms(l[2]), P999: ms(l[3]), Max: ms(l[4]), Mean: ms(int64(h.Mean()))}
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// curve is h's percentile curve as [percentile, ms] pairs (see nines).
func curve(h *hdrhistogram.Histogram) [][2]float64 {
	var pts [][2]float64
	pts0 := nines(h)
	for i, p := range pts0 {
		pct := 100 * (1 - math.Pow(10, -p.x))
		if i == len(pts0)-1 {
			pct = 100 // the maximum
		}
		pts = append(pts, [2]float64{math.Round(pct*1e6) / 1e6, ms(p.ns)})
	}
	return pts
}

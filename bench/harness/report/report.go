// Package report presents harness results: a text table per workload and
// tier (with B/A ratios when two targets ran), a JSON document for
// machines, and an SVG percentile plot (latency against a "nines" axis, as
// HdrHistogram's plotter draws it), one line per target.
package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/iiif-proxy/iiif-proxy/bench/harness"
)

// Latency percentiles in tables and JSON.
var percentiles = []float64{50, 90, 99, 99.9}

// Table writes r as text: a header line saying how it was measured, then a
// row per tier and target, then for each later target a row of its ratios
// to the first (B/A); stampede results get their own rounds table.
func Table(w io.Writer, r *harness.Result) {
	fmt.Fprintln(w, header(r))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tier\ttarget\trequests\treq/s\tMB/s\tp50\tp90\tp99\tp99.9\tmax\thit\terrors\t status")
	for _, tier := range tierNames(r) {
		first := rowStats(r.Targets[0], tier)
		for i, t := range r.Targets {
			s := rowStats(t, tier)
			if s == nil {
				fmt.Fprintf(tw, "%s\t%s\t0\t\t\t\t\t\t\t\t\t\t \n", tier, t.Name)
				continue
			}
			lat := latencies(s.Latency)
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t %s\n", tier, t.Name, s.Requests,
				perSec(float64(s.Requests), t.Seconds), perSec(float64(s.Bytes), t.Seconds)/1e6,
				dur(lat[0]), dur(lat[1]), dur(lat[2]), dur(lat[3]), dur(lat[4]), hit(s), s.Errors, statuses(s))
			if i > 0 && first != nil {
				a, b := metrics(r.Targets[0], first), metrics(t, s)
				fmt.Fprintf(tw, "%s\t%s/%s\t\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\t\t \n", tier, t.Name, r.Targets[0].Name,
					ratio(b[0], a[0]), ratio(b[1], a[1]), ratio(b[2], a[2]), ratio(b[3], a[3]), ratio(b[4], a[4]),
					ratio(b[5], a[5]), ratio(b[6], a[6]))
			}
		}
	}
	tw.Flush()
	for _, t := range r.Targets {
		if t.All.Errors > 0 {
			fmt.Fprintf(w, "%s errors: %s\n", t.Name, kinds(t.All.ErrorKinds))
		}
		if r.Open {
			if achieved := perSec(float64(t.All.Requests+t.All.Errors), t.Seconds); achieved < 0.95*r.Rate {
				fmt.Fprintf(w, "%s: sent %.0f req/s of the %.0f scheduled\n", t.Name, achieved, r.Rate)
			}
			if l := t.DispatchLag; l != nil && l.TotalCount() > 0 {
				fmt.Fprintf(w, "%s: harness dispatch lag p99 %s, max %s (included in latency; large values mean the harness, not the server, was slow)\n",
					t.Name, dur(l.ValueAtQuantile(99)), dur(l.Max()))
			}
		}
	}
	if len(r.Stampede) > 0 {
		stampedeTable(w, r)
	}
}

func header(r *harness.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "== %s", r.Workload)
	switch {
	case r.Workload == "stampede":
		fmt.Fprintf(&b, " · %d clients at a barrier per round, latency from the release", r.Concurrency)
	case r.Open:
		fmt.Fprintf(&b, " · open loop, %.0f req/s per target, %d connections; latency from the scheduled send time",
			r.Rate, r.Concurrency)
	default:
		fmt.Fprintf(&b, " · closed loop, %d users", r.Concurrency)
	}
	var secs []string
	for _, t := range r.Targets {
		secs = append(secs, fmt.Sprintf("%s %.1fs", t.Name, t.Seconds))
	}
	fmt.Fprintf(&b, " · measured %s", strings.Join(secs, ", "))
	if r.Warmup > 0 && r.Workload != "stampede" {
		fmt.Fprintf(&b, " after %v warm-up", r.Warmup)
	}
	return b.String()
}

// tierNames lists the tiers any target has, in the first target's order,
// then "all" when there is more than one tier.
func tierNames(r *harness.Result) []string {
	var names []string
	for _, t := range r.Targets {
		for _, ts := range t.Tiers {
			if !slices.Contains(names, ts.Tier) {
				names = append(names, ts.Tier)
			}
		}
	}
	if len(names) != 1 {
		names = append(names, "all")
	}
	return names
}

func rowStats(t harness.TargetResult, tier string) *harness.Stats {
	if tier == "all" {
		return t.All
	}
	for _, ts := range t.Tiers {
		if ts.Tier == tier {
			return ts.Stats
		}
	}
	return nil
}

// latencies returns p50, p90, p99, p99.9 and max in nanoseconds.
func latencies(h *hdrhistogram.Histogram) [5]int64 {
	var l [5]int64
	if h.TotalCount() == 0 {
		return l
	}
	for i, p := range percentiles {
		l[i] = h.ValueAtQuantile(p)
	}
	l[4] = h.Max()
	return l
}

// metrics are the compared figures: req/s, B/s, p50, p90, p99, p99.9, max.
func metrics(t harness.TargetResult, s *harness.Stats) [7]float64 {
	l := latencies(s.Latency)
	return [7]float64{perSec(float64(s.Requests), t.Seconds), perSec(float64(s.Bytes), t.Seconds),
		float64(l[0]), float64(l[1]), float64(l[2]), float64(l[3]), float64(l[4])}
}

func perSec(n, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return n / secs
}

func ratio(b, a float64) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return strconv.FormatFloat(b/a, 'f', 2, 64) + "×"
}

// dur formats nanoseconds with three significant digits or so.
func dur(ns int64) string {
	d := float64(ns)
	switch {
	case ns == 0:
		return "-"
	case d < 1e6:
		return fmt.Sprintf("%.0fµs", d/1e3)
	case d < 1e7:
		return fmt.Sprintf("%.2fms", d/1e6)
	case d < 1e8:
		return fmt.Sprintf("%.1fms", d/1e6)
	case d < 1e9:
		return fmt.Sprintf("%.0fms", d/1e6)
	}
	return fmt.Sprintf("%.2fs", d/1e9)
}

func hit(s *harness.Stats) string {
	r, ok := s.HitRatio()
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*r)
}

func statuses(s *harness.Stats) string {
	codes := make([]int, 0, len(s.Status))
	for c := range s.Status {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var b []string
	for _, c := range codes {
		b = append(b, fmt.Sprintf("%d:%d", c, s.Status[c]))
	}
	return strings.Join(b, " ")
}

func kinds[K comparable](m map[K]int64) string {
	var b []string
	for k, v := range m {
		b = append(b, fmt.Sprintf("%v:%d", k, v))
	}
	slices.Sort(b)
	return strings.Join(b, " ")
}

func stampedeTable(w io.Writer, r *harness.Result) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "stampede rounds (renders: responses whose X-Cache says MISS; metrics: rise of "+
		strings.Join(harness.RenderMetrics, " + ")+")")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tround\trenders\tmetrics\tleader\tfollowers p50\tp99\tmax\tsend spread\t X-Cache\t status")
	for _, s := range r.Stampede {
		var renders, multi int64
		var metric float64
		metricOK, header := true, false
		for i, rd := range s.Rounds {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\t%s\t%s\t %s\t %s\n", s.Target, i+1, rendersCell(rd),
				metricCell(rd.MetricRenders), dur(int64(rd.Leader)), dur(int64(rd.FollowerP50)), dur(int64(rd.FollowerMax)),
				dur(int64(rd.SendSpread)), kinds(rd.Cache), kinds(rd.Status))
			renders += rd.Renders
			if rd.Renders > 1 {
				multi++
			}
			header = header || rd.CacheHeader
			metricOK = metricOK && rd.MetricRenders >= 0
			metric += rd.MetricRenders
		}
		n := len(s.Rounds)
		rc, mc := "-", "-"
		if header {
			rc = fmt.Sprintf("%.2f/round", float64(renders)/float64(max(n, 1)))
			if multi > 0 {
				rc += fmt.Sprintf(" (%d rounds >1)", multi)
			}
		}
		if metricOK && n > 0 {
			mc = fmt.Sprintf("%.2f/round", metric/float64(n))
		}
		f := s.Followers
		fmt.Fprintf(tw, "%s\tall %d\t%s\t%s\t%s\t%s\t%s\t%s\t\t \t \n", s.Target, n, rc, mc,
			dur(s.Leaders.ValueAtQuantile(50)), dur(f.ValueAtQuantile(50)), dur(f.ValueAtQuantile(99)), dur(f.Max()))
	}
	if len(r.Stampede) > 1 {
		a := r.Stampede[0]
		for _, b := range r.Stampede[1:] {
			fmt.Fprintf(tw, "%s/%s\tall\t\t\t%s\t%s\t%s\t%s\t\t \t \n", b.Target, a.Target,
				ratio(float64(b.Leaders.ValueAtQuantile(50)), float64(a.Leaders.ValueAtQuantile(50))),
				ratio(float64(b.Followers.ValueAtQuantile(50)), float64(a.Followers.ValueAtQuantile(50))),
				ratio(float64(b.Followers.ValueAtQuantile(99)), float64(a.Followers.ValueAtQuantile(99))),
				ratio(float64(b.Followers.Max()), float64(a.Followers.Max())))
		}
	}
	tw.Flush()
}

func rendersCell(rd harness.StampedeRound) string {
	if !rd.CacheHeader {
		return "-"
	}
	return strconv.FormatInt(rd.Renders, 10)
}

func metricCell(v float64) string {
	if v < 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// ms converts nanoseconds to milliseconds for JSON.
func ms(ns int64) float64 { return math.Round(float64(ns)/1e3) / 1e3 }

package report

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/iiif-proxy/iiif-proxy/bench/harness"
)

// Plot geometry, in SVG user units.
const (
	plotW                  = 900
	left, right, top, base = 80, 870, 50, 450
	legendLine             = 18 // the legend sits under the axes, a line per series
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

type series struct {
	label string
	pts   [][2]float64 // (nines, ms)
}

// Plot writes an SVG percentile curve of every target in results: latency
// (linear, ms) against the percentile on a nines axis (0%, 90%, 99%,
// 99.9%, …, each the same width), one line per target, and per workload
// when several ran. A curve stops where its sample count stops resolving
// percentiles (log10 of the count).
func Plot(w io.Writer, results []*harness.Result) error {
	var ss []series
	for _, r := range results {
		for _, t := range r.Targets {
			h := t.All.Latency
			if h.TotalCount() == 0 {
				continue
			}
			label := t.Name
			if len(t.Bases) > 0 {
				label += " " + t.Bases[0]
			}
			if len(results) > 1 {
				label = r.Workload + " · " + label
			}
			s := series{label: label}
			for _, pt := range nines(h) {
				s.pts = append(s.pts, [2]float64{pt.x, float64(pt.ns) / 1e6})
			}
			ss = append(ss, s)
		}
	}
	xmax, ymax := 1.0, 0.0
	for _, s := range ss {
		for _, p := range s.pts {
			xmax, ymax = math.Max(xmax, math.Ceil(p[0])), math.Max(ymax, p[1])
		}
	}
	ytop, ystep := niceScale(ymax)
	sx := func(x float64) float64 { return left + (right-left)*x/xmax }
	sy := func(y float64) float64 { return base - (base-top)*y/ytop }

	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	plotH := base + 70 + legendLine*len(ss)
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		plotW, plotH, plotW, plotH)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%d" y="28" font-size="16">Latency by percentile</text>`+"\n", left)
	// Grid and axes.
	for i := 0; float64(i) <= xmax; i++ {
		x := sx(float64(i))
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, top, x, base)
		p(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, base+18, ninesLabel(i))
	}
	for y := 0.0; y <= ytop+ystep/2; y += ystep {
		p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, sy(y), right, sy(y))
		p(`<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, sy(y)+4, msLabel(y))
	}
	p(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", left, top, right-left, base-top)
	p(`<text x="%d" y="%d" text-anchor="middle">percentile</text>`+"\n", (left+right)/2, base+40)
	p(`<text x="18" y="%d" transform="rotate(-90 18 %d)" text-anchor="middle">latency (ms)</text>`+"\n",
		(top+base)/2, (top+base)/2)
	for i, s := range ss {
		c := palette[i%len(palette)]
		p(`<polyline fill="none" stroke="%s" stroke-width="2" points="`, c)
		for j, pt := range s.pts {
			if j > 0 {
				p(" ")
			}
			p("%.1f,%.1f", sx(pt[0]), sy(math.Min(pt[1], ytop)))
		}
		p(`"/>` + "\n")
		ly := base + 66 + legendLine*i
		p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", left, ly-4, left+24, ly-4, c)
		p(`<text x="%d" y="%d">%s</text>`+"\n", left+30, ly, html.EscapeString(s.label))
	}
	if len(ss) == 0 {
		p(`<text x="%d" y="%d" text-anchor="middle">no responses</text>`+"\n", (left+right)/2, (top+base)/2)
	}
	p("</svg>\n")
	return bw.Flush()
}

// niceScale returns an axis top at or above v and a step that divides it
// into about five: 1, 2, 2.5 or 5 times a power of ten.
func niceScale(v float64) (top, step float64) {
	if v <= 0 {
		return 1, 0.2
	}
	raw := v / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, f := range []float64{1, 2, 2.5, 5, 10} {
		if step = f * mag; step >= raw {
			break
		}
	}
	return math.Ceil(v/step-1e-9) * step, step
}

// ninesLabel names the percentile n nines in: 0%, 90%, 99%, 99.9%, ….
func ninesLabel(n int) string {
	switch n {
	case 0:
		return "0%"
	case 1:
		return "90%"
	}
	s := "99."
	for range n - 2 {
		s += "9"
	}
	if n == 2 {
		s = "99"
	}
	return s + "%"
}

func msLabel(y float64) string {
	if y == math.Trunc(y) {
		return fmt.Sprintf("%.0f", y)
	}
	return fmt.Sprintf("%g", math.Round(y*1000)/1000)
}

// point is a point of a percentile curve: x nines (percentile
// 100·(1 − 10^−x)), latency ns.
type point struct {
	x  float64
	ns int64
}

// nines samples h's percentile curve every 1/20 of a nine from 0 up to where
// the sample count stops resolving (log10 of the count, at most 6 nines),
// ending with the maximum there.
func nines(h *hdrhistogram.Histogram) []point {
	n := h.TotalCount()
	if n == 0 {
		return nil
	}
	topN := math.Min(math.Log10(float64(n)), 6)
	var pts []point
	for i := 0; float64(i)/20 <= topN; i++ {
		x := float64(i) / 20
		pts = append(pts, point{x, h.ValueAtQuantile(100 * (1 - math.Pow(10, -x)))})
	}
	return append(pts, point{topN, h.Max()})
}

// Command soakplot draws the CSV that bench/soak.sh writes as an SVG: one
// panel per column, each against the first column (seconds), so RSS,
// goroutines, open files and disk per tier can be read over a long run.
//
//	soakplot [-title T] soak.csv > soak.svg
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"strconv"
)

// Panel geometry in SVG user units.
const (
	width   = 900
	panelH  = 120
	gap     = 40
	marginL = 90
	marginR = 20
	titleH  = 40
)

func main() {
	title := flag.String("title", "soak", "plot title")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: soakplot [-title T] soak.csv > soak.svg")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "soakplot:", err)
		os.Exit(1)
	}
	defer f.Close()
	names, cols, err := read(f)
	if err == nil {
		err = plot(os.Stdout, *title, names, cols)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soakplot:", err)
		os.Exit(1)
	}
}

// read returns the header and the columns of a CSV of numbers; an empty or
// malformed cell is NaN (a sample that could not be taken).
func read(r io.Reader) ([]string, [][]float64, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, nil, err
	}
	if len(rows) < 2 || len(rows[0]) < 2 {
		return nil, nil, errors.New("need a header and at least one row of two columns or more")
	}
	names := rows[0]
	cols := make([][]float64, len(names))
	for _, row := range rows[1:] {
		for i := range names {
			v := math.NaN()
			if i < len(row) {
				if x, err := strconv.ParseFloat(row[i], 64); err == nil {
					v = x
				}
			}
			cols[i] = append(cols[i], v)
		}
	}
	return names, cols, nil
}

func plot(w io.Writer, title string, names []string, cols [][]float64) error {
	n := len(names) - 1
	height := titleH + n*(panelH+gap)
	xs := cols[0]
	xmax := 0.0
	for _, x := range xs {
		if !math.IsNaN(x) {
			xmax = math.Max(xmax, x)
		}
	}
	if xmax == 0 {
		xmax = 1
	}
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/><text x="%d" y="24" font-size="16">%s</text>`+"\n", marginL, html.EscapeString(title))
	for i := 1; i <= n; i++ {
		top := float64(titleH + (i-1)*(panelH+gap))
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range cols[i] {
			if !math.IsNaN(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
		if math.IsInf(lo, 1) {
			lo, hi = 0, 1
		}
		lo = math.Min(lo, 0)
		if hi <= lo {
			hi = lo + 1
		}
		px := func(x float64) float64 { return marginL + x/xmax*float64(width-marginL-marginR) }
		py := func(v float64) float64 { return top + panelH - (v-lo)/(hi-lo)*panelH }
		fmt.Fprintf(w, `<rect x="%d" y="%.0f" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", marginL, top, width-marginL-marginR, panelH)
		fmt.Fprintf(w, `<text x="%d" y="%.0f" text-anchor="end">%s</text><text x="%d" y="%.0f" text-anchor="end">%s</text>`+"\n",
			marginL-6, top+10, fmtNum(hi), marginL-6, top+panelH, fmtNum(lo))
		fmt.Fprintf(w, `<text x="%d" y="%.0f" font-weight="bold">%s</text>`+"\n", marginL+6, top-6, html.EscapeString(names[i]))
		fmt.Fprintf(w, `<text x="%d" y="%.0f" text-anchor="end">%s min</text>`+"\n", width-marginR, top+panelH+14, fmtNum(xmax/60))
		fmt.Fprint(w, `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="`)
		for j, v := range cols[i] {
			if j < len(xs) && !math.IsNaN(v) && !math.IsNaN(xs[j]) {
				fmt.Fprintf(w, "%.1f,%.1f ", px(xs[j]), py(v))
			}
		}
		fmt.Fprintln(w, `"/>`)
	}
	_, err := fmt.Fprintln(w, "</svg>")
	return err
}

func fmtNum(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e9 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/bench/harness"
)

// stats returns n responses of 200 bytes each, nine in ten taking fast and
// the tenth slow, all X-Cache HIT.
func stats(n int64, fast, slow time.Duration) *harness.Stats {
	s := &harness.Stats{Requests: n, Bytes: 200 * n, Status: map[int]int64{200: n},
		Cache: map[string]int64{"HIT": n}, Latency: harness.NewHistogram()}
	for i := range n {
		d := fast
		if i%10 == 9 {
			d = slow
		}
		s.Latency.RecordValue(int64(d))
	}
	return s
}

func result() *harness.Result {
	a, b := stats(1000, 2*time.Millisecond, 20*time.Millisecond), stats(2000, 4*time.Millisecond, 40*time.Millisecond)
	return &harness.Result{Workload: "info", Concurrency: 4, Warmup: time.Second, Targets: []harness.TargetResult{
		{Name: "A", Bases: []string{"http://a/iiif/3"}, Seconds: 10, Tiers: []harness.TierStats{{Tier: "info", Stats: a}}, All: a},
		{Name: "B", Bases: []string{"http://b/iiif/3"}, Seconds: 10, Tiers: []harness.TierStats{{Tier: "info", Stats: b}}, All: b},
	}}
}

func TestTable(t *testing.T) {
	var buf bytes.Buffer
	Table(&buf, result())
	out := buf.String()
	t.Log("\n" + out)
	for _, want := range []string{
		"== info · closed loop, 4 users · measured A 10.0s, B 10.0s after 1s warm-up",
		"100.0", "200.0", // req/s
		"2.00ms", "20.0ms", "4.00ms", "40.0ms", // p50 and p99 of each
		"100.0%", "200:1000", "200:2000",
		"B/A", "2.00×", // every ratio is 2
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if strings.Contains(out, "all") {
		t.Error("an 'all' row for a single tier")
	}
}

func TestJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := JSON(&buf, time.Unix(0, 0), []string{"-workload", "info"}, []*harness.Result{result()}); err != nil {
		t.Fatal(err)
	}
	var doc Document
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	r := doc.Runs[0]
	if r.Model != "closed" || len(r.Targets) != 2 || len(r.Targets[0].Tiers) != 2 || r.Targets[0].Tiers[1].Tier != "all" {
		t.Fatalf("run %+v", r)
	}
	info := r.Targets[0].Tiers[0]
	if info.RequestsPerSec != 100 || info.LatencyMs.P50 < 1.99 || info.LatencyMs.P50 > 2.01 || *info.HitRatio != 1 ||
		info.Status["200"] != 1000 {
		t.Errorf("A info %+v", info)
	}
	if len(r.Ratios) != 2 || r.Ratios[0].Of != "B/A" || r.Ratios[0].P99 != 2 || r.Ratios[0].RequestsPerSec != 2 {
		t.Errorf("ratios %+v", r.Ratios)
	}
	// The curve starts at 0%, rises through 90% and 99.9% (3 nines for 1000
	// samples) and ends at the maximum, 100%.
	c := info.Percentiles
	if c[0][0] != 0 || c[20][0] != 90 || c[len(c)-1][0] != 100 || c[len(c)-1][1] < 19.9 {
		t.Errorf("curve %v", c)
	}
}

func TestPlotIsWellFormedSVG(t *testing.T) {
	var buf bytes.Buffer
	if err := Plot(&buf, []*harness.Result{result()}); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&buf)
	lines, labels := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			switch se.Name.Local {
			case "polyline":
				lines++
			case "text":
				labels++
			}
		}
	}
	if lines != 2 || labels < 10 {
		t.Errorf("%d lines and %d labels, want one line per target and axes", lines, labels)
	}
}

func TestNiceScale(t *testing.T) {
	for _, tc := range []struct{ v, top, step float64 }{
		{0.37, 0.4, 0.1}, {21.4, 25, 5}, {100, 100, 20}, {501, 600, 200}, {0, 1, 0.2},
	} {
		if top, step := niceScale(tc.v); top != tc.top || step != tc.step {
			t.Errorf("niceScale(%v) = %v, %v; want %v, %v", tc.v, top, step, tc.top, tc.step)
		}
	}
	for n, want := range map[int]string{0: "0%", 1: "90%", 2: "99%", 3: "99.9%", 5: "99.999%"} {
		if got := ninesLabel(n); got != want {
			t.Errorf("ninesLabel(%d) = %s", n, got)
		}
	}
}

package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestReadMarksMissingSamples(t *testing.T) {
	names, cols, err := read(strings.NewReader("seconds,rss_mb\n0,50\n15,\n30,x\n45,61.5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 || len(cols[1]) != 4 {
		t.Fatalf("names %v, %d samples", names, len(cols[1]))
	}
	if cols[1][0] != 50 || !math.IsNaN(cols[1][1]) || !math.IsNaN(cols[1][2]) || cols[1][3] != 61.5 {
		t.Fatalf("rss column = %v", cols[1])
	}
	if _, _, err := read(strings.NewReader("seconds\n1\n")); err == nil {
		t.Fatal("one column accepted")
	}
}

func TestPlotSkipsMissingPoints(t *testing.T) {
	names, cols, _ := read(strings.NewReader("seconds,a,b\n0,1,2\n60,,4\n120,3,8\n"))
	var b bytes.Buffer
	if err := plot(&b, "t<1>", names, cols); err != nil {
		t.Fatal(err)
	}
	svg := b.String()
	if strings.Count(svg, "<polyline") != 2 || !strings.Contains(svg, "t&lt;1&gt;") {
		t.Fatalf("svg:\n%s", svg)
	}
	// Panel a has two points (the empty sample is skipped), b three.
	lines := strings.Split(svg, "<polyline")
	if n := strings.Count(strings.SplitN(lines[1], `"/>`, 2)[0], ","); n != 2 {
		t.Fatalf("panel a has %d points, want 2", n)
	}
}

package main

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// expandBraces turns README shorthand such as iiif_x_{a,b}_total into
// iiif_x_a_total and iiif_x_b_total.
func expandBraces(s string) []string {
	i := strings.IndexByte(s, '{')
	j := strings.IndexByte(s, '}')
	if i < 0 || j < i {
		return []string{s}
	}
	var out []string
	for _, alt := range strings.Split(s[i+1:j], ",") {
		out = append(out, expandBraces(s[:i]+alt+s[j+1:])...)
	}
	return out
}

// TestREADMENamesEveryMetric: every iiif_ metric family a running server
// exports is named in the README's /metrics list (the list had wrong
// shorthand for the pyramid families and missed five others).
func TestREADMENamesEveryMetric(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	// Names with their brace alternatives: a brace right after "_" is
	// shorthand (iiif_x_{a,b}_total), after a letter a label set
	// (iiif_cache_hits_total{tier,layer}).
	for _, m := range regexp.MustCompile(`iiif_(?:[a-z0-9]|_(?:\{[a-z0-9_,]+\})?)*`).FindAllString(string(readme), -1) {
		for _, name := range expandBraces(m) {
			documented[name] = true
		}
	}
	c := start(t, "RAIS_TILEPATH="+samplePyramid(t), "RAIS_PYRAMIDMINPIXELS=1")
	resp, err := http.Get("http://" + c.addr + "/iiif/3/pattern.tif/0,0,256,256/256,/0/default.jpg")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = http.Get("http://" + c.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	seen := 0
	for _, line := range strings.Split(string(b), "\n") {
		name, ok := strings.CutPrefix(line, "# TYPE ")
		if !ok || !strings.HasPrefix(name, "iiif_") {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		seen++
		if !documented[name] {
			t.Errorf("/metrics exports %s; the README's list does not name it", name)
		}
	}
	if seen < 40 {
		t.Fatalf("only %d iiif_ metric families seen:\n%s", seen, b)
	}
}

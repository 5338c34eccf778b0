package proxy

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iiif-proxy/iiif-proxy/renderer"
)

type fixedStats renderer.Stats

func (f fixedStats) Stats() renderer.Stats { return renderer.Stats(f) }

// progressSeries gathers iiif_pyramid_build_progress_ratio by id.
func progressSeries(t *testing.T, s fixedStats) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(rendererCollector{s})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "iiif_pyramid_build_progress_ratio" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "id" || m.GetGauge() == nil {
				t.Fatalf("series %v: want one id label and a gauge", m)
			}
			got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	return got
}

// TestPyramidBuildProgressIsAGaugePerBuild: each running build is one
// series, labelled with its source, 0-1; none when nothing builds.
func TestPyramidBuildProgressIsAGaugePerBuild(t *testing.T) {
	got := progressSeries(t, fixedStats{Pyramids: &renderer.PyramidStats{Building: 2, InProgress: []renderer.PyramidBuild{
		{ID: "a/scan.jpg", Seconds: 3, Percent: 42}, {ID: "b.png", Seconds: 1, Percent: 0}}}})
	if len(got) != 2 || got["a/scan.jpg"] != 0.42 || got["b.png"] != 0 {
		t.Errorf("progress series %v, want a/scan.jpg 0.42 and b.png 0", got)
	}
	if got := progressSeries(t, fixedStats{Pyramids: &renderer.PyramidStats{}}); len(got) != 0 {
		t.Errorf("progress series %v with no build running", got)
	}
}

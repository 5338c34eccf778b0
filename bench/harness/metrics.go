package harness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RenderMetrics are the Prometheus counters whose sum counts the images a
// server made: iiif-proxy's renders and its stored tiles passed through
// without decoding.
var RenderMetrics = []string{"iiif_renders_total", "iiif_tile_passthrough_total"}

// scrapeSum reads a Prometheus text exposition from url and returns the sum
// of every sample of the named metrics, whatever their labels.
func scrapeSum(ctx context.Context, url string, names []string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("metrics %s: status %d", url, resp.StatusCode)
	}
	return sumMetrics(resp.Body, names)
}

// sumMetrics sums the samples of the named metrics in Prometheus text
// format: "name{labels} value [timestamp]" or "name value".
func sumMetrics(r io.Reader, names []string) (float64, error) {
	var sum float64
	found := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		want := false
		for _, n := range names {
			want = want || n == name
		}
		if !want {
			continue
		}
		if strings.HasPrefix(rest, "{") {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				return 0, fmt.Errorf("metrics: bad line %q", line)
			}
			rest = rest[j+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0, fmt.Errorf("metrics: bad line %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics: bad line %q", line)
		}
		sum += v
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("metrics: none of %s", strings.Join(names, ", "))
	}
	return sum, nil
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/iiif-proxy/iiif-proxy/bench/harness"
	"github.com/iiif-proxy/iiif-proxy/bench/harness/cachesim"
	"github.com/iiif-proxy/iiif-proxy/bench/harness/trace"
	"github.com/iiif-proxy/iiif-proxy/bench/harness/workload"
	"github.com/iiif-proxy/iiif-proxy/internal/iiif"
)

const traceUsage = `usage: iiif-bench trace gen    -target URL (-ids … | -ids-file F | -ids-dir D) [flags] [-o FILE]
       iiif-bench trace replay -target URL -trace FILE [-rate R] [-c N] [-records FILE]
       iiif-bench trace sim    -trace FILE [-records FILE] [-budget 5%,20%,7.5MB] [-tier tile]

Request traces for measuring cache policies: the same requests replayed
against a server and simulated offline with the same byte budget.

  gen     writes a trace: -users viewers' OpenSeadragon sessions interleaved,
          each opening an image by Zipf(-skew) popularity (info.json, the
          fitted view), zooming by doublings to one of -points points of
          interest of the image, also Zipf(-skew) popular, then walking
          (pans and zooms) for the rest of -walk steps; pyramids come from
          the images' info.json at -target. -crawl F mixes in a crawler
          sending F of the requests until it has fetched every tile of every
          image once. Deterministic for -seed. One line per request: the
          path after the base and the session (crawl for the crawler).
  replay  sends a trace to -target in its order, open loop at -rate
          requests/s over -c connections, writes per request status,
          X-Cache, X-Cache-Tier, size and latency to -records (CSV) and
          prints the hit ratio and byte hit ratio per tier. HIT,
          REVALIDATED, STALE, UPDATING, SHARED and COLLAPSED count as hits.
  sim     replays the trace offline through FIFO, LRU, SIEVE, S3-FIFO,
          Belady's OPT (furthest next use; for variable sizes a heuristic,
          exact OPT being NP-hard) and the compulsory-miss bound, for each
          -budget (bytes, or a percentage of the tier's distinct payload),
          and prints hit ratios and ratios to LRU. Sizes and tiers come from
          -records (a replay of the same trace) where it has them, else from
          a model (-bytes-per-pixel of output, 1000 bytes an info.json).
          With -records the replayed server's own hit ratio is shown beside
          the first budget: list first the budget the server ran with.

Example (budget: 20 % of the distinct tile payload, on the server and offline):
  iiif-bench trace gen -target http://127.0.0.1:12415/iiif/3 -ids-dir samples -n 30000 -o t.txt
  iiif-bench trace replay -target http://127.0.0.1:12415/iiif/3 -trace t.txt -rate 250 -records r.csv
  iiif-bench trace sim -trace t.txt -records r.csv -budget 5%,20%,50%

Flags:
`

func traceCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		fmt.Fprint(stderr, traceUsage)
		return 2
	case args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		fmt.Fprint(stderr, traceUsage)
		return 0
	case args[0] != "gen" && args[0] != "replay" && args[0] != "sim":
		fmt.Fprintf(stderr, "iiif-bench trace: unknown subcommand %q (gen, replay, sim)\n", args[0])
		return 2
	}
	fs := flag.NewFlagSet("iiif-bench trace "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, traceUsage)
		fs.PrintDefaults()
	}
	switch args[0] {
	case "gen":
		return traceGen(ctx, fs, args[1:], stdout, stderr)
	case "replay":
		return traceReplay(ctx, fs, args[1:], stdout, stderr)
	}
	return traceSim(fs, args[1:], stdout, stderr)
}

// parse parses args into fs; ok false means return code.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, false
	}
	return 0, true
}

func traceGen(ctx context.Context, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	var ids list
	target := fs.String("target", "", "IIIF base `URL` whose info.json give the pyramids, e.g. http://127.0.0.1:12415/iiif/3")
	fs.Var(&ids, "ids", "identifiers, comma-separated or repeated")
	idsFile := fs.String("ids-file", "", "`file` of identifiers, one per line; # starts a comment")
	idsDir := fs.String("ids-dir", "", "`directory` of source images: every image file in it is an identifier, by relative path")
	n := fs.Int("n", 30000, "`requests` in the trace")
	users := fs.Int("users", 8, "viewers whose sessions interleave, a request each in turn")
	skew := fs.Float64("skew", 1, "Zipf `exponent` of the popularity of images and of points of interest: 0 uniform")
	points := fs.Int("points", 32, "points of interest per image")
	crawl := fs.Float64("crawl", 0, "share of requests, in [0, 1), sent by a crawler fetching every tile of every image once")
	viewport := fs.String("viewport", "1280x800", "viewer viewport `WxH` in screen pixels")
	walk := fs.Int("walk", 20, "pan and zoom `steps` per session, the dive to the point of interest included")
	seed := fs.Uint64("seed", 1, "`seed`: the same seed and images give the same trace")
	out := fs.String("o", "-", "write the trace to `file` (- for stdout)")
	timeout := fs.Duration("timeout", 30*time.Second, "per-request timeout for info.json")
	if code, ok := parse(fs, args, stderr); !ok {
		return code
	}
	var errs []error
	if *target == "" {
		errs = append(errs, errors.New("-target is required"))
	}
	vp, err := iiif.ParseViewport(*viewport)
	if err != nil {
		errs = append(errs, err)
	}
	idList, err := identifiers(ids, *idsFile, *idsDir)
	if err != nil {
		errs = append(errs, err)
	}
	o := trace.GenOptions{Requests: *n, Users: *users, Points: *points, Crawl: *crawl,
		Viewer: workload.Spec{Viewport: vp, Walk: *walk, Skew: *skew, Seed: *seed}}
	if *users < 1 || *points < 1 {
		errs = append(errs, errors.New("-users and -points must be ≥ 1"))
	}
	check := o
	if vp == (iiif.Viewport{}) {
		check.Viewer.Viewport = iiif.Viewport{Width: 1, Height: 1} // already reported
	}
	if err := check.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(stderr, "iiif-bench trace gen:", err)
		return 1
	}
	tg := &harness.Target{Name: "A", Bases: []string{*target}}
	dropped, err := harness.Discover(ctx, []*harness.Target{tg}, idList, *timeout)
	for _, d := range dropped {
		fmt.Fprintln(stderr, "iiif-bench trace gen: dropped", d)
	}
	if err != nil {
		fmt.Fprintln(stderr, "iiif-bench trace gen:", err)
		return 1
	}
	images := tg.Corpora()[0].Images
	reqs, err := trace.Generate(images, o)
	if err != nil {
		fmt.Fprintln(stderr, "iiif-bench trace gen:", err)
		return 1
	}
	comments := []string{"iiif-bench trace: " + o.Comment(),
		fmt.Sprintf("%d images from %s: %s", len(images), *target, imageList(images))}
	if err := writeFile(*out, stdout, func(w io.Writer) error { return trace.Write(w, comments, reqs) }); err != nil {
		fmt.Fprintln(stderr, "iiif-bench trace gen:", err)
		return 1
	}
	distinct := map[string]bool{}
	crawled := 0
	for _, q := range reqs {
		distinct[q.Path] = true
		if q.Session == "crawl" {
			crawled++
		}
	}
	fmt.Fprintf(stderr, "iiif-bench trace gen: %d requests (%d by the crawler), %d distinct URLs, over %d images\n",
		len(reqs), crawled, len(distinct), len(images))
	return 0
}

func imageList(ims []iiif.Image) string {
	var b strings.Builder
	for i, im := range ims {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d×%d", im.ID, im.Width, im.Height)
	}
	return b.String()
}

func readTrace(name string) ([]trace.Request, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	reqs, err := trace.Read(f)
	if err == nil && len(reqs) == 0 {
		err = fmt.Errorf("%s: no requests", name)
	}
	return reqs, err
}

func readRecords(name string) ([]trace.Record, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return trace.ReadRecords(f)
}

func traceReplay(ctx context.Context, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	target := fs.String("target", "", "IIIF base `URL` the trace's paths follow, e.g. http://127.0.0.1:12415/iiif/3")
	file := fs.String("trace", "", "trace `file` (from trace gen)")
	rate := fs.Float64("rate", 250, "`requests/s`, open loop; 0 = as fast as the connections go")
	conc := fs.Int("c", 1, "`connections`; with 1 the server sees the trace's order, as the simulator does")
	records := fs.String("records", "", "write a CSV `file` of what the server said to each request (for trace sim -records)")
	timeout := fs.Duration("timeout", 30*time.Second, "per-request timeout")
	keepAlive := fs.Bool("keepalive", true, "reuse connections")
	every := fs.Duration("progress", 5*time.Second, "progress line `interval` on stderr; 0 = none")
	if code, ok := parse(fs, args, stderr); !ok {
		return code
	}
	var errs []error
	if *target == "" {
		errs = append(errs, errors.New("-target is required"))
	}
	if *file == "" {
		errs = append(errs, errors.New("-trace is required"))
	}
	cfg := harness.ReplayConfig{Base: *target, Rate: *rate, Concurrency: *conc, Timeout: *timeout,
		NoKeepAlive: !*keepAlive, Every: *every}
	if *every > 0 {
		cfg.Progress = stderr
	}
	if *conc < 1 {
		errs = append(errs, fmt.Errorf("-c %d: must be ≥ 1", *conc))
	}
	if err := cfg.Validate(); err != nil && *target != "" {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(stderr, "iiif-bench trace replay:", err)
		return 1
	}
	reqs, err := readTrace(*file)
	if err != nil {
		fmt.Fprintln(stderr, "iiif-bench trace replay:", err)
		return 1
	}
	start := time.Now()
	recs, err := harness.Replay(ctx, cfg, reqs)
	el := time.Since(start)
	code := 0
	if err != nil {
		fmt.Fprintln(stderr, "iiif-bench trace replay:", err)
		code = 1
	}
	fmt.Fprintf(stdout, "replayed %d of %d requests in %.1fs (%.0f/s) over %d connection(s) to %s\n",
		len(recs), len(reqs), el.Seconds(), float64(len(recs))/el.Seconds(), *conc, *target)
	if err := trace.PrintSummary(stdout, trace.Summarize(recs)); err != nil {
		code = 1
	}
	if *records != "" {
		if err := writeFile(*records, stdout, func(w io.Writer) error { return trace.WriteRecords(w, recs) }); err != nil {
			fmt.Fprintln(stderr, "iiif-bench trace replay:", err)
			return 1
		}
	}
	return code
}

func traceSim(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	var budgets, policies list
	file := fs.String("trace", "", "trace `file` (from trace gen)")
	records := fs.String("records", "", "replay records `file` of the same trace: object sizes and tiers, and the server's own hit ratio")
	fs.Var(&budgets, "budget", "byte budget(s), comma-separated: a size (7.5MB, 512KiB, bytes) or a percentage of the tier's distinct payload; with -records the first is the one the server ran with (default 20%)")
	tier := fs.String("tier", "tile", "tier to simulate (the server's X-Cache-Tier, else by URL shape); all for every request")
	bpp := fs.Float64("bytes-per-pixel", 0.075, "size model for objects without a record: JPEG bytes per output pixel")
	fs.Var(&policies, "policies", "policies to run (default "+strings.Join(cachesim.Policies, ",")+")")
	if code, ok := parse(fs, args, stderr); !ok {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "iiif-bench trace sim:", err)
		return 1
	}
	if *file == "" {
		return fail(errors.New("-trace is required"))
	}
	if len(budgets) == 0 {
		budgets = list{"20%"}
	}
	if len(policies) == 0 {
		policies = list(cachesim.Policies)
	}
	reqs, err := readTrace(*file)
	if err != nil {
		return fail(err)
	}
	var recs []trace.Record
	if *records != "" {
		if recs, err = readRecords(*records); err != nil {
			return fail(err)
		}
	}
	sim, err := trace.NewSim(reqs, recs, *tier, trace.SizeModel{BytesPerPixel: *bpp})
	if err != nil {
		return fail(err)
	}
	if len(sim.Keys) == 0 {
		return fail(fmt.Errorf("no request of tier %q in %s", *tier, *file))
	}
	objects, payload := sim.Distinct()
	fmt.Fprintf(stdout, "trace %s: %d requests; tier %s: %d requests, %d objects, %s distinct payload (sizes: %d from records, %d from the model)\n",
		*file, len(reqs), *tier, len(sim.Keys), objects, mb(payload), objects-sim.Modelled, sim.Modelled)
	var measured *trace.TierSummary
	if recs != nil {
		for _, s := range trace.Summarize(recs) {
			if s.Tier == *tier || (*tier == "all" && s.Tier == "all") {
				measured = &s
			}
		}
	}
	var errs []error
	sizes := make([]int64, len(budgets))
	for i, b := range budgets {
		if sizes[i], err = trace.Budget(b, payload); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range policies {
		if !slices.Contains(cachesim.Policies, p) {
			errs = append(errs, fmt.Errorf("policy %q: want one of %s", p, strings.Join(cachesim.Policies, ", ")))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fail(err)
	}
	for i, b := range budgets {
		bytes := sizes[i]
		var results []cachesim.Result
		for _, p := range policies {
			r, err := cachesim.Simulate(sim.Trace, p, bytes)
			if err != nil {
				return fail(err)
			}
			results = append(results, r)
		}
		fmt.Fprintf(stdout, "\nbudget %s = %d bytes (%s, %.1f %% of the distinct payload)\n", b, bytes, mb(bytes),
			100*float64(bytes)/float64(max(payload, 1)))
		if err := trace.PrintSim(stdout, results, measured); err != nil {
			return fail(err)
		}
		measured = nil // the server ran with one budget: the first one listed
	}
	if recs != nil {
		fmt.Fprintln(stdout, "\nThe server (replay) line is the replayed server's own, shown with the first budget: list first the budget it ran with.")
	}
	fmt.Fprintln(stdout, trace.OPTNote)
	return 0
}

func mb(n int64) string {
	if n < 1e6 {
		return fmt.Sprintf("%.1f KB", float64(n)/1e3)
	}
	return fmt.Sprintf("%.2f MB", float64(n)/1e6)
}

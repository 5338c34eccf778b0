// Command iiif-bench load-tests IIIF image servers over HTTP (iiif-proxy,
// RAIS, Cantaloupe, IIPImage, a CDN) with the traffic deep-zoom viewers
// make, and generates a corpus of large test images.
//
// Usage:
//
//	iiif-bench -target URL -ids ID,… [flags]    run workloads, print a table per workload and tier
//	iiif-bench corpus [flags] DIR               generate test images into DIR
//	iiif-bench trace gen|replay|sim [flags]     make a request trace, replay it, simulate cache policies on it
//
// Examples:
//
//	# 20 viewers on the sample images for 10 s after a 2 s warm-up
//	go run ./bench/cmd/iiif-bench -target http://127.0.0.1:12415/iiif/3 -ids-dir samples -workload viewer -c 20
//	# open loop: 500 requests/s whatever the server does; latency from the scheduled send time
//	iiif-bench -target http://127.0.0.1:12415/iiif/3 -ids-dir samples -workload mix -rate 500 -d 30s
//	# 100 clients at once on never-seen tiles, renders counted from the metrics
//	iiif-bench -target http://127.0.0.1:12415/iiif/3 -ids-dir samples -workload stampede -c 100 \
//	    -metrics http://127.0.0.1:12416/metrics
//	# two servers interleaved in 1 s slices, B/A ratios, JSON and a percentile plot
//	iiif-bench -target http://127.0.0.1:12415/iiif/3 -compare http://127.0.0.1:8080/iiif/3 \
//	    -ids-file ids.txt -workload viewer,thumbs -json out.json -plot out.svg
//
// Targets: -target is one server, as one or more base URLs (the IIIF prefix
// before the identifier, e.g. http://host:12415/iiif/3 or …/iiif/2; several
// are used round-robin). -compare adds a second server. Identifiers come
// from -ids, -ids-file (one per line, # comments) or -ids-dir (every image
// file under a directory of sources, by relative path, as iiif-proxy names
// them). Before the run every info.json is read from every base URL; an
// identifier any base fails on is dropped with a note.
//
// Workloads (-workload, several comma-separated run one after another):
//
//	viewer    OpenSeadragon sessions: info.json, the fitted view's tiles, then a
//	          random walk of -walk pans (≤ half a viewport) and zooms (×2 about a
//	          point in view), each view asking for every visible tile not
//	          fetched yet, in the canonical URL form of the advertised version
//	          (3.0 x,y,w,h/w,h/0/default.jpg; 2.1 x,y,w,h/w,/0/default.jpg)
//	thumbs    search-result pages of -page thumbnails, full/{-thumb-width},/0/default.jpg
//	info      info.json of random images
//	stampede  -rounds rounds: -c clients, connections open, wait at a barrier and
//	          send the same never-seen URL (a random 512-pixel region at half
//	          size) at once; reports the followers' wait and the renders per
//	          round from X-Cache (MISS) and from -metrics (iiif_renders_total +
//	          iiif_tile_passthrough_total before and after); connections are
//	          opened before the first round (with -keepalive=false they cannot
//	          be, and each round includes the handshakes)
//	mix       tiles, thumbnails and info.json by -weights, images Zipf-distributed
//	          with exponent -skew (the same popularity order for every user)
//
// Load models: closed loop (the default) runs -c users that each send the
// next request when the last is answered. Open loop (-rate R) schedules R
// requests a second, evenly or (-poisson) at random, sent by -c workers each
// with one connection; latency counts from the scheduled time, so a server
// that stalls is charged for the queue it causes (no coordinated omission),
// and the table notes the harness's own dispatch lag. -warmup runs first,
// unrecorded; then -d of measurement, or -n requests, per target. With
// -compare the two targets alternate in slices of -slice, each continuing
// the same request streams, so both are measured under the same conditions.
//
// Output: a progress line (rewritten in place on a terminal, a plain line a
// second otherwise), then per workload a table: for each tier (X-Cache-Tier,
// else the request's shape) and target, requests, req/s, MB/s, latency p50,
// p90, p99, p99.9 and max (HDR histogram, 3 significant digits), the hit
// ratio from X-Cache, errors and status codes, and with -compare a B/A row
// of ratios. -json FILE writes everything for machines ("-" for stdout),
// -plot FILE.svg the latency-by-percentile curves.
//
// The trace subcommands measure cache policies (see iiif-bench trace -help):
// gen writes a trace of viewer sessions with Zipf popularity over images
// and over points of interest, optionally with a crawler mixed in; replay
// sends it to any server at a fixed rate and records X-Cache, tier and size
// per request; sim runs the same trace offline through FIFO, LRU, SIEVE,
// S3-FIFO, Belady's OPT and the compulsory-miss bound with the same byte
// budget and prints hit ratios against LRU.
//
// The corpus subcommand writes deterministic scans (paper texture and text)
// as pyramidal TIFF, plain JPEG and JPEG 2000, 4,000 to 30,000 pixels a side;
// see iiif-bench corpus -help. The default corpus (12 images up to 20,000
// pixels, JPEG 2000 up to 8,000 because its encoder is three times slower)
// takes about a minute on two cores; existing files are skipped.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/iiif-proxy/iiif-proxy/bench/harness"
	"github.com/iiif-proxy/iiif-proxy/bench/harness/corpus"
	"github.com/iiif-proxy/iiif-proxy/bench/harness/report"
	"github.com/iiif-proxy/iiif-proxy/bench/harness/workload"
	"github.com/iiif-proxy/iiif-proxy/internal/iiif"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// list is a flag that may be repeated and holds comma-separated values.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }
func (l *list) Set(s string) error {
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

const usage = `usage: iiif-bench -target URL (-ids ID,… | -ids-file FILE | -ids-dir DIR) [flags]
       iiif-bench corpus [flags] DIR     (generate test images; iiif-bench corpus -help)
       iiif-bench trace gen|replay|sim   (request traces for cache policies; iiif-bench trace -help)

Load-tests IIIF image servers over HTTP with what deep-zoom viewers ask for.
-target is a base URL before the identifier (http://127.0.0.1:12415/iiif/3, or
…/iiif/2); every info.json is read first, and its version decides the URL form.

Workloads (-workload, comma-separated to run several in turn):
  viewer    OpenSeadragon: info.json, the fitted view's tiles, then -walk random
            pans and zooms, each view asking for every visible tile not yet fetched
  thumbs    search-result pages of -page thumbnails, full/{-thumb-width},/0/default.jpg
  info      info.json of random images
  stampede  -rounds rounds of -c clients sending one never-seen URL at the same
            instant (a barrier); followers' wait, renders per round from X-Cache
            and -metrics
  mix       tiles, thumbnails, info.json by -weights; images Zipf(-skew) popular

Load: closed loop, -c users, by default; open loop with -rate (latency from the
scheduled send time, so a stalling server is charged for its queue). -warmup,
then -d or -n per target. -compare URL runs a second server interleaved in
-slice slices and prints B/A ratios. Output: progress, a table per workload and
tier (X-Cache-Tier, else URL shape), -json, -plot.

Flags:
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "corpus" {
		return corpusCmd(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "trace" {
		return traceCmd(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("iiif-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	var targets, compare, ids, workloads list
	fs.Var(&targets, "target", "base `URL`(s) of the server under test, before the identifier, e.g. http://127.0.0.1:12415/iiif/3; repeat or comma-separate to share load between several")
	fs.Var(&compare, "compare", "base `URL`(s) of a second server, run interleaved with -target in slices of -slice; prints ratios B/A")
	fs.Var(&ids, "ids", "identifiers, comma-separated or repeated")
	idsFile := fs.String("ids-file", "", "`file` of identifiers, one per line; # starts a comment")
	idsDir := fs.String("ids-dir", "", "`directory` of source images (iiif-proxy's TilePath): every image file in it is an identifier, by relative path")
	metrics := fs.String("metrics", "", "Prometheus `URL` of -target (e.g. http://127.0.0.1:12416/metrics), to count renders per stampede round")
	compareMetrics := fs.String("compare-metrics", "", "Prometheus `URL` of -compare")
	fs.Var(&workloads, "workload", "workload(s) to run in turn: "+strings.Join(workload.Names, ", ")+" (default viewer)")
	viewport := fs.String("viewport", "1280x800", "viewer viewport `WxH` in screen pixels")
	walk := fs.Int("walk", 20, "pan and zoom `steps` per viewer session before it opens another image")
	thumbW := fs.Int("thumb-width", 200, "thumbnail `width`")
	page := fs.Int("page", 24, "thumbnails per search-result `page`")
	skew := fs.Float64("skew", 1, "Zipf `exponent` of image popularity in the mix: 0 uniform, 1 typical web skew")
	weights := fs.String("weights", workload.DefaultWeights.String(), "mix shares of requests by tier")
	rounds := fs.Int("rounds", 10, "stampede `rounds`, each on a fresh URL")
	seed := fs.Uint64("seed", 1, "`seed` of the request streams (stampede URLs also mix in the clock, to be fresh)")
	conc := fs.Int("c", 16, "closed loop: `users`; open loop: connections (most requests in flight); stampede: clients per round")
	rate := fs.Float64("rate", 0, "open loop: `requests/s` per target, scheduled whatever the server does; 0 = closed loop")
	poisson := fs.Bool("poisson", false, "open loop: random (exponential) gaps instead of even ones")
	dur := fs.Duration("d", 10*time.Second, "measured `duration` per target and workload")
	count := fs.Int64("n", 0, "measured `requests` per target and workload instead of -d")
	warmup := fs.Duration("warmup", 2*time.Second, "unrecorded warm-up per target and workload")
	slice := fs.Duration("slice", time.Second, "with -compare, how long one target runs before the other")
	keepAlive := fs.Bool("keepalive", true, "reuse connections; -keepalive=false sends Connection: close with every request")
	timeout := fs.Duration("timeout", 30*time.Second, "per-request timeout")
	jsonOut := fs.String("json", "", "write results as JSON to `file` (- for stdout)")
	plot := fs.String("plot", "", "write an SVG latency-by-percentile plot to `file`")
	every := fs.Duration("progress", time.Second, "progress line `interval`; 0 = none")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "iiif-bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "iiif-bench:", err)
		return 1
	}

	// Configuration, every problem at once.
	var errs []error
	if len(targets) == 0 {
		errs = append(errs, errors.New("-target is required"))
	}
	if len(workloads) == 0 {
		workloads = list{workload.Viewer}
	}
	vp, err := iiif.ParseViewport(*viewport)
	if err != nil {
		errs = append(errs, err)
	}
	w, err := workload.ParseWeights(*weights)
	if err != nil {
		errs = append(errs, err)
	}
	idList, err := identifiers(ids, *idsFile, *idsDir)
	if err != nil {
		errs = append(errs, err)
	}
	spec := workload.Spec{Viewport: vp, Walk: *walk, ThumbWidth: *thumbW, PageSize: *page, Skew: *skew,
		Weights: w, Seed: *seed}
	cfg := harness.Config{Concurrency: *conc, Rate: *rate, Poisson: *poisson, Duration: *dur, Requests: *count,
		Warmup: *warmup, Slice: *slice, NoKeepAlive: !*keepAlive, Timeout: *timeout, Rounds: *rounds}
	if *count > 0 {
		cfg.Duration = 0
	}
	for _, name := range workloads {
		spec.Name = name
		cfg.Workload = spec
		if err := cfg.Validate(); err != nil {
			// One line per problem, once, however many workloads share it.
			for line := range strings.Lines(err.Error()) {
				if e := errors.New(strings.TrimSpace(line)); !slices.ContainsFunc(errs, func(x error) bool {
					return x.Error() == e.Error()
				}) {
					errs = append(errs, e)
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fail(err)
	}

	out := stdout
	if *jsonOut == "-" {
		out = stderr // the table and progress make way for the JSON
	}
	if *every > 0 {
		cfg.Progress = &harness.Progress{W: out, TTY: isTerminal(out), Every: *every}
	}
	tgs := []*harness.Target{{Name: "A", Bases: targets, Metrics: *metrics}}
	if len(compare) > 0 {
		tgs = append(tgs, &harness.Target{Name: "B", Bases: compare, Metrics: *compareMetrics})
	}
	started := time.Now()
	dropped, err := harness.Discover(ctx, tgs, idList, *timeout)
	for _, d := range dropped {
		fmt.Fprintln(stderr, "iiif-bench: dropped", d)
	}
	if err != nil {
		return fail(err)
	}
	for _, t := range tgs {
		for _, c := range t.Corpora() {
			fmt.Fprintf(out, "%s: %d images at %s (IIIF %s)\n", t.Name, len(c.Images), c.Base, c.Images[0].Version)
		}
	}

	var results []*harness.Result
	code := 0
	for _, name := range workloads {
		spec.Name = name
		cfg.Workload = spec
		res, err := harness.Run(ctx, cfg, tgs)
		if res != nil {
			fmt.Fprintln(out)
			report.Table(out, res)
			results = append(results, res)
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				return fail(err)
			}
			fmt.Fprintln(stderr, "iiif-bench: interrupted")
			code = 1
			break
		}
	}
	if *jsonOut != "" {
		if err := writeFile(*jsonOut, stdout, func(w io.Writer) error {
			return report.JSON(w, started, args, results)
		}); err != nil {
			return fail(err)
		}
	}
	if *plot != "" {
		if err := writeFile(*plot, stdout, func(w io.Writer) error { return report.Plot(w, results) }); err != nil {
			return fail(err)
		}
	}
	return code
}

// identifiers reads the identifiers from the three sources, in order,
// without duplicates.
func identifiers(ids list, file, dir string) ([]string, error) {
	out := slices.Clone([]string(ids))
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line, _, _ := strings.Cut(sc.Text(), "#")
			if line = strings.TrimSpace(line); line != "" {
				out = append(out, line)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	if dir != "" {
		found, err := imagesIn(dir)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	seen := map[string]bool{}
	out = slices.DeleteFunc(out, func(s string) bool {
		dup := seen[s]
		seen[s] = true
		return dup
	})
	if len(out) == 0 {
		return nil, errors.New("no identifiers: give -ids, -ids-file or -ids-dir")
	}
	return out, nil
}

var imageExts = []string{".tif", ".tiff", ".jpg", ".jpeg", ".jp2", ".png", ".webp", ".gif"}

// imagesIn lists image files under dir by slash-separated relative path,
// skipping hidden files and directories (and the corpus's .tmp- files).
func imagesIn(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !slices.Contains(imageExts, strings.ToLower(filepath.Ext(p))) {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("no images in %s", dir)
	}
	return out, err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// writeFile writes to name, or to stdout for "-".
func writeFile(name string, stdout io.Writer, write func(io.Writer) error) error {
	if name == "-" {
		return write(stdout)
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

const corpusUsage = `usage: iiif-bench corpus [flags] DIR

Writes a deterministic corpus of large scans (paper texture, fibres and text)
into DIR: pyramidal tiled TIFF (JPEG tiles, 256 px), plain JPEG and tiled JPEG
2000 in turn, sizes log-uniform between -min-side and -max-side on both sides,
in the aspect ratios of pages, plates and maps. Image i depends only on -seed
and i, so -count 24 extends the default 12. Existing files are skipped.

Measured on two cores: TIFF and JPEG about 22 megapixels a second, JPEG 2000
about 7, so JPEG 2000 is capped at 8000 px by default. The defaults (12
images, 470 megapixels) should take about a minute; the full range, -count 24
-max-side 30000 -max-jp2-side 12000 (2.7 gigapixels, about 750 MB of files), about
three minutes plus disk time.

-realistic writes instead the files libraries hold, all of one scan at
-width × -height (default 20480 × 11520, the size of the issue-8
measurements): untagged, sRGB-tagged (same pixels) and Adobe RGB pyramidal
TIFFs (256-pixel JPEG tiles, Q75), a 16-bit Adobe RGB pyramid (deflate), a
CMYK pyramid, a flat JPEG and a tiled JPEG 2000, named real-*.{tif,jpg,jp2}.
The Adobe RGB profile is -adobe-profile (colord-data's by default). Flags:
`

func corpusCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("iiif-bench corpus", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, corpusUsage)
		fs.PrintDefaults()
	}
	var formats list
	n := fs.Int("count", 12, "number of `images`")
	minSide := fs.Int("min-side", 4000, "smallest side in `pixels`")
	maxSide := fs.Int("max-side", 20000, "largest side in `pixels`, at most 30000")
	maxJP2 := fs.Int("max-jp2-side", 8000, "largest JPEG 2000 side in `pixels` (its encoder is slow)")
	fs.Var(&formats, "formats", "formats to cycle through: tif, jpg, jp2 (default all three)")
	seed := fs.Uint64("seed", 1, "corpus `seed`")
	dryRun := fs.Bool("plan", false, "print the plan without generating")
	realistic := fs.Bool("realistic", false, "write the realistic corpus (profiles, 16-bit, CMYK, flat JPEG, JPEG 2000) instead")
	width := fs.Int("width", 20480, "-realistic image width in `pixels`")
	height := fs.Int("height", 11520, "-realistic image height in `pixels`")
	adobe := fs.String("adobe-profile", corpus.DefaultAdobeRGB, "-realistic Adobe RGB ICC profile `file`")
	var only list
	fs.Var(&only, "only", "-realistic: write only these `files` (comma list, e.g. real-srgb.tif,real-plain.tif)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if *realistic {
		if _, err := os.Stat(*adobe); err != nil {
			fmt.Fprintln(stderr, "iiif-bench corpus: -adobe-profile:", err, "(apt-get install colord-data)")
			return 2
		}
		variants := corpus.Realistic(*adobe)
		if len(only) > 0 {
			variants = slices.DeleteFunc(variants, func(v corpus.Variant) bool { return !slices.Contains(only, v.Name) })
			if len(variants) != len(only) {
				fmt.Fprintf(stderr, "iiif-bench corpus: -only %v: unknown file names (see -realistic -plan)\n", only)
				return 2
			}
		}
		if *dryRun {
			for _, v := range variants {
				fmt.Fprintf(stdout, "%s\t%d×%d\t%s\n", v.Name, *width, *height, v.What)
			}
			return 0
		}
		if err := corpus.GenerateRealistic(fs.Arg(0), variants, *width, *height, int(*seed), stdout); err != nil {
			fmt.Fprintln(stderr, "iiif-bench corpus:", err)
			return 1
		}
		return 0
	}
	items, err := corpus.Plan(corpus.Options{Count: *n, MinSide: *minSide, MaxSide: *maxSide, MaxJP2Side: *maxJP2,
		Formats: formats, Seed: *seed})
	if err != nil {
		fmt.Fprintln(stderr, "iiif-bench corpus:", err)
		return 2
	}
	if *dryRun {
		for _, it := range items {
			fmt.Fprintf(stdout, "%s\t%d×%d\n", it.File(), it.Width, it.Height)
		}
		return 0
	}
	if err := corpus.Generate(fs.Arg(0), items, stdout); err != nil {
		fmt.Fprintln(stderr, "iiif-bench corpus:", err)
		return 1
	}
	return 0
}

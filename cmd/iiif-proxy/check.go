package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/iiif-proxy/iiif-proxy/internal/config"
	"github.com/iiif-proxy/iiif-proxy/internal/progress"
	"github.com/iiif-proxy/iiif-proxy/proxy"
	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/renderer/fallback"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// checkCmd runs "iiif-proxy check": every image of a corpus is described
// (what info.json is made of) and rendered once small, in process with the
// configured renderer (the server's code from the renderer down, Fallbacks
// included) or over HTTP against a running server (-url); every failure is
// reported with its reason, and the exit status is 1 when any failed. eLife
// ran such a pass over its corpus before every upgrade of its image server.
//
//	iiif-proxy check                      every file under TilePath
//	iiif-proxy check -list ids.txt -json  the identifiers in ids.txt, as JSON
//	iiif-proxy check -url http://127.0.0.1:12415/iiif/3 scan.tif
func checkCmd(args []string) int {
	fs := newFlagSet("check", "check [-config FILE] [-tile-path DIR] [-ext .tif,…] [-url BASE] [-list FILE] [-j N] [-json] [-size N] [IDENTIFIER…]\n\n"+
		"Describes and renders every image (the arguments, the -list, or every file under TilePath) and reports each\n"+
		"that fails and why; exit status 1 when any does. In process with the configured renderer, or against a\n"+
		"running server with -url.")
	file := fs.String("config", config.Find(), "Configuration file (TilePath, renderer settings, Fallbacks).")
	tilePath := fs.String("tile-path", "", "Directory of the images to check (default: TilePath from the configuration).")
	base := fs.String("url", "", "Check against this running server's IIIF base, e.g. http://127.0.0.1:12415/iiif/3, instead of in process.")
	list := fs.String("list", "", "File of identifiers, one a line (- for stdin), instead of walking TilePath.")
	jobs := fs.Int("j", runtime.NumCPU(), "Images checked at once.")
	asJSON := fs.Bool("json", false, "Print the report as JSON instead of a table.")
	exts := fs.String("ext", "", "When walking TilePath, only files with these extensions, comma-separated (e.g. .tif,.jp2); default every file.")
	size := fs.Int("size", 256, "Side of the sample render's bounding box, in pixels (full/!N,N).")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *jobs < 1 || *size < 1 {
		fmt.Fprintln(os.Stderr, "iiif-proxy check: -j and -size must be at least 1")
		return 2
	}
	over := serverFlags("tile-path", *tilePath)
	cfg, ok := loadToolConfig("check", *file, over, *base == "")
	if !ok {
		return 2
	}
	ids, err := toolIDs(fs.Args(), *list, cfg, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "iiif-proxy check:", err)
		return 2
	}
	if *exts != "" && fs.NArg() == 0 && *list == "" {
		ids = withExtensions(ids, strings.Split(*exts, ","))
	}
	var one func(ctx context.Context, id string) checkResult
	if *base != "" {
		c := &remoteChecker{base: strings.TrimRight(*base, "/"), size: *size,
			client: &http.Client{Timeout: cfg.RenderTimeout.Std() + 10*time.Second}}
		one = c.check
	} else {
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
		r, closeR, err := toolRenderer(cfg, *jobs, log)
		if err != nil {
			fmt.Fprintln(os.Stderr, "iiif-proxy check:", err)
			return 1
		}
		defer closeR()
		c := &localChecker{r: r, size: *size, timeout: cfg.RenderTimeout.Std()}
		one = c.check
	}
	start := time.Now()
	results := runChecks(ids, *jobs, one, progress.New(os.Stderr, "check", len(ids), progress.Options{}))
	rep := newCheckReport(results, time.Since(start))
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		rep.print(os.Stdout)
	}
	if rep.Failed > 0 {
		return 1
	}
	return 0
}

// withExtensions keeps the identifiers ending in one of exts (".tif" or
// "tif"; case-insensitive).
func withExtensions(ids, exts []string) []string {
	var out []string
	for _, id := range ids {
		e := strings.ToLower(path.Ext(id))
		for _, x := range exts {
			if x = strings.ToLower(strings.TrimSpace(x)); x != "" && (e == x || e == "."+x) {
				out = append(out, id)
				break
			}
		}
	}
	return out
}

// checkResult is what check found of one image.
type checkResult struct {
	ID       string  `json:"id"`
	OK       bool    `json:"ok"`
	Stage    string  `json:"stage,omitempty"`    // where it failed: "info" or "render"
	Status   int     `json:"status"`             // the HTTP status the server answers (or answered) with
	Error    string  `json:"error,omitempty"`    // why
	Fallback string  `json:"fallback,omitempty"` // served from this sibling (Fallbacks)
	Width    int     `json:"width,omitempty"`
	Height   int     `json:"height,omitempty"`
	Ms       float64 `json:"ms"`
}

// runChecks checks ids with jobs workers, in order of ids.
func runChecks(ids []string, jobs int, one func(context.Context, string) checkResult, bar *progress.Bar) []checkResult {
	stop := bar.Run()
	defer stop()
	results := make([]checkResult, len(ids))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(jobs, max(len(ids), 1)) {
		wg.Go(func() {
			for i := range next {
				t := time.Now()
				r := one(context.Background(), ids[i])
				r.ID, r.Ms = ids[i], float64(time.Since(t).Microseconds())/1000
				results[i] = r
				bar.Done(!r.OK)
			}
		})
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

// localChecker checks an image in process: describe, then render
// full/!size,size, as a request for a thumbnail would.
type localChecker struct {
	r       renderer.Renderer
	size    int
	timeout time.Duration
}

func (c *localChecker) check(ctx context.Context, id string) checkResult {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	fail := func(stage string, err error) checkResult {
		code, _ := proxy.Status(err)
		return checkResult{Stage: stage, Status: code, Error: oneLine(err.Error())}
	}
	// A source that changes under the render (or, with Fallbacks, turns
	// out to be undecodable) is described again, as the proxy does.
	var err error
	for range 3 {
		var src *renderer.Source
		src, err = c.r.Info(ctx, id)
		if err != nil {
			return fail("info", err)
		}
		r := checkResult{Width: src.Width, Height: src.Height}
		if alt, ok := fallback.From(src); ok {
			r.Fallback = alt
		}
		req, perr := rules.Parse(rules.V3, escapedPath(id, fmt.Sprintf("/full/!%d,%d/0/default.jpg", c.size, c.size)))
		if perr != nil {
			return fail("render", perr)
		}
		res, rerr := req.Resolve(rules.ImageInfo{Width: src.Width, Height: src.Height}, c.r.Limits())
		if rerr != nil {
			return fail("render", rerr)
		}
		var img renderer.Image
		img, err = c.r.Render(ctx, src, res)
		if errors.Is(err, renderer.ErrSourceChanged) {
			continue
		}
		if err != nil {
			return fail("render", err)
		}
		if len(img.Body) == 0 {
			return fail("render", errors.New("the render is empty"))
		}
		r.OK, r.Status = true, http.StatusOK
		return r
	}
	return fail("render", err)
}

// remoteChecker checks an image against a running server: its info.json,
// then full/!size,size.
type remoteChecker struct {
	base   string // the IIIF base, version included: http://host:port/iiif/3
	size   int
	client *http.Client
}

func (c *remoteChecker) check(ctx context.Context, id string) checkResult {
	var info struct{ Width, Height int }
	code, body, err := c.get(ctx, escapedPath(id, "/info.json"))
	if err != nil || code != http.StatusOK {
		return remoteFailure("info", code, body, err)
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return checkResult{Stage: "info", Status: code, Error: "info.json is not JSON: " + err.Error()}
	}
	code, body, err = c.get(ctx, escapedPath(id, fmt.Sprintf("/full/!%d,%d/0/default.jpg", c.size, c.size)))
	if err != nil || code != http.StatusOK {
		return remoteFailure("render", code, body, err)
	}
	if len(body) == 0 {
		return checkResult{Stage: "render", Status: code, Error: "the render is empty"}
	}
	return checkResult{OK: true, Status: code, Width: info.Width, Height: info.Height}
}

func (c *remoteChecker) get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/"+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	return resp.StatusCode, body, err
}

func remoteFailure(stage string, code int, body []byte, err error) checkResult {
	if err != nil {
		return checkResult{Stage: stage, Error: oneLine(err.Error())}
	}
	msg := string(body)
	if len(msg) > 500 {
		msg = msg[:500]
	}
	return checkResult{Stage: stage, Status: code, Error: oneLine(msg)}
}

// checkReport is check's output.
type checkReport struct {
	Checked   int           `json:"checked"`
	Failed    int           `json:"failed"`
	Fallbacks int           `json:"fallbacks"`
	Seconds   float64       `json:"seconds"`
	Problems  []checkResult `json:"problems"` // every failure, and every image served from a fallback
}

func newCheckReport(results []checkResult, took time.Duration) checkReport {
	rep := checkReport{Checked: len(results), Seconds: took.Seconds(), Problems: []checkResult{}}
	for _, r := range results {
		if !r.OK {
			rep.Failed++
		}
		if r.Fallback != "" {
			rep.Fallbacks++
		}
		if !r.OK || r.Fallback != "" {
			rep.Problems = append(rep.Problems, r)
		}
	}
	return rep
}

// print writes the report as a table of the images that failed, those
// served from a fallback, and a summary line.
func (rep checkReport) print(w io.Writer) {
	if rep.Failed > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "IDENTIFIER\tSTAGE\tSTATUS\tPROBLEM")
		for _, r := range rep.Problems {
			if !r.OK {
				status := "-"
				if r.Status != 0 {
					status = fmt.Sprint(r.Status)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, r.Stage, status, r.Error)
			}
		}
		tw.Flush()
	}
	if rep.Fallbacks > 0 {
		fmt.Fprintln(w, "served from a fallback (Fallbacks):")
		for _, r := range rep.Problems {
			if r.Fallback != "" {
				fmt.Fprintf(w, "  %s from %s\n", r.ID, r.Fallback)
			}
		}
	}
	fmt.Fprintf(w, "checked %d images in %s: %d failed", rep.Checked, time.Duration(rep.Seconds*float64(time.Second)).Round(time.Millisecond), rep.Failed)
	if rep.Fallbacks > 0 {
		fmt.Fprintf(w, ", %d served from a fallback", rep.Fallbacks)
	}
	fmt.Fprintln(w)
}

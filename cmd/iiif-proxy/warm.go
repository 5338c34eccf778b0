package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/iiif-proxy/iiif-proxy/internal/config"
	"github.com/iiif-proxy/iiif-proxy/internal/iiif"
	"github.com/iiif-proxy/iiif-proxy/internal/progress"
	"github.com/iiif-proxy/iiif-proxy/store"
)

// warmCmd runs "iiif-proxy warm": for each identifier it asks for what a
// viewer's first views need, so that an exhibit's first visitors get hits:
// info.json, every size info.json lists (the thumbnails Mirador and
// search pages use), and every tile of the pyramid from its one-tile top
// down to the level OpenSeadragon draws the whole image at in a viewport
// (-viewport), plus -depth finer levels (the first zooms). The tiles are
// computed as the harness's viewer workload computes them
// (internal/iiif: OpenSeadragon's IIIFTileSource), so what warm fills
// is what such a viewer asks for.
//
// Against a running server (-url), over HTTP, so that its caches fill; or,
// without -url, in process: the server's own handler on an in-memory
// listener, writing the cache directory directly (the server must not be
// running: its stores are locked while it is).
func warmCmd(args []string) int {
	fs := newFlagSet("warm", "warm [-config FILE] [-url BASE | -api 3 -tile-path DIR -cache-dir DIR] [-list FILE] [-rate N] [-j N] [-viewport WxH] [-depth N] [IDENTIFIER…]\n\n"+
		"Pre-renders what a viewer's first views of each image need (info.json, its sizes, the pyramid's tiles down to\n"+
		"the level a viewport shows the whole image at, and -depth finer levels), against a running server (-url) or\n"+
		"in process into the cache directory (the server stopped).")
	file := fs.String("config", config.Find(), "Configuration file (Address, IIIFWebPath; CacheDir and the rest in process).")
	base := fs.String("url", "", "IIIF base of the running server to warm, version included, e.g. http://127.0.0.1:12415/iiif/3 (default: in process).")
	list := fs.String("list", "", "File of identifiers, one a line (- for stdin).")
	rate := fs.Float64("rate", 20, "Most requests a second, all workers together; 0 means no limit.")
	jobs := fs.Int("j", 2, "Requests in flight at once.")
	viewport := fs.String("viewport", "1920x1080", "The viewer's size on screen, WIDTHxHEIGHT.")
	api := fs.Int("api", 3, "In process: the IIIF version of the URLs warmed, 3, 2, or 0 for RAIS's unversioned form (info.json is cached per version; images are shared).")
	depth := fs.Int("depth", 1, "Levels finer than the whole-image view to warm (each has about four times the tiles); 0 stops at it.")
	tilePath := fs.String("tile-path", "", "In process: directory of the images (default: TilePath from the configuration).")
	cacheDir := fs.String("cache-dir", "", "In process: the cache directory to fill (default: CacheDir from the configuration).")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	over := serverFlags("tile-path", *tilePath, "cache-dir", *cacheDir)
	vp, err := iiif.ParseViewport(*viewport)
	if err != nil || *jobs < 1 || *depth < 0 || *rate < 0 || (*api != 0 && *api != 2 && *api != 3) {
		fmt.Fprintln(os.Stderr, "iiif-proxy warm: -viewport WxH, -j ≥ 1, -depth ≥ 0, -rate ≥ 0, -api 3, 2 or 0:", err)
		return 2
	}
	cfg, ok := loadToolConfig("warm", *file, over, *base == "")
	if !ok {
		return 2
	}
	ids, err := toolIDs(fs.Args(), *list, cfg, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "iiif-proxy warm:", err)
		return 2
	}
	w := &warmer{vp: vp, depth: *depth, jobs: *jobs, rate: *rate}
	if *base != "" {
		w.base = strings.TrimRight(*base, "/")
		w.client = &http.Client{Timeout: cfg.RenderTimeout.Std() + 10*time.Second}
	} else {
		stop, err := w.inProcess(cfg, *api)
		if err != nil {
			fmt.Fprintln(os.Stderr, "iiif-proxy warm:", err)
			return 1
		}
		defer stop()
	}
	rep := w.run(ids, os.Stderr)
	rep.print(os.Stdout)
	if rep.Failed > 0 || rep.ImagesFailed > 0 {
		return 1
	}
	return 0
}

// warmer fills a server's caches with what viewers ask for first.
type warmer struct {
	base   string // IIIF base, version included
	client *http.Client
	vp     iiif.Viewport
	depth  int
	jobs   int
	rate   float64
}

// warmReport is what warm did.
type warmReport struct {
	Images, ImagesFailed int
	Requests, Failed     int
	Hits, Misses, Other  int // by X-Cache: already cached, rendered now, anything else
	Took                 time.Duration
	Problems             []string // the first failures, for the operator
}

func (r *warmReport) problem(s string) {
	if len(r.Problems) < 20 {
		r.Problems = append(r.Problems, s)
	}
}

func (r warmReport) print(w io.Writer) {
	for _, p := range r.Problems {
		fmt.Fprintln(w, "failed:", p)
	}
	fmt.Fprintf(w, "warmed %d images (%d failed) with %d requests in %s: %d rendered, %d already cached, %d other, %d failed\n",
		r.Images, r.ImagesFailed, r.Requests, r.Took.Round(time.Millisecond), r.Misses, r.Hits, r.Other, r.Failed)
}

// run warms ids: first every info.json (the plan needs them), then the
// planned requests, rate-limited, with a progress bar on out.
func (w *warmer) run(ids []string, out io.Writer) warmReport {
	start := time.Now()
	rep := warmReport{Images: len(ids)}
	var mu sync.Mutex // protects rep
	tick := w.limiter()
	defer tick.stop()

	paths := make([][]string, len(ids))
	w.each(len(ids), progress.New(out, "info", len(ids), progress.Options{}), tick, func(i int) bool {
		body, xc, err := w.get(w.prefix(ids[i]) + "info.json")
		var im iiif.Image
		var sizes []iiif.Level
		if err == nil {
			im, sizes, err = parseInfo(ids[i], body)
		}
		mu.Lock()
		defer mu.Unlock()
		rep.count(xc, err)
		if err != nil {
			rep.ImagesFailed++
			rep.problem(fmt.Sprintf("%s/info.json: %v", ids[i], err))
			return false
		}
		paths[i] = plan(im, sizes, w.vp, w.depth)
		return true
	})
	var all []string
	for i, ps := range paths {
		for _, p := range ps {
			all = append(all, w.prefix(ids[i])+p)
		}
	}
	w.each(len(all), progress.New(out, "warm", len(all), progress.Options{}), tick, func(i int) bool {
		_, xc, err := w.get(all[i])
		mu.Lock()
		defer mu.Unlock()
		rep.count(xc, err)
		if err != nil {
			rep.problem(fmt.Sprintf("%s: %v", all[i], err))
		}
		return err == nil
	})
	rep.Took = time.Since(start)
	return rep
}

func (r *warmReport) count(xcache string, err error) {
	r.Requests++
	switch {
	case err != nil:
		r.Failed++
	case xcache == "HIT":
		r.Hits++
	case xcache == "MISS":
		r.Misses++
	default:
		r.Other++
	}
}

// prefix is the URL of id up to and including "/{identifier}/", the
// identifier one escaped segment, as the harness (and a viewer) forms it.
func (w *warmer) prefix(id string) string { return w.base + "/" + url.PathEscape(id) + "/" }

// each runs f(0…n-1) with w.jobs workers, each waiting for the limiter
// before its request, counting on bar.
func (w *warmer) each(n int, bar *progress.Bar, tick *limiter, f func(i int) bool) {
	stop := bar.Run()
	defer stop()
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(w.jobs, max(n, 1)) {
		wg.Go(func() {
			for i := range next {
				tick.wait()
				bar.Done(!f(i))
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// get fetches url and returns its body and X-Cache; a status other than
// 200 is an error naming it and the server's message.
func (w *warmer) get(u string) ([]byte, string, error) {
	resp, err := w.client.Get(u)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		// iiif-proxy's error bodies begin with the status already.
		msg := oneLine(string(body))
		if !strings.HasPrefix(msg, resp.Status) {
			msg = resp.Status + ": " + msg
		}
		return nil, "", errors.New(msg)
	}
	return body, resp.Header.Get("X-Cache"), nil
}

// parseInfo reads an info.json: the pyramid (iiif.ParseInfo) and its
// sizes, each as a one-tile level (TileURL asks for such a level as the
// whole image at its size: "full/{w},{h}/0/default.jpg").
func parseInfo(id string, body []byte) (iiif.Image, []iiif.Level, error) {
	im, err := iiif.ParseInfo(id, body)
	if err != nil {
		return im, nil, err
	}
	var doc struct {
		Sizes []struct{ Width, Height int }
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return im, nil, err
	}
	var sizes []iiif.Level
	for _, s := range doc.Sizes {
		if s.Width > 0 && s.Height > 0 && s.Width <= im.Width && s.Height <= im.Height {
			sizes = append(sizes, iiif.Level{Width: s.Width, Height: s.Height, TileWidth: s.Width + 1, TileHeight: s.Height + 1,
				Cols: 1, Rows: 1, Scale: 1})
		}
	}
	return im, sizes, nil
}

// plan lists the requests after "/{identifier}/" that warm im: its
// sizes, then every tile of each level from the coarsest down to the one
// a viewer in vp shows the whole image at, and depth finer levels, in the
// order a viewer asks for them (coarse first). Duplicates (a size that is
// also a one-tile level) are asked once.
func plan(im iiif.Image, sizes []iiif.Level, vp iiif.Viewport, depth int) []string {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, s := range sizes {
		add(im.TileURL(s, 0, 0))
	}
	levels := im.Levels()
	home := iiif.LevelFor(levels, im.FitZoom(vp))
	for li := len(levels) - 1; li >= max(home-depth, 0); li-- {
		l := levels[li]
		for row := range l.Rows {
			for col := range l.Cols {
				add(im.TileURL(l, col, row))
			}
		}
	}
	return out
}

// limiter spaces requests at most rate a second across workers; a zero
// rate does not wait.
type limiter struct {
	t    *time.Ticker
	done chan struct{}
}

func (w *warmer) limiter() *limiter {
	l := &limiter{done: make(chan struct{})}
	if w.rate > 0 {
		l.t = time.NewTicker(time.Duration(float64(time.Second) / w.rate))
	}
	return l
}

func (l *limiter) wait() {
	if l.t != nil {
		select {
		case <-l.t.C:
		case <-l.done:
		}
	}
}

func (l *limiter) stop() {
	if l.t != nil {
		l.t.Stop()
	}
	close(l.done)
}

// inProcess builds the server from cfg, waits for its cache tiers to open,
// and serves its handler on an in-memory listener for w's client. It fails
// when a tier cannot be opened (most likely locked by the running server:
// warm that with -url). stop shuts it all down, closing the stores.
func (w *warmer) inProcess(cfg config.Config, api int) (stop func(), err error) {
	if cfg.CacheDir == "" {
		return nil, errors.New("CacheDir is empty: there is no cache to warm")
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	app, err := New(cfg, quiet, new(slog.LevelVar))
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Minute)
	for _, s := range app.stores {
		for s.State() == store.StateOpening && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // the store opens in the background and says so only by its state
		}
		if st := s.State(); st != store.StateOK {
			app.close()
			return nil, fmt.Errorf("a cache tier under %s is %s (is the server running? then warm it with -url)", cfg.CacheDir, st)
		}
	}
	ln := fasthttputil.NewInmemoryListener()
	srv := app.proxy.Server()
	served := make(chan struct{})
	go func() { srv.Serve(ln); close(served) }()
	w.base = "http://in-process" + strings.TrimRight(cfg.IIIFWebPath, "/")
	if api != 0 {
		w.base += "/" + strconv.Itoa(api)
	}
	w.client = &http.Client{Transport: &http.Transport{
		DialContext:         func(context.Context, string, string) (net.Conn, error) { return ln.Dial() },
		MaxIdleConnsPerHost: w.jobs,
	}}
	var once atomic.Bool
	return func() {
		if once.Swap(true) {
			return
		}
		w.client.CloseIdleConnections()
		srv.Shutdown()
		ln.Close()
		<-served
		app.close()
	}, nil
}

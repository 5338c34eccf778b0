// Package workload generates the request streams of the load harness: what
// a deep-zoom viewer, a search-result page, a metadata crawler or a mix of
// them asks an IIIF image server for.
//
// A Generator is one simulated user: deterministic for a seed and a user
// number, it never blocks and never looks at responses, so the same stream
// can be replayed against two servers (the harness's -compare) and sent on
// a fixed schedule (open loop). Everything a stream depends on — image sizes,
// tile sizes, the version — is read from info.json once, before the run.
//
// Workloads:
//   - viewer: OpenSeadragon. A session opens a random image (info.json), shows it
//     fitted to the viewport and then walks: each step pans by up to half a
//     viewport or zooms in or out by 2 about a point in view, between the
//     fitted zoom and 1.1 screen pixels per image pixel (OpenSeadragon's
//     maxZoomPixelRatio). Each view asks for every tile it covers that the
//     session has not fetched yet (the viewer's own tile cache).
//   - thumbs: search-result pages: PageSize thumbnails of consecutive
//     identifiers, "full/{w},/0/default.jpg".
//   - info: info.json of random identifiers.
//   - mix: each request is a tile (from viewer sessions), a thumbnail or an
//     info.json, chosen by Weights; the image is drawn from a Zipf
//     distribution of exponent Skew over the corpus, the same popularity
//     order for every user.
//
// Spec.NewPopular makes viewer sessions for request traces (iiif-bench
// trace gen): images by Zipf popularity, and in each session a dive to a
// point of interest of the image, itself drawn by Zipf popularity.
package workload

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/iiif-proxy/iiif-proxy/internal/iiif"
)

// Tiers by URL shape, named as iiif-proxy's X-Cache-Tier names them; the
// harness files a response under the server's X-Cache-Tier when it sends one.
const (
	TierTile      = "tile"
	TierThumbnail = "thumbnail"
	TierInfo      = "info"
	TierOther     = "other"
)

// Request is one HTTP GET.
type Request struct {
	URL  string // absolute
	Tier string // what it is by its shape: TierTile, TierThumbnail, TierInfo
}

// Generator is one simulated user's request stream. Not safe for
// concurrent use.
type Generator interface {
	Next() Request
}

// Corpus is one server's view of the images: a base URL and the images'
// info, in the same identifier order on every server.
type Corpus struct {
	Base   string // e.g. http://127.0.0.1:12415/iiif/3, no trailing slash
	Images []iiif.Image
}

// Prefix is the URL of image i up to and including "/{identifier}/", the
// identifier percent-encoded as one path segment.
func (c Corpus) Prefix(i int) string {
	return c.Base + "/" + url.PathEscape(c.Images[i].ID) + "/"
}

// Workload names.
const (
	Viewer   = "viewer"
	Thumbs   = "thumbs"
	Info     = "info"
	Stampede = "stampede"
	Mix      = "mix"
)

// Names lists the workloads.
var Names = []string{Viewer, Thumbs, Info, Stampede, Mix}

// Spec configures a workload.
type Spec struct {
	// Name is one of Names.
	Name string
	// Viewport is the viewer's size on screen. Zero means 1280 × 800.
	Viewport iiif.Viewport
	// Walk is the number of pan or zoom steps in a viewer session before it
	// opens another image. Zero means 20.
	Walk int
	// ThumbWidth is the thumbnail width. Zero means 200.
	ThumbWidth int
	// PageSize is the thumbnails on a search-result page, at most the corpus
	// size. Zero means 24.
	PageSize int
	// Skew is the Zipf exponent of image popularity in the mix: 0 is uniform,
	// 1 the classic web-cache skew. Must be ≥ 0.
	Skew float64
	// Weights are the mix's shares of tile, thumbnail and info requests.
	// Zero means DefaultWeights.
	Weights Weights
	// Seed makes streams reproducible; users differ by their number.
	Seed uint64
}

// Weights are relative shares of requests by tier in the mix.
type Weights struct{ Tile, Thumbnail, Info float64 }

// DefaultWeights is roughly what a digital library sees: viewers dominate.
var DefaultWeights = Weights{Tile: 80, Thumbnail: 15, Info: 5}

// ParseWeights reads "tile=80,thumbnail=15,info=5"; tiers left out weigh 0.
func ParseWeights(s string) (Weights, error) {
	var w Weights
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		f, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil || f < 0 {
			return w, fmt.Errorf("weights %q: want tile=N,thumbnail=N,info=N with N ≥ 0", s)
		}
		switch k {
		case TierTile:
			w.Tile = f
		case TierThumbnail:
			w.Thumbnail = f
		case TierInfo:
			w.Info = f
		default:
			return w, fmt.Errorf("weights %q: unknown tier %q (tile, thumbnail, info)", s, k)
		}
	}
	if w.Tile+w.Thumbnail+w.Info == 0 {
		return w, fmt.Errorf("weights %q: all zero", s)
	}
	return w, nil
}

func (w Weights) String() string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	return "tile=" + f(w.Tile) + ",thumbnail=" + f(w.Thumbnail) + ",info=" + f(w.Info)
}

// WithDefaults returns s with zero fields set to their defaults.
func (s Spec) WithDefaults() Spec {
	if s.Viewport == (iiif.Viewport{}) {
		s.Viewport = iiif.Viewport{Width: 1280, Height: 800}
	}
	if s.Walk == 0 {
		s.Walk = 20
	}
	if s.ThumbWidth == 0 {
		s.ThumbWidth = 200
	}
	if s.PageSize == 0 {
		s.PageSize = 24
	}
	if s.Weights == (Weights{}) {
		s.Weights = DefaultWeights
	}
	return s
}

// Validate reports every bad field at once.
func (s Spec) Validate() error {
	var errs []error
	known := false
	for _, n := range Names {
		known = known || n == s.Name
	}
	if !known {
		errs = append(errs, fmt.Errorf("workload %q: want one of %s", s.Name, strings.Join(Names, ", ")))
	}
	if s.Viewport.Width < 1 || s.Viewport.Height < 1 {
		errs = append(errs, fmt.Errorf("viewport %d×%d: must be positive", s.Viewport.Width, s.Viewport.Height))
	}
	if s.Walk < 1 {
		errs = append(errs, fmt.Errorf("walk %d: must be ≥ 1", s.Walk))
	}
	if s.ThumbWidth < 1 {
		errs = append(errs, fmt.Errorf("thumbnail width %d: must be ≥ 1", s.ThumbWidth))
	}
	if s.PageSize < 1 {
		errs = append(errs, fmt.Errorf("page size %d: must be ≥ 1", s.PageSize))
	}
	if s.Skew < 0 {
		errs = append(errs, fmt.Errorf("skew %v: must be ≥ 0", s.Skew))
	}
	if w := s.Weights; w.Tile < 0 || w.Thumbnail < 0 || w.Info < 0 || w.Tile+w.Thumbnail+w.Info == 0 {
		errs = append(errs, fmt.Errorf("weights %v: must be ≥ 0 and not all zero", w))
	}
	return errors.Join(errs...)
}

// ErrEmpty says a corpus has no images.
var ErrEmpty = errors.New("workload: no images")

// New returns user number user's generator over c. Stampede has no
// generator (the harness runs it in rounds); New returns an error for it.
func (s Spec) New(c Corpus, user int) (Generator, error) {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if len(c.Images) == 0 {
		return nil, ErrEmpty
	}
	rng := rand.New(rand.NewPCG(s.Seed, uint64(user)+1))
	uniform := func() int { return rng.IntN(len(c.Images)) }
	switch s.Name {
	case Viewer:
		return newViewer(c, s, rng, uniform, true), nil
	case Thumbs:
		return &thumbs{c: c, rng: rng, page: min(s.PageSize, len(c.Images)), width: s.ThumbWidth}, nil
	case Info:
		return &infos{c: c, pick: uniform}, nil
	case Mix:
		return newMix(c, s, rng), nil
	}
	return nil, fmt.Errorf("workload %q has no request stream", s.Name)
}

// InfoURL is the info.json request of image i.
func (c Corpus) InfoURL(i int) Request {
	return Request{URL: c.Prefix(i) + "info.json", Tier: TierInfo}
}

// ThumbURL is a width-w thumbnail of image i, "full/{w},/0/default.jpg"
// (canonical in 2.1, and what search-result pages send to 3.0 servers too).
func (c Corpus) ThumbURL(i, w int) Request {
	return Request{URL: c.Prefix(i) + "full/" + strconv.Itoa(w) + ",/0/default.jpg", Tier: TierThumbnail}
}

// Interface guards.
var (
	_ Generator = (*viewer)(nil)
	_ Generator = (*thumbs)(nil)
	_ Generator = (*infos)(nil)
	_ Generator = (*mix)(nil)
)

// infos asks for info.json of images chosen by pick.
type infos struct {
	c    Corpus
	pick func() int
}

func (g *infos) Next() Request { return g.c.InfoURL(g.pick()) }

// thumbs walks search-result pages: a random page of consecutive images.
type thumbs struct {
	c           Corpus
	rng         *rand.Rand
	page, width int
	next, left  int // the page being sent: next image, images left
}

func (g *thumbs) Next() Request {
	if g.left == 0 {
		pages := (len(g.c.Images) + g.page - 1) / g.page
		g.next, g.left = g.rng.IntN(pages)*g.page, g.page
	}
	i := g.next % len(g.c.Images)
	g.next++
	g.left--
	return g.c.ThumbURL(i, g.width)
}

// Zipf draws ranks 0..n-1 with P(k) ∝ 1/(k+1)^s, for any s ≥ 0 (the
// standard library's rand.Zipf needs s > 1).
type Zipf struct {
	cdf []float64 // cdf[k] = P(rank ≤ k)
}

// NewZipf returns a Zipf distribution over n ranks with exponent s.
func NewZipf(n int, s float64) *Zipf {
	z := &Zipf{cdf: make([]float64, n)}
	sum := 0.0
	for k := range n {
		sum += 1 / math.Pow(float64(k+1), s)
		z.cdf[k] = sum
	}
	for k := range z.cdf {
		z.cdf[k] /= sum
	}
	return z
}

// Rank draws a rank; 0 is the most popular.
func (z *Zipf) Rank(rng *rand.Rand) int {
	u := rng.Float64()
	k := sort.SearchFloat64s(z.cdf, u)
	return min(k, len(z.cdf)-1)
}

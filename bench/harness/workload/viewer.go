package workload

import (
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/iiif-proxy/iiif-proxy/internal/iiif"
)

// MaxZoom is the closest a viewer zooms in, in screen pixels per image pixel
// (OpenSeadragon's default maxZoomPixelRatio).
const MaxZoom = 1.1

// zoomShare is the share of walk steps that zoom rather than pan.
const zoomShare = 0.4

// viewer is an OpenSeadragon session after session; see the package doc.
type viewer struct {
	c        Corpus
	vp       iiif.Viewport
	walk     int
	rng      *rand.Rand
	pick     func() int
	sendInfo bool // ask for info.json when a session opens (not in the mix, which weighs info on its own)

	// The open session.
	im     iiif.Image
	levels []iiif.Level
	prefix string // "" before the first session
	view   iiif.View
	fit    float64
	steps  int
	seen   map[iiif.Tile]struct{} // tiles this session has fetched
	// dive, when set, picks a point of interest for each session: the
	// session zooms towards it by doubling before it walks at random.
	dive   func(image int) Point
	goal   iiif.View // the point of interest, until reached
	diving bool

	queue   []Request // requests of the current view
	qi      int       // next in queue
	scratch []iiif.Tile
}

func newViewer(c Corpus, s Spec, rng *rand.Rand, pick func() int, sendInfo bool) *viewer {
	return &viewer{c: c, vp: s.Viewport, walk: s.Walk, rng: rng, pick: pick, sendInfo: sendInfo,
		seen: map[iiif.Tile]struct{}{}}
}

func (g *viewer) Next() Request {
	// Bounded: a session opens with at least one tile, and a session that
	// has walked g.walk steps is replaced.
	for g.qi == len(g.queue) {
		g.queue, g.qi = g.queue[:0], 0
		if g.prefix == "" || g.steps >= g.walk {
			g.open(g.pick())
		} else {
			g.step()
		}
	}
	r := g.queue[g.qi]
	g.qi++
	return r
}

// open starts a session on image i at the home view.
func (g *viewer) open(i int) {
	g.im = g.c.Images[i]
	g.levels = g.im.Levels()
	g.prefix = g.c.Prefix(i)
	g.fit = g.im.FitZoom(g.vp)
	g.view = g.im.Home(g.vp)
	g.steps = 0
	clear(g.seen)
	if g.dive != nil {
		p := g.dive(i)
		g.goal = p.View(g.im, g.vp)
		g.diving = g.goal.Zoom > g.fit*(1+1e-9)
	}
	if g.sendInfo {
		g.queue = append(g.queue, Request{URL: g.prefix + "info.json", Tier: TierInfo})
	}
	g.show()
}

// show queues the tiles of the current view not fetched yet.
func (g *viewer) show() {
	g.scratch = g.im.AppendVisible(g.scratch[:0], g.levels, g.view, g.vp)
	for _, t := range g.scratch {
		if _, ok := g.seen[t]; ok {
			continue
		}
		g.seen[t] = struct{}{}
		g.queue = append(g.queue, Request{URL: g.prefix + g.im.TileURL(g.levels[t.Level], t.Col, t.Row), Tier: TierTile})
	}
}

// step pans or zooms once and queues what the new view needs.
func (g *viewer) step() {
	g.steps++
	v := g.view
	maxZoom := math.Max(g.fit, MaxZoom)
	canIn, canOut := v.Zoom < maxZoom*(1-1e-9), v.Zoom > g.fit*(1+1e-9)
	hw, hh := float64(g.vp.Width)/(2*v.Zoom), float64(g.vp.Height)/(2*v.Zoom)
	if g.diving {
		// Double the zoom, centred on the point of interest, as a viewer
		// zooming into a detail does (a click there, or a drag and a scroll).
		z := math.Min(v.Zoom*2, g.goal.Zoom)
		g.diving = z < g.goal.Zoom*(1-1e-9)
		g.view = iiif.View{X: g.goal.X, Y: g.goal.Y, Zoom: z}
		g.show()
		return
	}
	// At the fitted zoom a viewer can only zoom in: panning shows nothing new.
	if zoom := !canOut || g.rng.Float64() < zoomShare; zoom && (canIn || canOut) {
		f := 0.5
		if canIn && (!canOut || g.rng.IntN(2) == 0) {
			f = 2
		}
		// Zoom about a point in view, as a click or a scroll wheel does:
		// that point stays where it is on screen.
		px, py := v.X+(g.rng.Float64()*2-1)*hw, v.Y+(g.rng.Float64()*2-1)*hh
		z := math.Min(math.Max(v.Zoom*f, g.fit), maxZoom)
		r := v.Zoom / z
		v = iiif.View{X: px + (v.X-px)*r, Y: py + (v.Y-py)*r, Zoom: z}
	} else {
		// Pan by up to half a viewport each way.
		v.X += (g.rng.Float64()*2 - 1) * hw
		v.Y += (g.rng.Float64()*2 - 1) * hh
	}
	if v.Zoom <= g.fit*(1+1e-9) {
		v = g.im.Home(g.vp)
	}
	v.X = math.Min(math.Max(v.X, 0), float64(g.im.Width))
	v.Y = math.Min(math.Max(v.Y, 0), float64(g.im.Height))
	g.view = v
	g.show()
}

// mix draws each request's tier by weight and its image by popularity.
type mix struct {
	c       Corpus
	rng     *rand.Rand
	zipf    *Zipf
	perm    []int // rank → image: the same for every user
	w       Weights
	thumbW  int
	viewers *viewer
}

func newMix(c Corpus, s Spec, rng *rand.Rand) *mix {
	g := &mix{c: c, rng: rng, zipf: NewZipf(len(c.Images), s.Skew), w: s.Weights, thumbW: s.ThumbWidth,
		perm: rand.New(rand.NewPCG(s.Seed, 0)).Perm(len(c.Images))}
	g.viewers = newViewer(c, s, rng, g.pick, false)
	return g
}

func (g *mix) pick() int { return g.perm[g.zipf.Rank(g.rng)] }

func (g *mix) Next() Request {
	u := g.rng.Float64() * (g.w.Tile + g.w.Thumbnail + g.w.Info)
	switch {
	case u < g.w.Tile:
		return g.viewers.Next()
	case u < g.w.Tile+g.w.Thumbnail:
		return g.c.ThumbURL(g.pick(), g.thumbW)
	default:
		return g.c.InfoURL(g.pick())
	}
}

// Spot is where a stampede round aims: an image and a position in it, as
// fractions of the room there is, so that servers with the same images get
// the same URL.
type Spot struct {
	Image  int
	FX, FY float64 // in [0, 1)
}

// NewSpot draws a spot.
func NewSpot(rng *rand.Rand, images int) Spot {
	return Spot{Image: rng.IntN(images), FX: rng.Float64(), FY: rng.Float64()}
}

// StampedeURL is a request for a 512 × 512 region (clipped to the image) at
// spot s, scaled to half: "x,y,512,512/256,256/0/default.jpg" in 3.0,
// ".../256,/..." in 2.1. Its position is arbitrary, not tile-aligned, so a
// fresh spot is a guaranteed miss that needs a real render.
func (c Corpus) StampedeURL(s Spot) Request {
	im := c.Images[s.Image]
	w, h := min(512, im.Width), min(512, im.Height)
	x := int(s.FX * float64(im.Width-w+1))
	y := int(s.FY * float64(im.Height-h+1))
	b := []byte(c.Prefix(s.Image))
	for i, n := range []int{x, y, w, h} {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	b = append(b, '/')
	b = strconv.AppendInt(b, int64((w+1)/2), 10)
	b = append(b, ',')
	if im.Version != iiif.V2 {
		b = strconv.AppendInt(b, int64((h+1)/2), 10)
	}
	b = append(b, "/0/default.jpg"...)
	return Request{URL: string(b), Tier: TierTile}
}

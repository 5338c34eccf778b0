package workload

import (
	"math"
	"math/rand/v2"

	"github.com/iiif-proxy/iiif-proxy/internal/iiif"
)

// Point is a point of interest in an image, as fractions so that it fits
// any image: where it is, and how deep a viewer zooms to see it, from 0
// (one doubling past the fitted view) to 1 (the closest zoom, MaxZoom).
type Point struct {
	FX, FY, Depth float64 // in [0, 1)
}

// View is the view centred on p at its depth in im.
func (p Point) View(im iiif.Image, vp iiif.Viewport) iiif.View {
	fit := im.FitZoom(vp)
	top := math.Max(fit, MaxZoom)
	// Doublings from the fitted zoom: at least one, at most to MaxZoom.
	n := math.Log2(top / fit)
	z := top
	if n > 1 {
		z = fit * math.Pow(2, 1+math.Floor(p.Depth*n))
		z = math.Min(z, top)
	}
	return iiif.View{X: p.FX * float64(im.Width), Y: p.FY * float64(im.Height), Zoom: z}
}

// Popular configures viewer sessions over a corpus whose images and
// details are not equally popular: each session opens an image drawn by
// Zipf(Skew) popularity, then zooms, doubling, to a point of interest
// drawn by Zipf(Skew) over Points points of that image, then walks at
// random (pans and zooms) for the rest of its Walk steps. Every user shares
// the same popularity order of images and of points, so sessions of
// different users meet on the same tiles, as visitors of a digital library
// do on its famous pages and their famous details.
type Popular struct {
	// Points is the number of points of interest per image. Zero means 32.
	Points int
}

// NewPopular returns user number user's viewer over c with the popularity
// p describes; s gives the viewport, walk, skew and seed. Sessions open
// with info.json.
func (s Spec) NewPopular(c Corpus, user int, p Popular) (Generator, error) {
	s = s.WithDefaults()
	s.Name = Viewer
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if len(c.Images) == 0 {
		return nil, ErrEmpty
	}
	if p.Points <= 0 {
		p.Points = 32
	}
	rng := rand.New(rand.NewPCG(s.Seed, uint64(user)+1))
	imageZipf, pointZipf := NewZipf(len(c.Images), s.Skew), NewZipf(p.Points, s.Skew)
	// The same for every user: image popularity order and each image's points.
	shared := rand.New(rand.NewPCG(s.Seed, 0))
	perm := shared.Perm(len(c.Images))
	points := make([][]Point, len(c.Images))
	for i := range points {
		points[i] = make([]Point, p.Points)
		for k := range points[i] {
			points[i][k] = Point{FX: shared.Float64(), FY: shared.Float64(), Depth: shared.Float64()}
		}
	}
	g := newViewer(c, s, rng, func() int { return perm[imageZipf.Rank(rng)] }, true)
	g.dive = func(i int) Point { return points[i][pointZipf.Rank(rng)] }
	return g, nil
}

package trace

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/iiif-proxy/iiif-proxy/bench/harness/workload"
	"github.com/iiif-proxy/iiif-proxy/internal/iiif"
)

// GenOptions choose a generated trace.
type GenOptions struct {
	// Requests is the trace's length. Must be ≥ 1.
	Requests int
	// Users is the number of viewers whose sessions interleave, one request
	// each in turn. Zero means 8.
	Users int
	// Viewer configures the sessions: viewport, walk, Skew (the Zipf
	// exponent of image and point popularity) and Seed.
	Viewer workload.Spec
	// Points is the number of points of interest per image. Zero means 32.
	Points int
	// Crawl is the share of requests, in [0, 1), that a crawler sends:
	// every tile of every image once, image by image, level by level from
	// the coarsest, row by row; when it has walked everything it stops.
	Crawl float64
}

// Comment describes the options for a trace file's header.
func (o GenOptions) Comment() string {
	s := o.Viewer.WithDefaults()
	return fmt.Sprintf("requests=%d users=%d seed=%d skew=%g points=%d crawl=%g viewport=%dx%d walk=%d",
		o.Requests, o.users(), s.Seed, s.Skew, o.points(), o.Crawl, s.Viewport.Width, s.Viewport.Height, s.Walk)
}

func (o GenOptions) users() int {
	if o.Users == 0 {
		return 8
	}
	return o.Users
}

func (o GenOptions) points() int {
	if o.Points == 0 {
		return 32
	}
	return o.Points
}

// Validate reports every bad option at once.
func (o GenOptions) Validate() error {
	var errs []error
	if o.Requests < 1 {
		errs = append(errs, fmt.Errorf("requests %d: must be ≥ 1", o.Requests))
	}
	if o.Users < 0 {
		errs = append(errs, fmt.Errorf("users %d: must be ≥ 1", o.Users))
	}
	if o.Points < 0 {
		errs = append(errs, fmt.Errorf("points %d: must be ≥ 1", o.Points))
	}
	if !(o.Crawl >= 0 && o.Crawl < 1) {
		errs = append(errs, fmt.Errorf("crawl %v: must be in [0, 1)", o.Crawl))
	}
	s := o.Viewer.WithDefaults()
	s.Name = workload.Viewer
	if err := s.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Generate makes a trace over images, deterministic for the options: the
// same images and options give the same trace.
func Generate(images []iiif.Image, o GenOptions) ([]Request, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if len(images) == 0 {
		return nil, workload.ErrEmpty
	}
	// An empty base makes every URL "/{identifier}/…".
	c := workload.Corpus{Images: images}
	users := make([]workload.Generator, o.users())
	sessions := make([]int, len(users))
	for u := range users {
		g, err := o.Viewer.NewPopular(c, u, workload.Popular{Points: o.points()})
		if err != nil {
			return nil, err
		}
		users[u] = g
	}
	var crawl *crawler
	if o.Crawl > 0 {
		crawl = &crawler{c: c}
	}
	rng := rand.New(rand.NewPCG(o.Viewer.Seed, 1<<40))
	out := make([]Request, 0, o.Requests)
	for u := 0; len(out) < o.Requests; {
		if crawl != nil && rng.Float64() < o.Crawl {
			if p, ok := crawl.next(); ok {
				out = append(out, Request{Path: p[1:], Session: "crawl"})
				continue
			}
			crawl = nil
		}
		q := users[u].Next()
		if strings.HasSuffix(q.URL, "/info.json") {
			sessions[u]++
		}
		out = append(out, Request{Path: q.URL[1:], Session: "u" + strconv.Itoa(u) + "." + strconv.Itoa(sessions[u])})
		u = (u + 1) % len(users)
	}
	return out, nil
}

// crawler walks every tile of every image once.
type crawler struct {
	c                 workload.Corpus
	image, level, col int
	row               int
	levels            []iiif.Level // of image, coarsest first
}

// next returns the next tile's URL, or false when every tile was sent.
func (k *crawler) next() (string, bool) {
	// Bounded: each pass moves to the next tile, level or image.
	for k.image < len(k.c.Images) {
		im := k.c.Images[k.image]
		if k.levels == nil {
			lv := im.Levels()
			for i, j := 0, len(lv)-1; i < j; i, j = i+1, j-1 {
				lv[i], lv[j] = lv[j], lv[i]
			}
			k.levels = lv
		}
		if k.level == len(k.levels) {
			k.image, k.level, k.levels = k.image+1, 0, nil
			continue
		}
		l := k.levels[k.level]
		if k.row == l.Rows {
			k.level, k.row, k.col = k.level+1, 0, 0
			continue
		}
		u := k.c.Prefix(k.image) + im.TileURL(l, k.col, k.row)
		if k.col++; k.col == l.Cols {
			k.col, k.row = 0, k.row+1
		}
		return u, true
	}
	return "", false
}

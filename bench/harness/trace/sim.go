package trace

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/iiif-proxy/iiif-proxy/bench/harness/cachesim"
)

// SizeModel estimates a response's size from its URL, for simulating a
// trace that was never replayed: JPEG tiles of scans weigh about the same
// per pixel.
type SizeModel struct {
	// BytesPerPixel is the JPEG's bytes per output pixel. Zero means 0.075,
	// 4.9 KB for a 256 × 256 tile, what iiif-proxy's tiles of the bench
	// corpus weigh at the default quality.
	BytesPerPixel float64
	// InfoBytes is the size of an info.json. Zero means 1000.
	InfoBytes int64
}

// Size estimates the body size of the request at path: the output's pixels
// (from the size segment, "w,h" or "w," with the region's aspect) times
// BytesPerPixel, at least 100 bytes; 256 × 256 pixels when the URL does
// not say.
func (m SizeModel) Size(path string) int64 {
	bpp, info := m.BytesPerPixel, m.InfoBytes
	if bpp == 0 {
		bpp = 0.075
	}
	if info == 0 {
		info = 1000
	}
	if strings.HasSuffix(path, "/info.json") {
		return info
	}
	w, h := 256.0, 256.0
	if p := strings.Split(path, "/"); len(p) >= 5 {
		region, size := p[len(p)-4], p[len(p)-3]
		rw, rh := regionSize(region)
		sw, sh, _ := strings.Cut(size, ",")
		fw, errW := strconv.ParseFloat(sw, 64)
		fh, errH := strconv.ParseFloat(sh, 64)
		switch {
		case errW == nil && errH == nil:
			w, h = fw, fh
		case errW == nil && sh == "" && rw > 0:
			w, h = fw, math.Round(fw*rh/rw)
		case (size == "max" || size == "full") && rw > 0:
			w, h = rw, rh
		}
	}
	return max(100, int64(math.Round(w*h*bpp)))
}

// regionSize is the width and height of an "x,y,w,h" region, or 0, 0.
func regionSize(r string) (w, h float64) {
	f := strings.Split(r, ",")
	if len(f) != 4 {
		return 0, 0
	}
	w, err1 := strconv.ParseFloat(f[2], 64)
	h, err2 := strconv.ParseFloat(f[3], 64)
	if err1 != nil || err2 != nil {
		return 0, 0
	}
	return w, h
}

// Sim is a trace ready for cachesim: the requests of one tier, each object
// a distinct path with its size.
type Sim struct {
	cachesim.Trace
	// Paths names each object.
	Paths []string
	// Modelled counts the objects the size model sized, because no replay
	// record had a 200 response for them.
	Modelled int
}

// NewSim keeps the requests of tier ("" or "all" for every one) and sizes
// their objects: from recs, a replay of the same trace, where a record has a
// 200 response for the path; else with model. A request's tier is the one
// the server named in recs for its path, else its ShapeTier.
func NewSim(reqs []Request, recs []Record, tier string, model SizeModel) (Sim, error) {
	size := map[string]int64{}
	tierOf := map[string]string{}
	for _, r := range recs {
		if r.Tier != "" {
			tierOf[r.Path] = r.Tier
		}
		if r.Status == 200 {
			size[r.Path] = r.Bytes
		}
	}
	var s Sim
	ids := map[string]int32{}
	for _, q := range reqs {
		t, ok := tierOf[q.Path]
		if !ok {
			t = ShapeTier(q.Path)
		}
		if tier != "" && tier != "all" && t != tier {
			continue
		}
		id, ok := ids[q.Path]
		if !ok {
			if len(s.Sizes) == math.MaxInt32 {
				return Sim{}, fmt.Errorf("trace: more than %d objects", math.MaxInt32)
			}
			n, ok := size[q.Path]
			if !ok {
				n = model.Size(q.Path)
				s.Modelled++
			}
			id = int32(len(s.Sizes))
			ids[q.Path] = id
			s.Sizes = append(s.Sizes, n)
			s.Paths = append(s.Paths, q.Path)
		}
		s.Keys = append(s.Keys, id)
	}
	return s, nil
}

// Budget reads a byte budget: a size ("7.5MB", "512KiB", "20000000") or a
// percentage of payload ("20%").
func Budget(s string, payload int64) (int64, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f < 0 {
			return 0, fmt.Errorf("budget %q: want a size (7.5MB) or a percentage (20%%)", s)
		}
		return int64(math.Round(float64(payload) * f / 100)), nil
	}
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.TrimSpace(s[len(num):])
	// A number may end in a digit after a dot: "7.5MB" trims to "7.5".
	f, err := strconv.ParseFloat(num, 64)
	mult, ok := map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9,
		"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30}[strings.ToUpper(unit)]
	if err != nil || !ok || f < 0 {
		return 0, fmt.Errorf("budget %q: want a size (7.5MB, 512KiB, bytes) or a percentage (20%%)", s)
	}
	return int64(math.Round(f * mult)), nil
}

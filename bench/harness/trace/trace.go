// Package trace makes, stores and measures request traces for studying
// cache policies: a fixed sequence of IIIF requests that can be replayed
// against any server (iiif-bench trace replay) and simulated offline
// through eviction policies with the same byte budget (package cachesim),
// so that a server's hit ratio can be set against LRU's and Belady's on the
// very same requests.
//
// A trace file is text, one request a line: the URL path after the
// server's IIIF base (the identifier percent-encoded as one segment, then
// region, size, rotation and quality.format, or info.json), a tab, and the
// session that sent it ("u3.17": user 3's 17th viewer session; "crawl" for
// the crawler). Lines starting with # are comments; the generator writes
// its parameters there.
//
//	# iiif-bench trace: requests=30000 seed=1 users=8 skew=1 points=32 crawl=0 …
//	c0-16384x14336.tif/info.json	u0.1
//	c0-16384x14336.tif/0,0,8192,8192/256,256/0/default.jpg	u0.1
//
// Replay records (one per request, CSV) keep what the server said: status,
// X-Cache, X-Cache-Tier, body size and latency.
package trace

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Request is one line of a trace.
type Request struct {
	// Path is the URL path after the IIIF base, without a leading slash.
	Path string
	// Session names the session that sent it; may be empty.
	Session string
}

// Tier names, as iiif-proxy's X-Cache-Tier has them.
const (
	TierTile      = "tile"
	TierThumbnail = "thumbnail"
	TierInfo      = "info"
)

// ShapeTier guesses a request's cache tier from its shape: info.json is
// info, a whole-image region ("full", "square") a thumbnail, anything else
// a tile. Replay records carry the server's own word (X-Cache-Tier), which
// wins where there is one.
func ShapeTier(path string) string {
	if strings.HasSuffix(path, "/info.json") {
		return TierInfo
	}
	parts := strings.Split(path, "/")
	if len(parts) >= 4 {
		switch parts[len(parts)-4] {
		case "full", "square":
			return TierThumbnail
		}
	}
	return TierTile
}

// Write writes a trace: the comment lines (without their "# "), then one
// request a line.
func Write(w io.Writer, comments []string, reqs []Request) error {
	bw := bufio.NewWriter(w)
	for _, c := range comments {
		fmt.Fprintf(bw, "# %s\n", c)
	}
	for _, r := range reqs {
		bw.WriteString(r.Path)
		if r.Session != "" {
			bw.WriteByte('\t')
			bw.WriteString(r.Session)
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// Read reads a trace, skipping comments and blank lines. A path with a
// space or a leading slash, or a line with more than two fields, is an
// error naming its line.
func Read(r io.Reader) ([]Request, error) {
	var out []Request
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) > 2 || fields[0] == "" || strings.ContainsAny(fields[0], " \t") || fields[0][0] == '/' {
			return nil, fmt.Errorf("trace line %d: want PATH[<tab>SESSION] with PATH after the base, no leading slash: %q", n, line)
		}
		q := Request{Path: fields[0]}
		if len(fields) == 2 {
			q.Session = fields[1]
		}
		out = append(out, q)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

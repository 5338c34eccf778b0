// Package renderer is the contract between the proxy and whatever makes
// image bytes: the Renderer interface, the description of a source image,
// and the errors that the proxy maps to HTTP statuses. It holds no cgo and
// no I/O, so everything above it (cache, proxy) builds and tests without
// libvips, against a fake.
//
// Two implementations live below it: renderer/vips renders in process with
// libvips (the only cgo in the module), and renderer/upstream asks an
// existing IIIF server over HTTP (sidecar mode).
package renderer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/iiif-proxy/iiif-proxy/rules"
)

// Renderer makes the bytes of IIIF responses.
type Renderer interface {
	// Info describes the source named id: ErrNotFound when there is none,
	// a *SourceError when it cannot be decoded.
	Info(ctx context.Context, id string) (*Source, error)
	// Sizes are the whole-image sizes that render fastest, ascending,
	// within the limits: the info.json "sizes".
	Sizes(src *Source) []Size
	// Render renders res from src, which must come from this renderer's
	// Info. ErrSourceChanged means the source is no longer the one src
	// describes: describe it again and start over.
	Render(ctx context.Context, src *Source, res rules.Resolved) (Image, error)
	// Limits are the output limits in force.
	Limits() rules.Limits
}

// Errors that the proxy maps to HTTP statuses.
var (
	// ErrNotFound: no source with that identifier (404).
	ErrNotFound = errors.New("no such image")
	// ErrOverloaded: the render queue is full; try again shortly (503).
	ErrOverloaded = errors.New("render queue is full")
	// ErrSourceChanged: the source was replaced between Info and Render (503
	// once retries are spent).
	ErrSourceChanged = errors.New("the source image changed during the request")
)

// SourceError says a source exists but cannot be decoded (not an image, an
// unsupported format, a truncated or corrupt file): 422.
type SourceError struct {
	ID     string
	Detail string // the decoder's message, for logs
}

func (e *SourceError) Error() string {
	return fmt.Sprintf("image %q cannot be decoded: %s", e.ID, e.Detail)
}

// Reason says in a few fixed words why the source cannot be decoded, for
// the client: the decoder's own message (Detail) goes to the log only, since
// it may name files and libraries the client has no business knowing.
func (e *SourceError) Reason() string {
	const formats = "JPEG, PNG, WebP, GIF, TIFF, JPEG 2000"
	d := strings.ToLower(e.Detail)
	switch {
	case strings.Contains(d, "magickload: operation is blocked"):
		// libvips offers what none of the allowed loaders claims to
		// ImageMagick, which is blocked: a TIFF whose header libtiff
		// rejects ends here as well as a BMP.
		return "it is damaged, or not in a format this server reads (" + formats + ")"
	case strings.Contains(d, "operation is blocked"), strings.Contains(d, "not a known file format"):
		return "it is not in a format this server reads (" + formats + ")"
	case strings.Contains(d, "premature end"), strings.Contains(d, "truncated"), strings.Contains(d, "unexpected end"),
		strings.Contains(d, "end of file"), strings.Contains(d, "short read"):
		return "the file is truncated or damaged"
	case strings.Contains(d, "icc"), strings.Contains(d, "profile"):
		return "its colour profile cannot be used"
	case strings.Contains(d, "info.json"):
		return "the image server describes it with an impossible size"
	}
	return "the file is damaged or its pixels fail to decode"
}

// SourceTooLargeError says a render would have to decode more pixels of an
// untiled source than the renderer's MaxSourcePixels allows. Nothing was
// decoded: 422, with this message.
type SourceTooLargeError struct {
	ID            string
	Width, Height int   // what the render would decode
	Max           int64 // the renderer's MaxSourcePixels
}

func (e *SourceTooLargeError) Error() string {
	return fmt.Sprintf("image %q has no tiles or pyramid level to read from: this request would decode all %d×%d pixels of it, more than this server's MaxSourcePixels (%d); ask for a smaller size, or convert it to a tiled pyramidal TIFF",
		e.ID, e.Width, e.Height, e.Max)
}

// UnavailableError says the source could not be reached: an upstream that
// refused the connection, answered 5xx, timed out, or is known to be down
// and is being left alone (see renderer/upstream). The cache serves a stale
// entry instead where it has one; otherwise it is 502, or 504 when Timeout.
type UnavailableError struct {
	Timeout bool  // the upstream did not answer in time
	Status  int   // the upstream's 5xx status, 0 when it did not answer
	Err     error // what happened, for logs
}

func (e *UnavailableError) Error() string {
	switch {
	case e.Timeout:
		return "upstream timed out: " + e.Err.Error()
	case e.Status != 0:
		return fmt.Sprintf("upstream answered %d: %v", e.Status, e.Err)
	}
	return "upstream unavailable: " + e.Err.Error()
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// StatusError is an upstream's answer that is neither an image nor a
// failure of the upstream: a 4xx other than 404 (which is ErrNotFound).
// The proxy passes it through with its body; it is never cached as an image.
type StatusError struct {
	Status      int
	ContentType string
	Body        []byte // at most a few KB, as the upstream sent it
}

func (e *StatusError) Error() string { return fmt.Sprintf("upstream answered %d", e.Status) }

// Size is a width and height.
type Size struct{ Width, Height int }

// Source describes a source image. It is immutable and shared: do not modify.
type Source struct {
	ID            string
	Width, Height int
	// TileWidth and TileHeight are the tile size to advertise.
	TileWidth, TileHeight int
	// ScaleFactors are the scale factors that render fastest, ascending.
	ScaleFactors []int
	// ModTime is the source's modification time to whole seconds, for
	// Last-Modified; Identity, not ModTime, says whether the source changed.
	ModTime time.Time
	// Identity tells one version of the source from another, in a stable
	// form that is stored with every cache entry made from it and compared
	// on revalidation (a file's inode, size and times; an upstream's ETag).
	// Empty means the renderer cannot tell versions apart.
	Identity string
	// Detail is the renderer's own description of the source (pyramid
	// levels, decoder state), opaque to everything else.
	Detail any
}

// Image is a rendered image.
type Image struct {
	Body     []byte
	MIME     string
	ModTime  time.Time // the source's modification time
	Identity string    // the identity of the source rendered (Source.Identity)
}

// Stats are a renderer's counters since start.
type Stats struct {
	Renders     uint64 // successful renders
	Passthrough uint64 // tiles served as stored, without decoding
	Failures    uint64 // renders that failed
	Cancelled   uint64 // renders stopped because their context ended
	Overloaded  uint64 // renders refused because the queue was full
	InFlight    int64  // renders running now
	Queued      int64  // renders waiting for a worker now
	RenderNs    uint64 // total time spent rendering
	// Upstream describes the upstream server in sidecar mode; nil otherwise.
	Upstream *UpstreamStats `json:",omitempty"`
	// Pyramids describes the automatic pyramids of flat sources; nil when
	// the renderer builds none.
	Pyramids *PyramidStats `json:",omitempty"`
	// Fallbacks counts undecodable sources served from a sibling
	// (renderer/fallback); nil when no Fallbacks are configured.
	Fallbacks *FallbackStats `json:",omitempty"`
	// Sources describes the S3 source store and its local source cache;
	// nil when sources are local files.
	Sources *SourceStats `json:",omitempty"`
}

// FallbackStats are the counters of the Fallbacks setting: sources that
// exist but cannot be decoded, served from a sibling with another extension.
type FallbackStats struct {
	Extensions []string // the fallback extensions, in order
	Described  uint64   // descriptions answered from a sibling
	Failed     uint64   // undecodable sources that no sibling could stand in for
}

// SourceStats are the counters of an S3 source store (package sources) and
// its local source cache.
type SourceStats struct {
	Bucket, Prefix string
	Dir            string // the source cache directory
	MaxBytes       int64
	Bytes          int64  // cached now (blocks held)
	Objects        int    // objects with at least one block cached
	Whole          int    // of which complete
	Evicted        uint64 // objects removed to stay under MaxBytes or the free-space minimum
	// Requests to the store: Stats (conditional first-block GETs that
	// describe an object) and Gets (ranged reads of blocks).
	Stats, Gets uint64
	NotModified uint64 // conditional Stats answered 304
	NotFound    uint64
	Errors      uint64 // failures of the store: no answer, 5xx, 403, no bucket
	Timeouts    uint64 // of which timeouts
	Refused     uint64 // requests not sent because the breaker was open
	Stale       uint64 // Stats answered from the cache because the store failed
	Uncached    uint64 // reads sent to the store uncached: no room on disk
	// FetchedBytes are the bytes of object data received from the store.
	FetchedBytes uint64
	// Breaker is "closed" (requests go through), "open" (failing at once)
	// or "half-open" (one probe may go or is in flight).
	Breaker        string
	BreakerOpens   uint64 // times it opened
	FailuresInARow int
}

// PyramidStats are the counters of a renderer's automatic pyramids: tiled
// copies of large flat sources, built in the background.
type PyramidStats struct {
	Dir        string
	MaxBytes   int64
	Bytes      int64  // on disk now
	Files      int    // ready pyramids
	Started    uint64 // builds started
	Succeeded  uint64
	Failed     uint64         // builds that failed (each source is retried a few times)
	Cancelled  uint64         // builds killed at shutdown
	Skipped    uint64         // builds not started: over the budget or below the free-space minimum
	Evicted    uint64         // pyramids removed to stay under MaxBytes
	Dropped    uint64         // pyramids removed because their source changed
	Served     uint64         // renders served from a pyramid
	Building   int64          // builds running now
	Queued     int64          // builds waiting for a slot
	BuildNs    uint64         // total time spent building
	InProgress []PyramidBuild `json:",omitempty"`
}

// PyramidBuild is one build in progress.
type PyramidBuild struct {
	ID      string
	Seconds float64 // since it started
	// Percent of the full-resolution pass done, as the builder reports it;
	// the lower levels are made during that pass and written out after it,
	// so 100 means the build is finishing.
	Percent int
}

// UpstreamStats are an upstream renderer's counters (sidecar mode).
type UpstreamStats struct {
	URL            string
	Up             bool   // false while marked down (failing requests at once, probing)
	FailuresInARow int    // failures since the last success
	Downs          uint64 // times it was marked down
	Requests       uint64 // requests sent
	NotModified    uint64 // conditional requests answered 304
	NotFound       uint64 // 404s
	Errors         uint64 // refused, timed out, 5xx
	Timeouts       uint64 // of which timeouts
	Refused        uint64 // requests not sent because it was down
	LatencyNs      uint64 // total time waiting for it, bodies included
}

// Revalidator is a renderer that can check a description it gave earlier
// more cheaply than describing anew (an upstream asks conditionally, and a
// 304 moves no bytes). It returns prev itself when nothing changed.
type Revalidator interface {
	Revalidate(ctx context.Context, prev *Source) (*Source, error)
}

// Documenter is a renderer whose sources have an info.json of their own
// (an upstream's), which the proxy serves as written, its id rewritten,
// when the version matches.
type Documenter interface {
	Document(src *Source, v rules.Version) (doc []byte, ok bool)
}

// Describer is a renderer that can describe a source from the info.json
// the proxy stored earlier, when the source itself cannot be asked.
type Describer interface {
	Describe(id string, doc []byte, identity string, mod time.Time) (*Source, error)
}

// Forwarder is a renderer that can render a request without a description
// of its source: an upstream asked for the request in its normalised form
// (rules.Request.AppendNormalised) when its info.json, and so the image's
// size, cannot be had. The image's Identity is empty: nothing to revalidate
// it against until the source can be described again.
type Forwarder interface {
	Forward(ctx context.Context, id string, req rules.Request) (Image, error)
}

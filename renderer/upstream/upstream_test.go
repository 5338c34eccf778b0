package upstream

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

func TestParseTimeIsLenient(t *testing.T) {
	want := time.Date(2024, 3, 5, 14, 7, 9, 0, time.UTC)
	for _, s := range []string{
		"Tue, 05 Mar 2024 14:07:09 GMT",   // RFC 9110
		"Tuesday, 05-Mar-24 14:07:09 GMT", // RFC 850
		"Tue Mar  5 14:07:09 2024",        // asctime
		"Tue, 05 Mar 2024 06:07:09 -0800", // RAIS: a numeric zone
		"Tue, 5 Mar 2024 14:07:09 +0000",
		"2024-03-05T15:07:09+01:00",
	} {
		if got := ParseTime(s); !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, want %v", s, got, want)
		}
	}
	if got := ParseTime("yesterday"); !got.IsZero() {
		t.Errorf("garbage parsed as %v", got)
	}
}

// fakeIIIF is an upstream that counts requests and can fail.
type fakeIIIF struct {
	n, conditional atomic.Int64
	status         atomic.Int64 // when not 0, every answer
}

func (f *fakeIIIF) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.n.Add(1)
	if s := f.status.Load(); s != 0 {
		http.Error(w, "nope", int(s))
		return
	}
	if !strings.HasPrefix(r.URL.EscapedPath(), "/iiif/a%2Fb/") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Last-Modified", "Tue, 05 Mar 2024 06:07:09 -0800")
	if r.Header.Get("If-Modified-Since") != "" {
		f.conditional.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if strings.HasSuffix(r.URL.Path, "info.json") {
		w.Write([]byte(`{"@context":"http://iiif.io/api/image/2/context.json","@id":"http://up/iiif/a%2Fb","width":1000,"height":800,"tiles":[{"width":256,"scaleFactors":[1,2,4]}]}`))
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Write([]byte("pixels of " + r.URL.EscapedPath()))
}

func newUpstream(t *testing.T, clock func() time.Time) (*Upstream, *fakeIIIF) {
	t.Helper()
	f := &fakeIIIF{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	u, err := New(Config{URL: srv.URL + "/iiif/", Timeout: 2 * time.Second, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u, f
}

func TestInfoRenderAndConditionalRevalidation(t *testing.T) {
	u, f := newUpstream(t, nil)
	src, err := u.Info(context.Background(), "a/b")
	if err != nil {
		t.Fatal(err)
	}
	if src.Width != 1000 || src.TileWidth != 256 || src.TileHeight != 256 || src.Identity != "v2 lm:1709647629" {
		t.Errorf("described as %+v", src)
	}
	req, _ := rules.Parse(rules.V3, "a%2Fb/0,0,256,256/256,/0/default.jpg")
	res, err := req.Resolve(rules.ImageInfo{Width: 1000, Height: 800}, rules.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := u.Render(context.Background(), src, res)
	if err != nil {
		t.Fatal(err)
	}
	// Asked in 2.1's canonical form, the identifier's %2F kept.
	if string(img.Body) != "pixels of /iiif/a%2Fb/0,0,256,256/full/0/default.jpg" || img.MIME != "image/jpeg" {
		t.Errorf("rendered %q (%s)", img.Body, img.MIME)
	}
	again, err := u.Revalidate(context.Background(), src)
	if err != nil || again != src || f.conditional.Load() != 1 {
		t.Errorf("revalidation: %v, same description %v, %d conditional requests", err, again == src, f.conditional.Load())
	}
	if s := u.Stats().Upstream; s.NotModified != 1 || !s.Up {
		t.Errorf("stats %+v", s)
	}
}

func TestNotFoundIsRememberedAndOtherErrorsMap(t *testing.T) {
	now := time.Now()
	u, f := newUpstream(t, func() time.Time { return now })
	for range 3 {
		if _, err := u.Info(context.Background(), "missing"); !errors.Is(err, renderer.ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
	}
	if f.n.Load() != 1 {
		t.Errorf("%d requests for a missing image, want 1 (remembered)", f.n.Load())
	}
	now = now.Add(time.Minute)
	u.Info(context.Background(), "missing")
	if f.n.Load() != 2 {
		t.Errorf("the 404 was remembered past NotFoundTTL")
	}
	f.status.Store(http.StatusForbidden)
	var se *renderer.StatusError
	if _, err := u.Info(context.Background(), "a/b"); !errors.As(err, &se) || se.Status != 403 || !strings.Contains(string(se.Body), "nope") {
		t.Errorf("403: %v", err)
	}
	f.status.Store(http.StatusServiceUnavailable)
	var ue *renderer.UnavailableError
	if _, err := u.Info(context.Background(), "a/b"); !errors.As(err, &ue) || ue.Status != 503 {
		t.Errorf("503: %v", err)
	}
}

func TestADownUpstreamIsLeftAloneAndProbed(t *testing.T) {
	now := time.Now()
	var mu atomic.Int64
	mu.Store(now.UnixNano())
	clock := func() time.Time { return time.Unix(0, mu.Load()) }
	u, f := newUpstream(t, clock)
	f.status.Store(http.StatusBadGateway)
	for i := range 3 {
		// Distinct identifiers: a bad info.json is remembered per
		// identifier, so the same one would be asked once.
		u.Info(context.Background(), "x"+strconv.Itoa(i))
	}
	if s := u.Stats().Upstream; s.Up || s.Downs != 1 {
		t.Fatalf("after 3 failures: %+v, want down", s)
	}
	sent := f.n.Load()
	for range 10 {
		var ue *renderer.UnavailableError
		if _, err := u.Info(context.Background(), "a/b"); !errors.As(err, &ue) {
			t.Fatalf("while down: %v", err)
		}
	}
	if f.n.Load() != sent {
		t.Errorf("%d requests reached a down upstream before its backoff", f.n.Load()-sent)
	}
	mu.Add(int64(1500 * time.Millisecond)) // past the first backoff (1s): one probe
	u.Info(context.Background(), "a/b")
	u.Info(context.Background(), "a/b")
	if f.n.Load() != sent+1 {
		t.Errorf("%d probes, want 1", f.n.Load()-sent)
	}
	mu.Add(int64(1500 * time.Millisecond)) // the backoff doubled to 2s: not yet
	u.Info(context.Background(), "a/b")
	if f.n.Load() != sent+1 {
		t.Errorf("probed before the doubled backoff")
	}
	f.status.Store(0)
	mu.Add(int64(time.Second))
	if _, err := u.Info(context.Background(), "a/b"); err != nil {
		t.Fatalf("the probe after recovery: %v", err)
	}
	if !u.Stats().Upstream.Up {
		t.Error("still down after a successful probe")
	}
}

func TestTimeoutIsMarked(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	u, err := New(Config{URL: srv.URL, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var ue *renderer.UnavailableError
	if _, err := u.Info(context.Background(), "x"); !errors.As(err, &ue) || !ue.Timeout {
		t.Errorf("a hung upstream: %v, want a timeout", err)
	}
}

// A stored description keeps the version the upstream speaks, whichever
// stored document it is made from: a v3 document the proxy built in front
// of this v2-only upstream gives the size, not the version, and is not
// passed off as the upstream's own.
func TestDescribeKeepsTheUpstreamsVersion(t *testing.T) {
	u, _ := newUpstream(t, nil)
	live, err := u.Info(context.Background(), "a/b")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(live.Identity, "v2 ") {
		t.Fatalf("identity %q does not name the version the upstream speaks", live.Identity)
	}
	built := []byte(`{"@context":"http://iiif.io/api/image/3/context.json","id":"x","width":1000,"height":800}`)
	src, err := u.Describe("a/b", built, live.Identity, live.ModTime)
	if err != nil {
		t.Fatal(err)
	}
	if _, own := u.Document(src, rules.V3); own {
		t.Errorf("a document the proxy built was passed off as the upstream's")
	}
	if _, own := u.Document(src, rules.V2); own {
		t.Errorf("a v3 document served as the upstream's v2 one")
	}
	req, _ := rules.Parse(rules.V3, "a%2Fb/full/max/0/default.jpg")
	res, err := req.Resolve(rules.ImageInfo{Width: src.Width, Height: src.Height}, rules.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := u.Render(context.Background(), src, res)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(img.Body); got != "pixels of /iiif/a%2Fb/full/full/0/default.jpg" {
		t.Errorf("asked %q, want the v2 canonical form", got)
	}
	// The upstream's own document is its own.
	own, err := u.Describe("a/b", live.Detail.(*source).doc, live.Identity, live.ModTime)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := u.Document(own, rules.V2); !ok {
		t.Errorf("the upstream's stored v2 document is not its own")
	}
}

// Forward asks for the request's normalised form, with no identity.
func TestForwardAsksTheNormalisedForm(t *testing.T) {
	u, f := newUpstream(t, nil)
	req, err := rules.Parse(rules.V2, "a%2Fb/full/full/360/default.jpg")
	if err != nil {
		t.Fatal(err)
	}
	img, err := u.Forward(context.Background(), "a/b", req)
	if err != nil {
		t.Fatal(err)
	}
	if string(img.Body) != "pixels of /iiif/a%2Fb/full/max/0/default.jpg" || img.Identity != "" || img.MIME != "image/jpeg" || img.ModTime.IsZero() {
		t.Errorf("%q identity %q %s %v", img.Body, img.Identity, img.MIME, img.ModTime)
	}
	f.status.Store(http.StatusBadRequest)
	var se *renderer.StatusError
	if _, err := u.Forward(context.Background(), "a/b", req); !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		t.Errorf("a 400 came back as %v", err)
	}
}

// An info.json answered 5xx is remembered NotFoundTTL, while the upstream
// is up: the images forwarded meanwhile do not each ask for it again.
func TestABadInfoJSONIsRemembered(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	u, f := newUpstream(t, func() time.Time { return time.Unix(0, now.Load()) })
	f.status.Store(http.StatusInternalServerError)
	var ue *renderer.UnavailableError
	for range 3 {
		if _, err := u.Info(context.Background(), "a/b"); !errors.As(err, &ue) || ue.Status != 500 {
			t.Fatalf("500: %v", err)
		}
	}
	if n := f.n.Load(); n != 1 || !u.Stats().Upstream.Up {
		t.Errorf("asked %d times (up %v), want once", n, u.Stats().Upstream.Up)
	}
	f.status.Store(0)
	now.Add(int64(11 * time.Second)) // past the default NotFoundTTL
	if _, err := u.Info(context.Background(), "a/b"); err != nil || f.n.Load() != 2 {
		t.Errorf("after NotFoundTTL: %v, asked %d times", err, f.n.Load())
	}
}

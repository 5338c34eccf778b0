package fallback

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/renderer/fake"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// broken is what a decoder says of a corrupt file.
func broken(id string) error {
	return &renderer.SourceError{ID: id, Detail: "TIFFReadDirectory: bad IFD"}
}

func newFallback(t *testing.T, r renderer.Renderer, exts ...string) (*Renderer, *bytes.Buffer) {
	t.Helper()
	var log bytes.Buffer
	w, err := New(r, exts, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return w.(*Renderer), &log
}

func render(t *testing.T, f renderer.Renderer, src *renderer.Source) string {
	t.Helper()
	req, err := rules.Parse(rules.V3, "x/full/max/0/default.jpg")
	if err != nil {
		t.Fatal(err)
	}
	res, err := req.Resolve(rules.ImageInfo{Width: src.Width, Height: src.Height}, rules.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := f.Render(context.Background(), src, res)
	if err != nil {
		t.Fatal(err)
	}
	return string(img.Body)
}

func TestServesTheSiblingUnderTheRequestedID(t *testing.T) {
	fr := fake.New()
	fr.Set("box/scan.tif", 100, 80)
	fr.FailInfo("box/scan.tif", broken("box/scan.tif"))
	fr.Set("box/scan.jpg", 100, 80)
	f, log := newFallback(t, fr, ".png", ".jpg")

	for range 3 {
		src, err := f.Info(context.Background(), "box/scan.tif")
		if err != nil {
			t.Fatal(err)
		}
		if src.ID != "box/scan.tif" || src.Width != 100 {
			t.Fatalf("served %+v, want the requested id and the sibling's size", src)
		}
		if got := render(t, f, src); !strings.HasPrefix(got, "fake box/scan.jpg v1 ") {
			t.Fatalf("rendered %q, want the sibling's pixels", got)
		}
	}
	if n := strings.Count(log.String(), "serving its fallback"); n != 1 {
		t.Errorf("logged %d times, want once per source:\n%s", n, log)
	}
	if !strings.Contains(log.String(), "fallback=box/scan.jpg") {
		t.Errorf("log does not name the sibling: %s", log)
	}
	st := f.Stats().Fallbacks
	if st == nil || st.Described != 3 || st.Failed != 0 {
		t.Errorf("stats %+v, want 3 described", st)
	}
}

func TestOnlyUndecodableSourcesFallBack(t *testing.T) {
	fr := fake.New()
	fr.Set("fine.tif", 10, 10)
	fr.Set("fine.jpg", 20, 20)
	fr.Set("missing.jpg", 20, 20) // missing.tif does not exist
	fr.Set("down.tif", 10, 10)
	fr.FailInfo("down.tif", &renderer.UnavailableError{Err: errors.New("refused")})
	fr.Set("down.jpg", 20, 20)
	fr.Set("lost.tif", 10, 10)
	fr.FailInfo("lost.tif", broken("lost.tif")) // and no sibling
	f, _ := newFallback(t, fr, ".jpg")

	if src, err := f.Info(context.Background(), "fine.tif"); err != nil || src.Width != 10 {
		t.Errorf("a decodable source: %+v, %v; want itself", src, err)
	}
	if _, err := f.Info(context.Background(), "missing.tif"); !errors.Is(err, renderer.ErrNotFound) {
		t.Errorf("a missing source: %v, want ErrNotFound (a sibling of nothing is not served)", err)
	}
	var ue *renderer.UnavailableError
	if _, err := f.Info(context.Background(), "down.tif"); !errors.As(err, &ue) {
		t.Errorf("an unreachable source: %v, want UnavailableError (the cache serves stale for it)", err)
	}
	var se *renderer.SourceError
	if _, err := f.Info(context.Background(), "lost.tif"); !errors.As(err, &se) || se.ID != "lost.tif" {
		t.Errorf("no sibling: %v, want the original SourceError", err)
	}
	if st := f.Stats().Fallbacks; st.Described != 0 || st.Failed != 1 {
		t.Errorf("stats %+v, want 1 failed", st)
	}
}

// TestRevalidateFollowsTheSiblingAndTheRepair: a source served from its
// sibling changes identity when the sibling is replaced, and again when the
// original is repaired, so the cache purges what was rendered before.
func TestRevalidateFollowsTheSiblingAndTheRepair(t *testing.T) {
	fr := fake.New()
	for range 3 {
		fr.Set("a.tif", 10, 10) // version 3: another identity than the sibling's first two (the fake numbers versions per id)
	}
	fr.FailInfo("a.tif", broken("a.tif"))
	fr.Set("a.jpg", 10, 10)
	f, _ := newFallback(t, fr, ".jpg")
	ctx := context.Background()
	src, err := f.Info(ctx, "a.tif")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := f.Revalidate(ctx, src); err != nil || again != src {
		t.Errorf("unchanged: %v, %v; want the same description", again, err)
	}
	fr.Set("a.jpg", 10, 10) // the sibling replaced
	again, err := f.Revalidate(ctx, src)
	if err != nil || again == src || again.Identity == src.Identity || again.ID != "a.tif" {
		t.Errorf("sibling replaced: %+v, %v; want a new identity under a.tif", again, err)
	}
	fr.FailInfo("a.tif", nil) // repaired
	repaired, err := f.Revalidate(ctx, again)
	if err != nil || repaired.Identity == again.Identity {
		t.Errorf("repaired: %+v, %v; want the original's identity", repaired, err)
	}
	if got := render(t, f, repaired); !strings.HasPrefix(got, "fake a.tif ") {
		t.Errorf("repaired renders %q, want the original", got)
	}
}

func TestKeepsForwarderOnlyWhenWrapped(t *testing.T) {
	w, err := New(&fake.Forwarding{Renderer: fake.New()}, []string{".jpg"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := w.(renderer.Forwarder); !ok {
		t.Error("an upstream-like renderer lost Forwarder")
	}
	w, _ = New(fake.New(), []string{".jpg"}, nil)
	if _, ok := w.(renderer.Forwarder); ok {
		t.Error("a plain renderer gained Forwarder: the proxy would forward undescribable requests to it")
	}
}

func TestValidate(t *testing.T) {
	for _, good := range [][]string{nil, {".jpg"}, {".jpeg", ".png"}} {
		if err := Validate(good); err != nil {
			t.Errorf("Validate(%q) = %v", good, err)
		}
	}
	err := Validate([]string{"jpg", ".", "./x", ".a\x00", ".jpg"})
	if err == nil || strings.Count(err.Error(), "must be an extension") != 4 {
		t.Errorf("Validate: %v, want four problems listed", err)
	}
}

func TestSibling(t *testing.T) {
	for _, tc := range []struct{ id, ext, want string }{
		{"scan.tif", ".jpg", "scan.jpg"},
		{"box%2F/scan.tiff", ".jpg", "box%2F/scan.jpg"},
		{"box.d/scan", ".jpg", "box.d/scan.jpg"},
		{"a.b.tif", ".png", "a.b.png"},
	} {
		if got := Sibling(tc.id, tc.ext); got != tc.want {
			t.Errorf("Sibling(%q, %q) = %q, want %q", tc.id, tc.ext, got, tc.want)
		}
	}
}

// TestPixelsThatFailToDecodeFallBackOnTheNextDescription: a source that
// describes but does not decode answers ErrSourceChanged (the proxy then
// describes it again) when a sibling exists, and is served from the sibling
// from then on; without a sibling its error stands.
func TestPixelsThatFailToDecodeFallBackOnTheNextDescription(t *testing.T) {
	fr := fake.New()
	for _, id := range []string{"a.tif", "a.jpg", "b.tif"} {
		fr.Set(id, 10, 10)
	}
	fr.FailRender("a.tif", broken("a.tif"))
	fr.FailRender("b.tif", broken("b.tif"))
	f, _ := newFallback(t, fr, ".jpg")
	ctx := context.Background()
	res := func(src *renderer.Source) rules.Resolved {
		req, _ := rules.Parse(rules.V3, "x/full/max/0/default.jpg")
		r, err := req.Resolve(rules.ImageInfo{Width: src.Width, Height: src.Height}, rules.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	src, err := f.Info(ctx, "a.tif")
	if err != nil || src.Detail.(int) != 1 {
		t.Fatalf("first description: %+v, %v; want the original's", src, err)
	}
	if _, err := f.Render(ctx, src, res(src)); !errors.Is(err, renderer.ErrSourceChanged) {
		t.Fatalf("render of undecodable pixels: %v, want ErrSourceChanged", err)
	}
	again, err := f.Info(ctx, "a.tif")
	if err != nil || again.ID != "a.tif" {
		t.Fatalf("described again: %+v, %v", again, err)
	}
	if got := render(t, f, again); !strings.HasPrefix(got, "fake a.jpg ") {
		t.Errorf("rendered %q, want the sibling", got)
	}
	b, _ := f.Info(ctx, "b.tif")
	var se *renderer.SourceError
	if _, err := f.Render(ctx, b, res(b)); !errors.As(err, &se) {
		t.Errorf("no sibling: %v, want the SourceError (422)", err)
	}
}

// TestABrokenSiblingIsPassedOver: when the sibling serving a source fails
// to decode too, the next description takes the next sibling.
func TestABrokenSiblingIsPassedOver(t *testing.T) {
	fr := fake.New()
	for _, id := range []string{"c.tif", "c.jpg", "c.png"} {
		fr.Set(id, 10, 10)
	}
	fr.FailInfo("c.tif", broken("c.tif"))
	fr.FailRender("c.jpg", broken("c.jpg"))
	f, _ := newFallback(t, fr, ".jpg", ".png")
	ctx := context.Background()
	src, err := f.Info(ctx, "c.tif")
	if alt, _ := From(src); err != nil || alt != "c.jpg" {
		t.Fatalf("first: %v, %v; want c.jpg", alt, err)
	}
	req, _ := rules.Parse(rules.V3, "x/full/max/0/default.jpg")
	res, _ := req.Resolve(rules.ImageInfo{Width: 10, Height: 10}, rules.Limits{})
	if _, err := f.Render(ctx, src, res); !errors.Is(err, renderer.ErrSourceChanged) {
		t.Fatalf("render from the broken sibling: %v, want ErrSourceChanged", err)
	}
	src, err = f.Info(ctx, "c.tif")
	if alt, _ := From(src); err != nil || alt != "c.png" {
		t.Fatalf("again: %v, %v; want c.png", alt, err)
	}
	if got := render(t, f, src); !strings.HasPrefix(got, "fake c.png ") {
		t.Errorf("rendered %q", got)
	}
}

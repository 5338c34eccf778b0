package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/renderer/fake"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// TestExplain: every URL form a request can take (3.0, 2.1, RAIS's
// unversioned form, signed, a full URL) is routed, parsed and classified
// as the request would be; the three forms of one view share one key.
func TestExplain(t *testing.T) {
	r := fake.New()
	r.Set("a", 1000, 800)
	r.Set("b/c", 300, 200)
	p, err := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Unversioned: rules.V2}, r)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ok := func(path string, kind string, tier rules.Tier, key string) Explanation {
		t.Helper()
		e, err := p.Explain(ctx, path)
		if err != nil {
			t.Fatalf("Explain(%s): %v", path, err)
		}
		if e.Kind != kind || (kind != "base" && (e.Tier != tier || e.Key != key)) {
			t.Errorf("Explain(%s) = %s %s %q, want %s %s %q", path, e.Kind, e.Tier, e.Key, kind, tier, key)
		}
		return e
	}
	tileKey := "a\x000,0,256,256/256,256/0/color.jpg"
	ok("/iiif/3/a/0,0,256,256/256,256/0/default.jpg", "image", rules.TierTile, tileKey)
	ok("/iiif/2/a/0,0,256,256/256,/0/default.jpg", "image", rules.TierTile, tileKey)
	e := ok("/iiif/a/0,0,256,256/256,/0/default.jpg", "image", rules.TierTile, tileKey)
	if !e.Unversioned || e.Version != rules.V2 {
		t.Errorf("unversioned: %+v", e)
	}
	e = ok("http://images.example.org/iiif/signed/1767225600.abc/3/b%2Fc/full/max/0/default.png", "image",
		rules.TierThumbnail, "b/c\x000,0,300,200/300,200/0/color.png")
	if !e.Signed || e.ID != "b/c" || e.Canonical != "full/max/0/default.png" {
		t.Errorf("signed full URL: %+v", e)
	}
	ok("/iiif/3/a/full/max/0/gray.gif", "image", rules.TierOther, "a\x000,0,1000,800/1000,800/0/gray.gif")
	ok("/iiif/3/a/info.json", "info", rules.TierInfo, "a\x00info.json 3.0")
	ok("/iiif/3/a", "base", 0, "")

	for _, tc := range []struct {
		path string
		code int
	}{
		{"/other/3/a/info.json", http.StatusNotFound},
		{"/iiif/3/missing/info.json", http.StatusNotFound}, // an info.json fails as its image does
		{"/iiif/3/missing/full/max/0/default.jpg", http.StatusNotFound},
		{"/iiif/3/a/b/full/max/0/default.jpg", http.StatusNotFound}, // an unescaped slash
		{"/iiif/3/a/full/0,/0/default.jpg", http.StatusBadRequest},
	} {
		_, err := p.Explain(ctx, tc.path)
		if code, _ := Status(err); (tc.code == 0 && err != nil) || (tc.code != 0 && code != tc.code) {
			t.Errorf("Explain(%s): %v (%d), want %d", tc.path, err, code, tc.code)
		}
	}
	r.FailInfo("a", &renderer.SourceError{ID: "a", Detail: "bad"})
	p2, _ := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, r)
	for _, path := range []string{"/iiif/3/a/full/max/0/default.jpg", "/iiif/3/a/info.json"} {
		_, err = p2.Explain(ctx, path)
		var se *renderer.SourceError
		if code, _ := Status(err); !errors.As(err, &se) || code != http.StatusUnprocessableEntity {
			t.Errorf("undecodable %s: %v (%d), want 422", path, err, code)
		}
	}
}

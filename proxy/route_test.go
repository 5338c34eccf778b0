//go:build cgo

package proxy

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/renderer/vips"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// TestUnversionedURLsAreServedAsRAISServesThem: {WebPath}/{id}/… speaks
// the configured version, its info.json names the unversioned base, its
// 303 and Link stay unversioned, and all three forms share cache entries.
func TestUnversionedURLsAreServedAsRAISServesThem(t *testing.T) {
	cp := serveWith(t, vips.Config{TilePath: tilePath, TilePassthrough: true}, Config{Unversioned: rules.V2}, 0, "", true)
	root := strings.TrimSuffix(cp.base, "/3/") // http://host/iiif

	r := get(t, root+"/pattern.tif/info.json")
	if r.status != http.StatusOK {
		t.Fatalf("unversioned info.json: %d %s", r.status, clip(r.body))
	}
	var doc map[string]any
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["@id"] != root+"/pattern.tif" || doc["@context"] != context2 {
		t.Errorf("unversioned info.json speaks %v with @id %v, want 2.1 and %s", doc["@context"], doc["@id"], root+"/pattern.tif")
	}
	// The same entry, served to /2/, names /2/.
	r2 := get(t, root+"/2/pattern.tif/info.json")
	if err := json.Unmarshal(r2.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["@id"] != root+"/2/pattern.tif" {
		t.Errorf("/2/ info.json @id %v", doc["@id"])
	}
	if got := r2.header.Get("X-Cache"); got != "HIT" {
		t.Errorf("/2/ info.json after the unversioned one: X-Cache %q, want HIT (one entry for both forms)", got)
	}

	// The 303 from a bare identifier stays in the unversioned form.
	r = get(t, root+"/pattern.tif")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != root+"/pattern.tif/info.json" {
		t.Errorf("bare identifier: %d Location %q", r.status, r.header.Get("Location"))
	}

	// One image, three forms: one render, then hits.
	const tile = "/pattern.tif/0,0,256,256/256,/0/default.jpg"
	before := cp.renders()
	for i, u := range []string{root + tile, root + "/2" + tile, root + "/3" + tile} {
		r := get(t, u)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", u, r.status, clip(r.body))
		}
		want := "HIT"
		if i == 0 {
			want = "MISS"
		}
		if got := r.header.Get("X-Cache"); got != want {
			t.Errorf("%s: X-Cache %q, want %q", u, got, want)
		}
		if i == 0 && !strings.Contains(r.header.Get("Link"), "<"+root+"/pattern.tif/0,0,256,256/full/0/default.jpg>") {
			t.Errorf("unversioned Link %q does not keep the unversioned form", r.header.Get("Link"))
		}
	}
	if n := cp.renders() - before; n != 1 {
		t.Errorf("%d renders for one tile asked in three forms, want 1", n)
	}
}

// TestUnversionedSpeaks3WhenSet: the setting decides the version.
func TestUnversionedSpeaks3WhenSet(t *testing.T) {
	base := serve(t, Config{Unversioned: rules.V3}, vips.Config{})
	r := get(t, base+"/iiif/pattern.tif/info.json")
	var doc map[string]any
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("%d %s: %v", r.status, clip(r.body), err)
	}
	if doc["id"] != base+"/iiif/pattern.tif" || doc["@context"] != context3 {
		t.Errorf("info.json: id %v context %v", doc["id"], doc["@context"])
	}
	// Off: unversioned URLs are not IIIF paths.
	off := serve(t, Config{}, vips.Config{})
	if r := get(t, off+"/iiif/pattern.tif/info.json"); r.status != http.StatusNotFound {
		t.Errorf("unversioned with the setting off: %d, want 404", r.status)
	}
	// A path that is no IIIF URL says where each version is served, each
	// named as the spec names it.
	r = get(t, base+"/nothing-here")
	if want := "3.0 at /iiif/{identifier}/"; r.status != http.StatusNotFound || !strings.Contains(string(r.body), want) {
		t.Errorf("not a IIIF path: %d %q, want 404 naming %q", r.status, r.body, want)
	}
}

// TestVersionSegmentWinsOverAnIdentifierNamed2: the documented resolution
// of /iiif/2/…, and the escape that reaches an image named "2".
func TestVersionSegmentWinsOverAnIdentifierNamed2(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"2", "3", "2001"} {
		made, err := vips.Generate(filepath.Join(dir, name), vips.Pattern, vips.PNG, 40, 30, 1)
		if err != nil {
			t.Fatal(err)
		}
		if name != "2001" { // identifiers exactly "2" and "3"
			if err := os.Rename(made, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	base := serve(t, Config{Unversioned: rules.V2}, vips.Config{TilePath: dir}) + "/iiif"
	for _, tc := range []struct {
		path     string
		status   int
		location string
	}{
		// "2" is the version: a bare identifier "info.json", redirected.
		{"/2/info.json", http.StatusSeeOther, "/2/info.json/info.json"},
		{"/%32/info.json", http.StatusOK, ""},               // the image named "2", unversioned
		{"/3/%33/info.json", http.StatusOK, ""},             // the image named "3", in 3.0
		{"/2001.png/info.json", http.StatusOK, ""},          // a leading digit is no version
		{"/2/2001.png/info.json", http.StatusOK, ""},        // versioned
		{"/", http.StatusNotFound, ""},                      // the service root is no image
		{"x/2/2001.png/info.json", http.StatusNotFound, ""}, // /iiifx is not WebPath
	} {
		r := get(t, base+tc.path)
		if r.status != tc.status {
			t.Errorf("%s: %d, want %d: %s", tc.path, r.status, tc.status, clip(r.body))
		}
		if tc.location != "" && r.header.Get("Location") != base+tc.location {
			t.Errorf("%s: Location %q, want %q", tc.path, r.header.Get("Location"), base+tc.location)
		}
	}
}

// TestUnescapedSlashIs404: the IIIF validator's case; an identifier with a
// raw "/" names no image (404), whatever the form.
func TestUnescapedSlashIs404(t *testing.T) {
	base := serve(t, Config{Unversioned: rules.V2}, vips.Config{}) + "/iiif"
	for _, p := range []string{
		"/3/a/b/full/max/0/default.jpg",
		"/2/a/b/full/max/0/default.jpg",
		"/a/b/full/max/0/default.jpg",
		"/3/sub dir/img/info.json",
	} {
		r := get(t, base+strings.ReplaceAll(p, " ", "%20"))
		if r.status != http.StatusNotFound || !strings.Contains(string(r.body), "%2F") {
			t.Errorf("%s: %d %q, want 404 with the %%2F hint", p, r.status, r.body)
		}
	}
	// A malformed request of the right shape stays a 400 naming its part.
	if r := get(t, base+"/3/pattern.tif/full/0,/0/default.jpg"); r.status != http.StatusBadRequest {
		t.Errorf("bad size: %d, want 400", r.status)
	}
	if r := get(t, base+"/3/pattern.tif/full/max/0"); r.status != http.StatusBadRequest {
		t.Errorf("short path: %d, want 400", r.status)
	}
}

// TestSignedUnversionedURLs: a signature works in front of the unversioned
// form, and SignURL signs it as it is.
func TestSignedUnversionedURLs(t *testing.T) {
	cp := serveWith(t, vips.Config{TilePath: tilePath}, Config{Unversioned: rules.V2}, 0, "", true)
	s := mustSigner(t, keyNew)
	cp.p.signer.Store(s)
	root := strings.TrimSuffix(cp.base, "/3/")
	esc := url.PathEscape("sub dir/img.png")
	if r := get(t, root+"/"+esc+"/info.json"); r.status != http.StatusForbidden {
		t.Fatalf("unsigned unversioned: %d, want 403", r.status)
	}
	signed, id, err := s.SignURL("/iiif", root+"/"+esc+"/full/64,/0/default.jpg", time.Now().Add(time.Hour))
	if err != nil || id != "sub dir/img.png" {
		t.Fatalf("SignURL: %q %q %v", signed, id, err)
	}
	if r := get(t, signed); r.status != http.StatusOK {
		t.Fatalf("signed unversioned image %s: %d %s", signed, r.status, clip(r.body))
	}
	info := strings.Replace(signed, "/full/64,/0/default.jpg", "/info.json", 1)
	r := get(t, info)
	var doc map[string]any
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("%d %s", r.status, clip(r.body))
	}
	if want := strings.TrimSuffix(info, "/info.json"); doc["@id"] != want {
		t.Errorf("signed unversioned @id %v, want %s", doc["@id"], want)
	}
}

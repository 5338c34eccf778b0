package proxy

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/renderer/fake"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// An upstream whose info.json cannot be had (5xx, unusable) still serves
// images: keyed by the request's normalised form, cached in the tier the
// request classifies to, forwarded once per key.
func TestFakeUnsizedFallsBackToNormalisedKeys(t *testing.T) {
	fw := &fake.Forwarding{Renderer: fake.New()}
	fp := serveFakeOver(t, fw.Renderer, fw, true, nil)
	for _, serr := range []error{
		&renderer.UnavailableError{Status: http.StatusInternalServerError, Err: errors.New("500")},
		&renderer.SourceError{ID: "a", Detail: "the upstream's info.json gives a size of 0×0"},
	} {
		fp.p.cache.PurgeID("a")
		fw.FailInfo("a", serr)
		before := fw.Forwards.Load()
		first := fget(t, fp.base+"a/full/200,/0/default.jpg")
		if first.status != http.StatusOK || first.header.Get("X-Cache") != xMiss || first.body != "fake a forwarded full/200,/0/default.jpg" {
			t.Fatalf("%v: %d %s %q", serr, first.status, first.header.Get("X-Cache"), first.body)
		}
		// Other spellings of the same request share its entry.
		for _, path := range []string{"a/full/200,/360/default.jpg", "a/full/200,/0.0/default.jpg"} {
			if r := fget(t, fp.base+path); r.status != http.StatusOK || r.header.Get("X-Cache") != xHit || r.body != first.body {
				t.Errorf("%v: %s: %d %s %q, want a hit on the first entry", serr, path, r.status, r.header.Get("X-Cache"), r.body)
			}
		}
		if n := fw.Forwards.Load() - before; n != 1 {
			t.Errorf("%v: %d forwards, want 1", serr, n)
		}
	}
	st := fp.p.cache.Tier(rules.TierThumbnail).Stats()
	if st.MemHits+st.DiskHits == 0 {
		t.Errorf("a thumbnail's normalised entry was not in the thumbnail tier: %+v", st)
	}

	// Still parsed and bounded at the edge: nothing reaches the renderer.
	before := fw.Forwards.Load()
	fw.Lim = rules.Limits{MaxWidth: 2000}
	for _, path := range []string{"a/full/0,/0/default.jpg", "a/full/3000,10/0/default.jpg", "a/0,0,100,100/200,/0/default.jpg"} {
		if r := fget(t, fp.base+path); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", path, r.status)
		}
	}
	if n := fw.Forwards.Load() - before; n != 0 {
		t.Errorf("bad requests cost %d forwards", n)
	}

	// The description back: canonical keys again, rendered by the renderer.
	fw.FailInfo("a", nil)
	if r := fget(t, fp.base+"a/full/200,/0/default.jpg"); r.status != http.StatusOK || r.header.Get("X-Cache") != xMiss || !strings.HasPrefix(r.body, "fake a v1 ") {
		t.Errorf("described again: %d %s %q, want a render under the canonical key", r.status, r.header.Get("X-Cache"), r.body)
	}
}

// A description that timed out is not followed by a forward that would wait
// as long again; a stored normalised entry is served; 404 stays 404.
func TestFakeUnsizedTimeoutsAndMissing(t *testing.T) {
	fw := &fake.Forwarding{Renderer: fake.New()}
	fp := serveFakeOver(t, fw.Renderer, fw, true, nil)
	fw.FailInfo("a", &renderer.UnavailableError{Err: errors.New("refused")})
	if r := fget(t, fp.base+"a/0,0,256,256/256,/0/default.jpg"); r.status != http.StatusOK {
		t.Fatalf("refused info.json: %d", r.status)
	}
	fw.FailInfo("a", &renderer.UnavailableError{Timeout: true, Err: errors.New("deadline")})
	n := fw.Forwards.Load()
	if r := fget(t, fp.base+"a/0,0,256,256/256,/0/default.jpg"); r.status != http.StatusOK || r.header.Get("X-Cache") != xHit {
		t.Errorf("stored normalised entry, info.json timing out: %d %s", r.status, r.header.Get("X-Cache"))
	}
	if r := fget(t, fp.base+"a/0,0,512,512/256,/0/default.jpg"); r.status != http.StatusGatewayTimeout {
		t.Errorf("nothing stored, info.json timing out: %d, want 504", r.status)
	}
	if fw.Forwards.Load() != n {
		t.Errorf("a timed-out description was followed by a forward")
	}
	if r := fget(t, fp.base+"missing/full/200,/0/default.jpg"); r.status != http.StatusNotFound || fw.Forwards.Load() != n {
		t.Errorf("missing image: %d, forwarded %d", r.status, fw.Forwards.Load()-n)
	}
	// The fake renderer itself is no Forwarder: embedded mode fails as before.
	plain := serveFake(t, true, nil)
	plain.r.FailInfo("a", &renderer.UnavailableError{Status: 500, Err: errors.New("500")})
	if r := fget(t, plain.base+"a/full/200,/0/default.jpg"); r.status != http.StatusBadGateway {
		t.Errorf("no Forwarder: %d, want 502", r.status)
	}
}

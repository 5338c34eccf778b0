//go:build cgo

package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	keyOld = strings.Repeat("o", 32)
	keyNew = strings.Repeat("n", 32)
	keyBad = strings.Repeat("x", 32)
)

func mustSigner(t *testing.T, keys ...string) *Signer {
	t.Helper()
	s, err := NewSigner([]string{"sub dir/"}, keys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignedURLs(t *testing.T) {
	cp := serveCached(t, tilePath, 0, "")
	// Rotation: the new key signs, the old one still verifies.
	cp.p.signer.Store(mustSigner(t, keyNew, keyOld))
	root := strings.TrimSuffix(cp.base, "/3/") // http://host/iiif
	id := "sub dir/img.png"
	esc := url.PathEscape(id)
	later := time.Now().Add(time.Hour)
	seg := func(keys []string, exp time.Time) string {
		s, err := mustSigner(t, keys...).Sign(id, exp)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := seg([]string{keyNew}, later)
	tampered := []byte(good) // one character of the MAC changed, still base64url
	if i := len(tampered) - 10; tampered[i] == 'A' {
		tampered[i] = 'B'
	} else {
		tampered[i] = 'A'
	}
	expiredLater := seg([]string{keyNew}, time.Now().Add(-time.Second))
	_, goodMAC, _ := strings.Cut(good, ".")
	for _, tc := range []struct {
		name, url string
		want      int
	}{
		{"unsigned", root + "/3/" + esc + "/full/64,/0/default.jpg", http.StatusForbidden},
		{"unsigned info", root + "/3/" + esc + "/info.json", http.StatusForbidden},
		{"unsigned base redirect", root + "/3/" + esc, http.StatusForbidden},
		{"unsigned and missing: 403, not 404, before any file", root + "/3/sub%20dir%2Fnope/info.json", http.StatusForbidden},
		{"expired", root + "/signed/" + expiredLater + "/3/" + esc + "/info.json", http.StatusForbidden},
		{"tampered mac", root + "/signed/" + string(tampered) + "/3/" + esc + "/info.json", http.StatusForbidden},
		{"tampered expiry", root + "/signed/" + "9999999999." + goodMAC + "/3/" + esc + "/info.json", http.StatusForbidden},
		{"wrong key", root + "/signed/" + seg([]string{keyBad}, later) + "/3/" + esc + "/info.json", http.StatusForbidden},
		{"signed for another image", root + "/signed/" + good + "/3/sub%20dir%2Fother/info.json", http.StatusForbidden},
		{"garbage", root + "/signed/abc/3/" + esc + "/info.json", http.StatusForbidden},
		{"valid", root + "/signed/" + good + "/3/" + esc + "/full/64,/0/default.jpg", http.StatusOK},
		{"valid 2.1", root + "/signed/" + good + "/2/" + esc + "/full/64,/0/default.jpg", http.StatusOK},
		{"rotated: the old key still verifies", root + "/signed/" + seg([]string{keyOld}, later) + "/3/" + esc + "/info.json", http.StatusOK},
		{"unprotected needs nothing", root + "/3/pattern.tif/info.json", http.StatusOK},
		{"unprotected with a made-up signature", root + "/signed/1.x%22%3E/3/pattern.tif/info.json", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, tc.url)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, clip(r.body))
			}
			if tc.want == http.StatusForbidden && r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("a 403 must not be cached: Cache-Control %q", r.header.Get("Cache-Control"))
			}
		})
	}

	// A key dropped from the list no longer verifies.
	cp.p.signer.Store(mustSigner(t, keyNew))
	if r := get(t, root+"/signed/"+seg([]string{keyOld}, later)+"/3/"+esc+"/info.json"); r.status != http.StatusForbidden {
		t.Errorf("retired key: status %d, want 403", r.status)
	}
}

// The signature is carried by info.json's id, so the URLs a viewer builds
// from it work, and is no part of the cache key: two signatures, one entry.
func TestSignatureSurvivesViewersAndIsNotInTheCacheKey(t *testing.T) {
	cp := serveCached(t, tilePath, 0, "")
	s := mustSigner(t, keyNew)
	cp.p.signer.Store(s)
	root := strings.TrimSuffix(cp.base, "/3/")
	id := "sub dir/img.png"
	var xcache []string
	for _, exp := range []time.Time{time.Now().Add(time.Hour), time.Now().Add(2 * time.Hour)} {
		seg, _ := s.Sign(id, exp)
		r := get(t, root+"/signed/"+seg+"/3/"+url.PathEscape(id)+"/info.json")
		var info struct{ ID string }
		if err := json.Unmarshal(r.body, &info); err != nil || r.status != http.StatusOK {
			t.Fatalf("info.json %d: %v %s", r.status, err, clip(r.body))
		}
		if want := root + "/signed/" + seg + "/3/" + url.PathEscape(id); info.ID != want {
			t.Fatalf("id %q, want %q", info.ID, want)
		}
		tile := get(t, info.ID+"/0,0,256,256/256,/0/default.jpg") // as OpenSeadragon builds it
		if tile.status != http.StatusOK {
			t.Fatalf("tile from the id: %d %s", tile.status, clip(tile.body))
		}
		if link := tile.header.Get("Link"); !strings.Contains(link, "/signed/"+seg+"/") {
			t.Errorf("canonical Link lacks the signature: %s", link)
		}
		// Private, and no longer than the signature lives: no shared
		// cache may keep a protected image past its expiry.
		cc := tile.header.Get("Cache-Control")
		var left int64
		if _, err := fmt.Sscanf(cc, "private, max-age=%d", &left); err != nil || left <= 0 || left > int64(time.Until(exp)/time.Second)+1 {
			t.Errorf("Cache-Control of a signed tile valid for %s: %q", time.Until(exp).Round(time.Second), cc)
		}
		xcache = append(xcache, tile.header.Get("X-Cache"))
	}
	if xcache[0] != xMiss || xcache[1] != xHit {
		t.Errorf("X-Cache of one tile under two signatures: %v, want [MISS HIT]", xcache)
	}
}

// Forged Host headers do not each make an info cache entry: one per image
// and version, with each response's id built from its own request.
func TestForgedHostsShareOneInfoEntry(t *testing.T) {
	cp := serveCached(t, tilePath, 0, "")
	const n = 2000
	for i := range n {
		req, _ := http.NewRequest(http.MethodGet, cp.base+"pattern.tif/info.json", nil)
		host := "h" + strings.Repeat("x", i%7) + "-" + strconv.Itoa(i) + ".example"
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var info struct{ ID string }
		err = json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		if err != nil || info.ID != "http://"+host+"/iiif/3/pattern.tif" {
			t.Fatalf("request %d: id %q (%v)", i, info.ID, err)
		}
	}
	st := cp.p.Stats().Tiers["info"]
	if st.Store.Entries != 1 || st.Memory > 1 {
		t.Fatalf("after %d Hosts: %d entries on disk, %d in memory; want 1", n, st.Store.Entries, st.Memory)
	}
	if st.Misses != 1 || st.DiskHits+st.MemoryHits != n-1 {
		t.Errorf("misses %d hits %d+%d, want 1 and %d", st.Misses, st.MemoryHits, st.DiskHits, n-1)
	}
}

func TestSignURL(t *testing.T) {
	s := mustSigner(t, keyNew)
	exp := time.Unix(1767225600, 0)
	seg, _ := s.Sign("sub dir/img.png", exp)
	for _, tc := range []struct{ in, want, err string }{
		{"/iiif/3/sub%20dir%2Fimg.png/info.json", "/iiif/signed/" + seg + "/3/sub%20dir%2Fimg.png/info.json", ""},
		{"/iiif/2/sub%20dir%2Fimg.png/full/max/0/default.jpg", "/iiif/signed/" + seg + "/2/sub%20dir%2Fimg.png/full/max/0/default.jpg", ""},
		{"https://img.example.org/iiif/3/sub%20dir%2Fimg.png", "https://img.example.org/iiif/signed/" + seg + "/3/sub%20dir%2Fimg.png", ""},
		{"/iiif/signed/1.abc/3/sub%20dir%2Fimg.png/info.json", "/iiif/signed/" + seg + "/3/sub%20dir%2Fimg.png/info.json", ""},
		{"/other/3/x/info.json", "", "not under IIIFWebPath"},
		{"/iiif/4/x/info.json", "", "expected"},
	} {
		got, _, err := s.SignURL("/iiif", tc.in, exp)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestNoSignerRefusesSignedURLs(t *testing.T) {
	cp := serveCached(t, tilePath, 0, "")
	if r := get(t, strings.TrimSuffix(cp.base, "/3/")+"/signed/9999999999.abc/3/pattern.tif/info.json"); r.status != http.StatusForbidden {
		t.Fatalf("a signed URL with no keys configured: %d, want 403", r.status)
	}
}

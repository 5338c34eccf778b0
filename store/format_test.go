package store

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
)

// TestSourceIdentityIsStoredAndChecked: the source identity round-trips
// through Put, Get, GetAppend and Refresh (which rewrites the header), and a
// flipped byte in it fails the value's check like any other byte.
func TestSourceIdentityIsStoredAndChecked(t *testing.T) {
	clk := newClock()
	tier := openMem(t, Config{}, clk)
	e := jpeg(3000, 3)
	e.SourceIdentity = "v1:1a2b:4d2:17f0e1c2d3b4a596:17f0e1c2d3b4a597"
	stored, err := tier.Put([]byte("k"), e)
	if err != nil || stored.SourceIdentity != e.SourceIdentity {
		t.Fatalf("Put = %q, %v", stored.SourceIdentity, err)
	}
	check := func(when string) {
		t.Helper()
		got, err := tier.Get([]byte("k"))
		if err != nil || got.SourceIdentity != e.SourceIdentity || !bytes.Equal(got.Body, e.Body) {
			t.Fatalf("%s: Get = %q, %d bytes, %v", when, got.SourceIdentity, len(got.Body), err)
		}
		got, _, err = tier.GetAppend([]byte("k"), nil)
		if err != nil || got.SourceIdentity != e.SourceIdentity || !bytes.Equal(got.Body, e.Body) {
			t.Fatalf("%s: GetAppend = %q, %v", when, got.SourceIdentity, err)
		}
	}
	check("after Put")
	clk.Advance(2 * time.Hour)
	if err := tier.Refresh([]byte("k"), clk.Now()); err != nil {
		t.Fatal(err)
	}
	check("after Refresh")

	v, closer, err := tier.db.Get(appendEntryKey(nil, []byte("k")))
	if err != nil {
		t.Fatal(err)
	}
	v = bytes.Clone(v)
	closer.Close()
	if v[offVersion] != formatV3 {
		t.Fatalf("written as format %d, want %d", v[offVersion], formatV3)
	}
	v[headerLen+len(e.ContentType)+3] ^= 1 // inside the identity
	if err := tier.db.Set(appendEntryKey(nil, []byte("k")), v, pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Get([]byte("k")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Get of a value with a flipped identity byte = %v, want ErrCorrupt", err)
	}
}

// TestVersion2ValuesReadWithoutIdentity: values written before the source
// identity (format 2) are still served, with an empty SourceIdentity, which
// the proxy's revalidation treats as "changed".
func TestVersion2ValuesReadWithoutIdentity(t *testing.T) {
	clk := newClock()
	tier := openMem(t, Config{}, clk)
	body := jpeg(4000, 9).Body
	const ct = "image/jpeg"
	h := header{version: formatV2, hlen: headerLen, flags: flagLastMod, ctLen: len(ct), bodyLen: len(body),
		lastMod: 1700000000, storedAt: 1, access: seconds(clk.Now()), bodyHash: xxhash.Sum64(body), bodyCRC: bodyCRC(body)}
	v := make([]byte, headerLen+len(ct)+len(body))
	copy(v[headerLen:], ct)
	copy(v[headerLen+len(ct):], body)
	putHeader(v, &h)
	if err := tier.db.Set(appendEntryKey(nil, []byte("old")), v, pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	e, err := tier.Get([]byte("old"))
	if err != nil || e.SourceIdentity != "" || !bytes.Equal(e.Body, body) || e.ContentType != ct ||
		!e.LastModified.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("Get = %q %q %d bytes, %v", e.ContentType, e.SourceIdentity, len(e.Body), err)
	}
	clk.Advance(time.Hour)
	if err := tier.Refresh([]byte("old"), clk.Now()); err != nil { // rewrites the version-2 header in place
		t.Fatal(err)
	}
	if e, err := tier.Get([]byte("old")); err != nil || !bytes.Equal(e.Body, body) {
		t.Fatalf("after Refresh: %v", err)
	}
}

package store

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// TestEncodeDecode: an encoded entry decodes to itself, and every
// single-byte change, truncation or padding of it is refused as corrupt.
func TestEncodeDecode(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	e := Entry{ContentType: "image/jpeg", LastModified: at.Truncate(time.Second), SourceIdentity: "file:1:2:3",
		StoredAt: at, Body: []byte("some pixels")}
	v, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(v)
	if err != nil {
		t.Fatal(err)
	}
	if got.ContentType != e.ContentType || !got.LastModified.Equal(e.LastModified) || got.SourceIdentity != e.SourceIdentity ||
		!got.StoredAt.Equal(at) || !bytes.Equal(got.Body, e.Body) || got.ETag != ETag(e.Body) {
		t.Fatalf("Decode(Encode(e)) = %+v, want %+v", got, e)
	}
	for i := range v {
		bad := bytes.Clone(v)
		bad[i] ^= 0x20
		if _, err := Decode(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d altered: err %v, want ErrCorrupt", i, err)
		}
	}
	for _, bad := range [][]byte{v[:len(v)-1], append(bytes.Clone(v), 0), nil, v[:20]} {
		if _, err := Decode(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%d bytes of %d: err %v, want ErrCorrupt", len(bad), len(v), err)
		}
	}
}

package shared

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
)

// Key layout under the layer's prefix P (s3://bucket/P):
//
//	P o/{id}/{tier}/{rest}   an entry: the store's encoded value (store.Encode)
//	P l/{id}/{tier}/{rest}   the lease of a render in progress (lease.go)
//	P g/{id}                 the identifier's generation: when it was last purged
//
// {id} is the identifier path-escaped ("/" is "%2F"), so it holds no "/"
// and "o/{id}/" is a prefix of exactly one identifier's entries: a purge is
// one listing and one batch delete. {rest} is the part of the cache key
// after the identifier (the canonical request, e.g.
// "0,0,512,512/256,256/0/default.jpg"), escaped the same way. A key that
// would pass S3's 1024 bytes has its {rest} (then its {id}) replaced by a
// SHA-256, so any identifier works. The spaces are separate prefixes so
// that the lifecycle rule (lifecycle.go) can expire each on its own terms.
type keys struct{ prefix string }

const maxObjectKey = 1024

func (k keys) idPart(id string) string {
	e := url.PathEscape(id)
	if len(k.prefix)+len(e)+2+16+1+64+8 > maxObjectKey {
		e = "~" + hash(id)
	}
	return e
}

func (k keys) entry(tier string, key []byte) string { return k.object("o/", tier, key) }
func (k keys) lease(tier string, key []byte) string { return k.object("l/", tier, key) }
func (k keys) generation(id string) string          { return k.prefix + "g/" + k.idPart(id) }
func (k keys) entries(id string) string             { return k.prefix + "o/" + k.idPart(id) + "/" }

func (k keys) object(space, tier string, key []byte) string {
	id, rest, _ := bytes.Cut(key, []byte{0})
	s := k.prefix + space + k.idPart(string(id)) + "/" + tier + "/"
	r := url.PathEscape(string(rest))
	if len(s)+len(r) > maxObjectKey {
		r = "~" + hash(string(rest))
	}
	return s + r
}

// idOf is the identifier a cache key starts with.
func idOf(key []byte) string {
	id, _, _ := bytes.Cut(key, []byte{0})
	return string(id)
}

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

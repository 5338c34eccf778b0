package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/iiif-proxy/iiif-proxy/proxy/proxyconf"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// Protected images. Identifiers under a configured prefix are served only to
// URLs that carry a valid signature: an HMAC-SHA256, under one of the
// signing keys, of the identifier and an expiry time. The signature is a
// path segment between WebPath and the version,
//
//	{WebPath}/signed/{expiry}.{mac}/3/{identifier}/…
//	/iiif/signed/1767225600.q1Qf…/3/private%2Fscan.tif/info.json
//
// so that info.json's id carries it and every URL a viewer builds from that
// id (OpenSeadragon appends /{region}/{size}/{rotation}/{quality}.{format})
// inherits it; a query string would not survive. The signature covers the
// image (its identifier), not one derivative, and is no part of any cache
// key. Several keys may be valid at once so that keys can be rotated: the
// first signs, every one verifies.

// signedSegment is the path segment that introduces a signature.
const signedSegment = "/signed/"

var (
	errUnsigned  = errors.New("this image needs a signed URL")
	errExpired   = errors.New("the URL's signature has expired")
	errSignature = errors.New("the URL's signature is not valid")
)

// Signer signs and checks protected images' URLs. Its methods are safe for
// concurrent use; it never changes after NewSigner.
type Signer struct {
	prefixes []string
	keys     [][]byte
}

// MinKeyLen is the shortest signing key accepted: HMAC-SHA256 wants keys of
// its output size or more to keep its full strength.
const MinKeyLen = proxyconf.MinSigningKeyLen

// NewSigner returns a Signer for the identifiers under prefixes; keys[0]
// signs, every key verifies. No prefixes means nothing is protected. The
// checks are proxyconf.CheckSigning, the configuration's too.
func NewSigner(prefixes []string, keys []string) (*Signer, error) {
	if err := proxyconf.CheckSigning(prefixes, keys); err != nil {
		return nil, err
	}
	s := &Signer{prefixes: prefixes}
	for _, k := range keys {
		s.keys = append(s.keys, []byte(k))
	}
	return s, nil
}

// Protected reports whether id needs a signed URL.
func (s *Signer) Protected(id string) bool {
	if s == nil {
		return false
	}
	for _, p := range s.prefixes {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

func mac(key []byte, id string, expiry int64) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("iiif-proxy signed v1\n"))
	h.Write([]byte(id))
	h.Write([]byte{'\n'})
	h.Write(strconv.AppendInt(nil, expiry, 10))
	return h.Sum(nil)
}

// Sign returns the signature segment "{expiry}.{mac}" for id, valid until
// expires.
func (s *Signer) Sign(id string, expires time.Time) (string, error) {
	if s == nil || len(s.keys) == 0 {
		return "", errors.New("no signing key configured")
	}
	exp := expires.Unix()
	return strconv.FormatInt(exp, 10) + "." + base64.RawURLEncoding.EncodeToString(mac(s.keys[0], id, exp)), nil
}

// Check verifies seg, a signature segment, for id at time now. A nil
// Signer verifies nothing.
func (s *Signer) Check(id, seg string, now time.Time) error {
	if seg == "" {
		return errUnsigned
	}
	if s == nil {
		return errSignature // no keys: nothing verifies
	}
	expS, macS, ok := strings.Cut(seg, ".")
	exp, err := strconv.ParseInt(expS, 10, 64)
	if !ok || err != nil {
		return errSignature
	}
	got, err := base64.RawURLEncoding.DecodeString(macS)
	if err != nil || len(got) != sha256.Size {
		return errSignature
	}
	valid := false
	for _, k := range s.keys { // every key, so the time taken does not say which matched
		if hmac.Equal(got, mac(k, id, exp)) {
			valid = true
		}
	}
	if !valid {
		return errSignature
	}
	if now.Unix() >= exp {
		return errExpired
	}
	return nil
}

// cutSignature takes a leading "/signed/{seg}" off rest (the path after
// WebPath) and returns the segment and what follows it.
func cutSignature(rest []byte) (seg, after []byte) {
	r, ok := cutPrefix(rest, signedSegment)
	if !ok {
		return nil, rest
	}
	for i, c := range r {
		if c == '/' {
			return r[:i], r[i:]
		}
	}
	return r, nil
}

func cutPrefix(b []byte, p string) ([]byte, bool) {
	if len(b) >= len(p) && string(b[:len(p)]) == p {
		return b[len(p):], true
	}
	return b, false
}

// SignURL inserts a signature segment valid until exp into target, a path
// or URL under webPath (IIIFWebPath), and returns it with the image's
// identifier: /iiif/3/x/info.json → /iiif/signed/{expiry}.{mac}/3/x/info.json,
// /iiif/x/info.json → /iiif/signed/{expiry}.{mac}/x/info.json.
func (s *Signer) SignURL(webPath, target string, exp time.Time) (signed, id string, err error) {
	origin, path := "", target
	if u, err := url.Parse(target); err == nil && u.Host != "" {
		origin = u.Scheme + "://" + u.Host
		path = u.EscapedPath()
	}
	webPath = strings.TrimRight(webPath, "/")
	rest, ok := strings.CutPrefix(path, webPath)
	if !ok {
		return "", "", fmt.Errorf("%q is not under IIIFWebPath %q", path, webPath)
	}
	if after, ok := strings.CutPrefix(rest, signedSegment); ok { // re-signing a signed URL
		if i := strings.IndexByte(after, '/'); i >= 0 {
			rest = after[i:]
		}
	}
	// The version only decides how the path parses, not the identifier: an
	// unversioned (RAIS) URL is signed as it is, and parsed as 2.1.
	v, after := rules.V2, ""
	switch {
	case strings.HasPrefix(rest, "/3/"):
		v, after = rules.V3, rest[3:]
	case strings.HasPrefix(rest, "/2/"):
		after = rest[3:]
	case len(rest) > 1 && rest[0] == '/':
		after = rest[1:]
	default:
		return "", "", fmt.Errorf("%q: expected %s/3/{identifier}/…, %s/2/{identifier}/… or %s/{identifier}/…", path, webPath, webPath, webPath)
	}
	req, err := rules.Parse(v, after)
	if err != nil {
		return "", "", err
	}
	seg, err := s.Sign(req.ID, exp)
	if err != nil {
		return "", "", err
	}
	return origin + webPath + signedSegment + seg + rest, req.ID, nil
}

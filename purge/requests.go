package purge

import (
	"fmt"
	"net/url"
	"strings"
)

// Scope is what a purge dropped.
type Scope string

const (
	ScopeID   Scope = "id"   // every derivative of one identifier
	ScopeTier Scope = "tier" // one tier
	ScopeAll  Scope = "all"  // everything
)

// Reasons of a purge, as Event.Reason says them.
const (
	ReasonAdmin         = "admin"          // the admin API (or iiif-proxy purge)
	ReasonSourceChanged = "source-changed" // revalidation found the source changed or gone
	ReasonReload        = "reload"         // SIGHUP changed what cached documents say
)

// Event is one purge, as a webhook receives it (JSON).
type Event struct {
	Scope  Scope  `json:"scope"`
	ID     string `json:"id,omitempty"`   // ScopeID: the identifier, decoded ("box1/scan.tif")
	Tier   string `json:"tier,omitempty"` // ScopeTier: tile, thumbnail, info or other
	Reason string `json:"reason"`
	// URLs are the URLs a PURGE target is sent: each version form's
	// info.json and base. Absolute when Config.BaseURL is set.
	URLs []string `json:"urls,omitempty"`
	// Prefixes are the path prefixes every purged URL starts with (for a
	// CDN's wildcard or prefix invalidation): each version form's
	// "{path}/3/{id}/", or "{path}/" for a tier or everything.
	Prefixes []string `json:"prefixes"`
	// BanRegex is what a BAN target gets in X-Ban-Url: every URL of the
	// purge, whatever its version form or percent-encoding.
	BanRegex string `json:"banRegex"`
}

// versionSegments are the version forms of a URL: "/3", "/2", and "" (the
// unversioned form, RAIS's) when served.
func versionSegments(unversioned bool) []string {
	if unversioned {
		return []string{"/3", "/2", ""}
	}
	return []string{"/3", "/2"}
}

// event builds the Event of a purge under path (the IIIFWebPath or a
// target's own path); base is "" or the public scheme://host.
func (c *Config) event(scope Scope, id, tier, reason, path, base string) Event {
	ev := Event{Scope: scope, ID: id, Tier: tier, Reason: reason}
	switch scope {
	case ScopeID:
		esc := url.PathEscape(id)
		for _, v := range versionSegments(c.Unversioned) {
			p := path + v + "/" + esc
			ev.URLs = append(ev.URLs, base+p+"/info.json", base+p)
			ev.Prefixes = append(ev.Prefixes, p+"/")
		}
		ev.BanRegex = idRegex(path, id)
	case ScopeTier:
		ev.Prefixes = []string{path + "/"}
		if tier == "info" {
			// info.json is recognisable by its URL; no other tier is.
			ev.BanRegex = "^" + quote(path) + "/.*/info[.]json([?]|$)"
		} else {
			ev.BanRegex = "^" + quote(path) + "/"
		}
	default:
		ev.Prefixes = []string{path + "/"}
		ev.BanRegex = "^" + quote(path) + "/"
	}
	return ev
}

// idRegex matches the path (query included, as Varnish's req.url) of every
// URL of identifier id under path: the three version forms, signed URLs
// ({path}/signed/{expiry}.{mac}/…), the base, info.json and every image,
// whatever the client percent-encoded. For /iiif and "box1/scan.tif":
//
//	^/iiif/(signed/[^/]+/)?([23]/)?(b|%62)(o|%6[fF])…%2[fF](s|%73)…([/?]|$)
//
// It may match a little more than id's URLs (an image named "2" under
// /iiif/2/…), never less; a ban that drops a few more objects costs only
// their next fetch. It is written without backslashes (a literal is a
// class: "[.]"), as PCRE, RE2 and Varnish's ban parser read it alike.
func idRegex(path, id string) string {
	var b strings.Builder
	b.WriteString("^")
	b.WriteString(quote(path))
	b.WriteString("/(signed/[^/]+/)?([23]/)?")
	for _, r := range id {
		if pathLiteral(r) {
			b.WriteString("(")
			b.WriteString(quote(string(r)))
			b.WriteString("|")
			writeEncoded(&b, string(r))
			b.WriteString(")")
			continue
		}
		// "/" must be encoded (an unescaped one names no image), and
		// anything else outside pchar cannot appear raw in a request line.
		writeEncoded(&b, string(r))
	}
	b.WriteString("([/?]|$)")
	return b.String()
}

// pathLiteral reports whether r may appear unencoded in a path segment of
// a URL a client sends: RFC 3986's pchar less "/" and "%".
func pathLiteral(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return true
	}
	return strings.ContainsRune("-._~!$&'()*+,;=:@", r)
}

// writeEncoded writes the percent-encoding of s's bytes, hex digits in
// either case: "%2[fF]".
func writeEncoded(b *strings.Builder, s string) {
	for i := range len(s) {
		hex := fmt.Sprintf("%02X", s[i])
		b.WriteByte('%')
		for _, h := range []byte(hex) {
			if h >= 'A' && h <= 'F' {
				b.WriteString("[" + string(h+'a'-'A') + string(h) + "]")
			} else {
				b.WriteByte(h)
			}
		}
	}
}

// quote makes s a literal in the regex: letters, digits and "/-_~" stand
// for themselves, every other character is a one-character class ("[.]"),
// so no backslash is needed. Characters a class cannot hold literally
// ("]", "\", "^"), and those Varnish's ban parser splits or quotes on (" ",
// '"'), never reach it: pathLiteral excludes them, and a web path holding
// one is written encoded.
func quote(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', strings.ContainsRune("/-_~", r):
			b.WriteRune(r)
		case strings.ContainsRune(`]\^" `, r) || r < 0x20 || r >= 0x7f:
			writeEncoded(&b, string(r))
		default:
			b.WriteString("[" + string(r) + "]")
		}
	}
	return b.String()
}

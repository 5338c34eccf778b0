package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"github.com/valyala/fasthttp"

	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// What the service supports beyond level 2, per version's vocabulary.
var (
	extraFormats   = []string{"webp", "gif", "tif"}
	extraQualities = []string{"color", "gray", "bitonal"}
	extraFeatures3 = []string{"canonicalLinkHeader", "mirroring", "profileLinkHeader", "regionSquare",
		"rotationArbitrary", "sizeUpscaling"}
	formats2  = []string{"jpg", "png", "webp", "gif", "tif"}
	supports2 = []string{"canonicalLinkHeader", "mirroring", "profileLinkHeader", "regionSquare",
		"rotationArbitrary", "sizeAboveFull", "baseUriRedirect", "cors", "jsonldMediaType"}
)

const (
	context3 = "http://iiif.io/api/image/3/context.json"
	context2 = "http://iiif.io/api/image/2/context.json"
	profile3 = "http://iiif.io/api/image/3/level2.json"
	profile2 = "http://iiif.io/api/image/2/level2.json"
)

type sizeJSON struct {
	Width  int `json:"width"`
	Height int `json:"height"`
}

type tileJSON struct {
	Width        int   `json:"width"`
	Height       int   `json:"height"`
	ScaleFactors []int `json:"scaleFactors"`
}

type info3 struct {
	Context        string     `json:"@context"`
	ID             string     `json:"id"`
	Type           string     `json:"type"`
	Protocol       string     `json:"protocol"`
	Profile        string     `json:"profile"`
	Width          int        `json:"width"`
	Height         int        `json:"height"`
	MaxWidth       int        `json:"maxWidth,omitempty"`
	MaxHeight      int        `json:"maxHeight,omitempty"`
	MaxArea        int64      `json:"maxArea,omitempty"`
	Sizes          []sizeJSON `json:"sizes,omitempty"`
	Tiles          []tileJSON `json:"tiles"`
	ExtraFormats   []string   `json:"extraFormats"`
	ExtraQualities []string   `json:"extraQualities"`
	ExtraFeatures  []string   `json:"extraFeatures"`
}

type profile2Extra struct {
	Formats   []string `json:"formats"`
	Qualities []string `json:"qualities"`
	Supports  []string `json:"supports"`
	MaxWidth  int      `json:"maxWidth,omitempty"`
	MaxHeight int      `json:"maxHeight,omitempty"`
	MaxArea   int64    `json:"maxArea,omitempty"`
}

type info2 struct {
	Context  string     `json:"@context"`
	ID       string     `json:"@id"`
	Protocol string     `json:"protocol"`
	Width    int        `json:"width"`
	Height   int        `json:"height"`
	Sizes    []sizeJSON `json:"sizes,omitempty"`
	Tiles    []tileJSON `json:"tiles"`
	Profile  []any      `json:"profile"`
}

// infoJSON builds the info.json document of src for version v; id is the
// service's full URL (base URI without a trailing slash).
func infoJSON(v rules.Version, id string, src *renderer.Source, sizes []renderer.Size, lim rules.Limits) ([]byte, error) {
	ss := make([]sizeJSON, len(sizes))
	for i, s := range sizes {
		ss[i] = sizeJSON{s.Width, s.Height}
	}
	tiles := []tileJSON{{Width: src.TileWidth, Height: src.TileHeight, ScaleFactors: src.ScaleFactors}}
	// The spec reads a lone maxWidth as maxHeight = maxWidth, and a lone
	// maxHeight is invalid; fill the unlimited side with the image's own size.
	maxW, maxH := lim.MaxWidth, lim.MaxHeight
	if maxH > 0 && maxW == 0 {
		maxW = src.Width
	}
	if maxW > 0 && maxH == 0 {
		maxH = src.Height
	}
	if v == rules.V2 {
		return json.Marshal(info2{
			Context: context2, ID: id, Protocol: "http://iiif.io/api/image",
			Width: src.Width, Height: src.Height, Sizes: ss, Tiles: tiles,
			Profile: []any{profile2, profile2Extra{
				Formats: formats2, Qualities: append([]string{"default"}, extraQualities...), Supports: supports2,
				MaxWidth: maxW, MaxHeight: maxH, MaxArea: lim.MaxArea,
			}},
		})
	}
	return json.Marshal(info3{
		Context: context3, ID: id, Type: "ImageService3", Protocol: "http://iiif.io/api/image", Profile: "level2",
		Width: src.Width, Height: src.Height, MaxWidth: maxW, MaxHeight: maxH, MaxArea: lim.MaxArea,
		Sizes: ss, Tiles: tiles,
		ExtraFormats: extraFormats, ExtraQualities: extraQualities, ExtraFeatures: extraFeatures3,
	})
}

// infoIDMark stands for the request's base URL in a cached info.json's id;
// encoding/json writes it as the six bytes of infoIDMarkJSON, which no other
// string in the document can produce before the id.
const infoIDMark = "\x00"

var infoIDMarkJSON = []byte(`\u0000`)

// relativeID is the id of an info.json without its base: "/3/{escaped id}".
func relativeID(v rules.Version, id string) string {
	b := make([]byte, 0, len(id)+8)
	if v == rules.V2 {
		b = append(b, "/2/"...)
	} else {
		b = append(b, "/3/"...)
	}
	return string(rules.AppendEscapedID(b, id))
}

// spliceBase appends doc to dst with the request's base in place of the
// mark, escaped for a JSON string.
func (p *Proxy) spliceBase(dst, doc []byte, ctx *fasthttp.RequestCtx) []byte {
	i := bytes.Index(doc, infoIDMarkJSON)
	if i < 0 {
		return append(dst, doc...)
	}
	dst = append(dst, doc[:i]...)
	var tmp [256]byte
	dst = appendJSONString(dst, p.appendBase(tmp[:0], ctx))
	rest := doc[i+len(infoIDMarkJSON):]
	if isUnversioned(ctx) {
		// The stored id is "/{2|3}/{id}" (relativeID); an unversioned
		// request's id keeps its own form, so one entry serves both.
		if len(rest) >= 3 && rest[0] == '/' && (rest[1] == '2' || rest[1] == '3') && rest[2] == '/' {
			rest = rest[2:]
		}
	}
	return append(dst, rest...)
}

// appendJSONString appends s escaped as the inside of a JSON string. Bases
// are URLs made of safe characters (safeHost checks the Host); this keeps a
// configured IIIFBaseURL or WebPath with a quote from breaking the document.
func appendJSONString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// infoDocument is the info.json of src for version v, its id standing for
// the base behind infoIDMark (spliced in per request by spliceBase).
//
// An upstream's own document (renderer.Documenter, when it speaks v) is
// kept as the upstream wrote it, byte for byte, but for the value of its
// top-level "id" (3.0) or "@id" (2.1), which must name this proxy, not the
// upstream. Otherwise the document is built from the description.
func (p *Proxy) infoDocument(v rules.Version, id string, src *renderer.Source) ([]byte, error) {
	rel := infoIDMark + relativeID(v, id)
	if d, ok := p.r.(renderer.Documenter); ok {
		if doc, ok := d.Document(src, v); ok {
			if out, err := replaceID(doc, rel); err == nil {
				return out, nil
			}
			// Not a document we can rewrite: build our own.
		}
	}
	return infoJSON(v, rel, src, p.r.Sizes(src), p.r.Limits())
}

// replaceID returns doc with the value of its top-level "id" and "@id"
// members replaced by the JSON string id; every other byte stays.
func replaceID(doc []byte, id string) ([]byte, error) {
	val, err := json.Marshal(id)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	depth := 0
	var spans [][2]int64
	expectKey := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case json.Delim:
			if t == '{' || t == '[' {
				depth++
				expectKey = t == '{' && depth == 1
			} else {
				depth--
				expectKey = depth == 1
			}
			continue
		case string:
			if depth == 1 && expectKey {
				if t == "id" || t == "@id" {
					start := dec.InputOffset()
					var raw json.RawMessage
					if err := dec.Decode(&raw); err != nil {
						return nil, err
					}
					if len(raw) > 0 && raw[0] == '"' {
						end := dec.InputOffset()
						// skip the colon and blanks between key and value
						s := start + int64(bytes.IndexByte(doc[start:end], '"'))
						spans = append(spans, [2]int64{s, end})
					}
					continue // expectKey stays true
				}
				expectKey = false
				continue
			}
		}
		if depth == 1 {
			expectKey = true // a value at the top level ends; a key follows
		}
	}
	if len(spans) == 0 {
		return nil, errors.New("info.json has no id")
	}
	out := make([]byte, 0, len(doc)+len(val))
	last := int64(0)
	for _, sp := range spans {
		out = append(out, doc[last:sp[0]]...)
		out = append(out, val...)
		last = sp[1]
	}
	return append(out, doc[last:]...), nil
}

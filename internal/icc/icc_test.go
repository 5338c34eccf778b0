package icc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

const colord = "/usr/share/color/icc/colord/"

func load(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(colord + name)
	if err != nil {
		t.Fatalf("%v: these tests need Debian's colord-data (make deps installs it)", err)
	}
	return b
}

func TestIsSRGB(t *testing.T) {
	for _, tc := range []struct {
		file string
		srgb bool
	}{
		{"sRGB.icc", true},
		{"AdobeRGB1998.icc", false},
		{"Rec709.icc", false}, // sRGB's primaries, another curve
		{"ECI-RGBv2.icc", false},
		{"ProPhotoRGB.icc", false},
		{"SwappedRedAndGreen.icc", false},
		{"Gamma6500K.icc", true}, // colord's "D65": sRGB's primaries and curve under another name
	} {
		p, err := Parse(load(t, tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if got := p.IsSRGB(); got != tc.srgb {
			t.Errorf("%s (%q): IsSRGB = %v, want %v", tc.file, p.Description(), got, tc.srgb)
		}
	}
	// A table-curve (curv) sRGB profile, as HP's and Ghostscript's are.
	if b, err := os.ReadFile("/usr/share/color/icc/ghostscript/srgb.icc"); err == nil {
		if p, err := Parse(b); err != nil || !p.IsSRGB() {
			t.Errorf("Ghostscript's srgb.icc: %v, IsSRGB false", err)
		}
	}
}

func TestParseRefusesWhatCannotTagAnImage(t *testing.T) {
	good := load(t, "AdobeRGB1998.icc")
	for name, damage := range map[string]func([]byte) []byte{
		"truncated":                func(b []byte) []byte { return b[:100] },
		"shorter than header says": func(b []byte) []byte { return b[:len(b)-1] },
		"no signature":             func(b []byte) []byte { copy(b[36:], "xxxx"); return b },
		"tag outside":              func(b []byte) []byte { binary.BigEndian.PutUint32(b[132+4:], uint32(len(b))); return b },
		"tag table too long":       func(b []byte) []byte { binary.BigEndian.PutUint32(b[128:], 5000); return b },
		"device link":              func(b []byte) []byte { copy(b[12:], "link"); return b },
		"abstract":                 func(b []byte) []byte { copy(b[12:], "abst"); return b },
	} {
		_, err := Parse(damage(bytes.Clone(good)))
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if (name == "device link" || name == "abstract") && !errors.Is(err, ErrNotImageProfile) {
			t.Errorf("%s: %v, want ErrNotImageProfile", name, err)
		}
	}
}

func TestJPEGSegmentsSplitAndSplice(t *testing.T) {
	jpg := []byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 'J', 'F', 0xFF, 0xDB, 0, 2, 0xFF, 0xD9}
	for _, n := range []int{3000, maxChunk, maxChunk + 1, 3*maxChunk + 7} {
		profile := make([]byte, n)
		for i := range profile {
			profile[i] = byte(i * 7)
		}
		out, err := SpliceJPEG([]byte("x"), jpg, JPEGSegments(profile))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(out, append([]byte("x"), jpg[:8]...)) || !bytes.HasSuffix(out, jpg[8:]) {
			t.Fatalf("%d: segments not placed after SOI and APP0", n)
		}
		var got []byte
		count := (n + maxChunk - 1) / maxChunk
		at, seq := 1+8, 1
		for out[at] == 0xFF && out[at+1] == 0xE2 {
			l := int(binary.BigEndian.Uint16(out[at+2:]))
			if string(out[at+4:at+16]) != "ICC_PROFILE\x00" || int(out[at+16]) != seq || int(out[at+17]) != count {
				t.Fatalf("%d: bad segment header % x", n, out[at:at+18])
			}
			got = append(got, out[at+18:at+2+l]...)
			at += 2 + l
			seq++
		}
		if !bytes.Equal(got, profile) {
			t.Errorf("%d bytes: reassembled %d", n, len(got))
		}
	}
	if _, err := SpliceJPEG(nil, []byte("GIF89a"), nil); err == nil {
		t.Error("spliced into a non-JPEG")
	}
}

package vips

import (
	"os"
	"path/filepath"
	"testing"
)

func BenchmarkOpenHeaderOnly(b *testing.B) {
	f, err := os.Open(filepath.Join(corpus(b), "scan-pyramid.tif"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for b.Loop() {
		if _, err := probeHeader(input{f: f}, 0, -1); err != nil {
			b.Fatal(err)
		}
	}
}

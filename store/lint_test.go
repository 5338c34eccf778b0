package store

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestOnlyStoreImportsPebble enforces the project rule that Pebble stays
// behind this package.
func TestOnlyStoreImportsPebble(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	self, _ := filepath.Abs(".")
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path == self || (path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return nil // not ours to judge here; the build reports it
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/cockroachdb/pebble") {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s imports %s: only store/ may import Pebble", rel, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestImportRules enforces where the project's heavy dependencies may be
// imported, so that each stays behind one door: libvips (cgo, govips) only
// in renderer/vips; fasthttp only in proxy/ and cmd/ (and the bench
// harness, a client); Pebble only here; and nothing above the renderer
// contract (cache/, proxy/) depends on the libvips renderer outside tests,
// so they build and test with CGO_ENABLED=0.
func TestImportRules(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	type rule struct {
		pkg     string   // import path prefix
		allowed []string // directories (relative to the root) that may import it
		tests   bool     // the rule applies to _test.go files too
	}
	rules := []rule{
		{"github.com/cockroachdb/pebble", []string{"store"}, true},
		{"C", []string{"renderer/vips"}, true},
		{"github.com/davidbyttow/govips", []string{"renderer/vips"}, true},
		{"github.com/valyala/fasthttp", []string{"proxy", "cmd", "bench"}, true},
		{"github.com/iiif-proxy/iiif-proxy/renderer/vips", []string{"renderer/vips", "cmd", "bench"}, false},
	}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return nil // not ours to judge here; the build reports it
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		isTest := strings.HasSuffix(path, "_test.go")
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, r := range rules {
				if (p != r.pkg && !strings.HasPrefix(p, r.pkg+"/")) || (isTest && !r.tests) {
					continue
				}
				ok := false
				for _, dir := range r.allowed {
					ok = ok || strings.HasPrefix(rel, dir+"/")
				}
				if !ok {
					t.Errorf("%s imports %s: only %v may", rel, p, r.allowed)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

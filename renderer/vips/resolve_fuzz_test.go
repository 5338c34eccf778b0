package vips

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// resolveTree builds a TilePath with files, a subdirectory and symlinks, one
// of which leads inside the tree and two out of it, next to a secret file
// outside the tree. It returns the root and every file a resolution may
// legitimately open.
func resolveTree(t testing.TB) (root string, inside []os.FileInfo, secret os.FileInfo) {
	t.Helper()
	dir := t.TempDir()
	root = filepath.Join(dir, "tiles")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "box 1", "deeper"), 0o755))
	write := func(p string) {
		must(os.WriteFile(p, []byte(p), 0o644))
	}
	write(filepath.Join(dir, "secret.jpg"))
	write(filepath.Join(root, "a.jpg"))
	write(filepath.Join(root, "box 1", "b%2F.tif"))
	write(filepath.Join(root, "box 1", "deeper", "c.jp2"))
	must(os.Symlink("box 1/b%2F.tif", filepath.Join(root, "in-link.tif")))
	must(os.Symlink("../secret.jpg", filepath.Join(root, "out-link.jpg")))
	must(os.Symlink(dir, filepath.Join(root, "box 1", "up")))
	for _, p := range []string{"a.jpg", "box 1/b%2F.tif", "box 1/deeper/c.jp2"} {
		fi, err := os.Stat(filepath.Join(root, p))
		must(err)
		inside = append(inside, fi)
	}
	secret, err := os.Stat(filepath.Join(dir, "secret.jpg"))
	must(err)
	return root, inside, secret
}

// FuzzResolve checks that no identifier opens anything but a regular file
// inside TilePath: whatever the bytes (.., encoded or not, absolute paths,
// NULs, symlinks out of the tree, directories), open either fails with
// ErrNotFound or returns one of the tree's own files.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"a.jpg", "box 1/b%2F.tif", "in-link.tif", "out-link.jpg", "box 1/up/secret.jpg",
		"../secret.jpg", "/etc/passwd", "box 1/../a.jpg", "./a.jpg", "box 1//deeper/c.jp2", "box 1", "a.jpg\x00",
		"box 1/deeper/../../../secret.jpg", "", "."} {
		f.Add(s)
	}
	root, inside, secret := resolveTree(f)
	r, err := os.OpenRoot(root)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.Close() })
	v := &Vips{root: r}
	f.Fuzz(func(t *testing.T, id string) {
		file, fi, err := v.open(id)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("open(%q) = %v, want ErrNotFound", id, err)
			}
			return
		}
		defer file.Close()
		if os.SameFile(fi, secret) {
			t.Fatalf("open(%q) escaped TilePath to the secret file", id)
		}
		for _, in := range inside {
			if os.SameFile(fi, in) {
				return
			}
		}
		t.Fatalf("open(%q) opened %v, which is none of the tree's files", id, fi.Name())
	})
}

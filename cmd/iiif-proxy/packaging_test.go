package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSystemdUnitVerifies runs systemd-analyze verify on the shipped unit,
// with ExecStart pointing at the test binary (verify checks that it exists
// and is executable). It skips where systemd-analyze is missing.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze on PATH")
	}
	unit, err := os.ReadFile("../../packaging/iiif-proxy.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"User=iiif-proxy", "CacheDirectory=iiif-proxy", "ProtectSystem=strict",
		"Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes"} {
		if !strings.Contains(string(unit), "\n"+want+"\n") {
			t.Errorf("the unit has no %q", want)
		}
	}
	f := filepath.Join(t.TempDir(), "iiif-proxy.service")
	body := strings.ReplaceAll(string(unit), "/usr/local/bin/iiif-proxy", binary)
	if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", f).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSystemdCacheDirectory starts the binary as the unit does: no CacheDir
// in the file or the environment, $CACHE_DIRECTORY set by systemd's
// CacheDirectory=. The cache goes there; RAIS_CACHEDIR still wins.
func TestSystemdCacheDirectory(t *testing.T) {
	unit, err := os.ReadFile("../../packaging/iiif-proxy.service")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(unit), "RAIS_CACHEDIR") {
		t.Error("the unit sets RAIS_CACHEDIR: it would override a CacheDir the operator sets in rais.toml")
	}
	systemd := t.TempDir()
	withoutCacheDir := func(cmd *exec.Cmd) {
		env := cmd.Env[:0:0]
		for _, kv := range cmd.Env {
			if !strings.HasPrefix(kv, "RAIS_CACHEDIR=") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env, "CACHE_DIRECTORY="+systemd)
	}
	c := launch(t, withoutCacheDir, "RAIS_TILEPATH="+samplePyramid(t))
	if line := c.waitLine(t, "serving IIIF"); !strings.Contains(line, "cacheDir="+systemd) {
		t.Errorf("under systemd: %s, want cacheDir=%s", line, systemd)
	}
	// The tiers open in the background.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(systemd, "tile")); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no tile tier in $CACHE_DIRECTORY: %v", err)
		}
	}
	own := t.TempDir()
	c = launch(t, func(cmd *exec.Cmd) { withoutCacheDir(cmd); cmd.Env = append(cmd.Env, "RAIS_CACHEDIR="+own) },
		"RAIS_TILEPATH="+samplePyramid(t))
	if line := c.waitLine(t, "serving IIIF"); !strings.Contains(line, "cacheDir="+own) {
		t.Errorf("RAIS_CACHEDIR under systemd: %s, want cacheDir=%s", line, own)
	}
}

// TestDockerContextHoldsTheBuild: every file `go build ./cmd/iiif-proxy`
// reads from this module (Go, cgo and embedded files, go.mod, go.sum) is in
// the Docker build context, i.e. no .dockerignore pattern drops it. A
// "/cache/" meant for the default CacheDir once dropped the cache package's
// sources, and with them the image's build. No Docker daemon is needed:
// the patterns are read as Docker reads them (Clean, leading "/" dropped; a
// pattern matching a directory drops all under it; the last matching
// pattern wins, "!" keeping).
func TestDockerContextHoldsTheBuild(t *testing.T) {
	raw, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	type rule struct {
		pattern string
		keep    bool
	}
	var rules []rule
	for _, l := range strings.Split(string(raw), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		keep := strings.HasPrefix(l, "!")
		p := strings.TrimPrefix(filepath.Clean(strings.TrimPrefix(l, "!")), "/")
		if strings.Contains(p, "**") {
			t.Fatalf(".dockerignore: %q: this test does not read ** patterns; extend it", l)
		}
		rules = append(rules, rule{p, keep})
	}
	dropped := func(path string) bool {
		out := false
		for _, r := range rules {
			for p := path; p != "." && p != "/"; p = filepath.Dir(p) {
				if ok, _ := filepath.Match(r.pattern, p); ok {
					out = !r.keep
					break
				}
			}
		}
		return out
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}
{{end}}{{range .CgoFiles}}{{$d}}/{{.}}
{{end}}{{range .CFiles}}{{$d}}/{{.}}
{{end}}{{range .HFiles}}{{$d}}/{{.}}
{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}
{{end}}{{end}}{{end}}`, "./cmd/iiif-proxy")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	files := append(strings.Fields(string(out)), filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum"))
	if len(files) < 50 {
		t.Fatalf("go list named only %d files", len(files))
	}
	for _, f := range files {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			t.Fatal(err)
		}
		if dropped(rel) {
			t.Errorf(".dockerignore drops %s, which the build needs", rel)
		}
	}
	// And it does drop what must stay out of the image's context.
	for _, rel := range []string{"cache/tile/000001.sst", "run-cache/tile/000001.sst", "samples/page.tif", "iiif-proxy"} {
		if !dropped(rel) {
			t.Errorf(".dockerignore keeps %s in the build context", rel)
		}
	}
}

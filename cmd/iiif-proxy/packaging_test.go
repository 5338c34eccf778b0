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

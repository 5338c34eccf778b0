package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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

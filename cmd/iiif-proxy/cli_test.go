package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/store"
)

// run runs the test binary (a plain go build) with args and returns its
// stdout, stderr and exit status.
func runBinary(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestHelpIsOnStdoutWithASentencePerFlag(t *testing.T) {
	out, errOut, code := runBinary(t, binary, "-help")
	if code != 0 || errOut != "" {
		t.Fatalf("-help: exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"usage:", "-tile-path", "Directory of the source images", "env RAIS_TILEPATH",
		"-unversioned-version", "-tiers-tile-maxbytes", "Disk budget of the tile tier"} {
		if !strings.Contains(out, want) {
			t.Errorf("-help does not say %q", want)
		}
	}
}

func TestVersion(t *testing.T) {
	out, _, code := runBinary(t, binary, "-version")
	if code != 0 || !strings.HasPrefix(out, "iiif-proxy devel (commit unknown,") {
		t.Errorf("plain build: -version = %q (exit %d), want devel", out, code)
	}
	// Stamped as the Makefile stamps it.
	stamped := filepath.Join(t.TempDir(), "iiif-proxy")
	b, err := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7 -X main.commit=abc1234", "-o", stamped, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	out, _, code = runBinary(t, stamped, "--version")
	if code != 0 || !strings.HasPrefix(out, "iiif-proxy v9.8.7 (commit abc1234,") {
		t.Errorf("stamped build: -version = %q (exit %d)", out, code)
	}
	// -version never reads a configuration: a broken one does not matter.
	if _, errOut, code := runBinary(t, binary, "-config", "/nonexistent.toml", "-version"); code != 0 {
		t.Errorf("-version with a missing config: exit %d: %s", code, errOut)
	}
}

// TestUnknownCommandIsNamed: a mistyped command is reported as such, not
// as a problem of whichever configuration file was found.
func TestUnknownCommandIsNamed(t *testing.T) {
	for _, word := range []string{"version", "stat"} {
		_, errOut, code := runBinary(t, binary, word)
		if code != 2 || !strings.Contains(errOut, `unknown command "`+word+`"`) || strings.Contains(errOut, "configuration") {
			t.Errorf("iiif-proxy %s: exit %d, stderr %q; want 2 and the unknown command named", word, code, errOut)
		}
	}
}

// TestRefusedAdminCommandShowsConfigurationProblems: when the server
// refuses `stats` or `purge` and the configuration the token comes from
// did not load (an AdminTokenFile that cannot be read), the command says
// so instead of a bare 401.
func TestRefusedAdminCommandShowsConfigurationProblems(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error": "missing or wrong bearer token"}`, http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	admin := strings.TrimPrefix(srv.URL, "http://")
	conf := filepath.Join(t.TempDir(), "rais.toml")
	missing := filepath.Join(t.TempDir(), "no-such-token")
	if err := os.WriteFile(conf, []byte("AdminTokenFile = \""+missing+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"stats"}, {"purge", "page.tif"}} {
		args = append(args[:1:1], append([]string{"-config", conf, "-admin", admin}, args[1:]...)...)
		_, errOut, code := runBinary(t, binary, args...)
		if code != 1 || !strings.Contains(errOut, "401") || !strings.Contains(errOut, "which has problems") ||
			!strings.Contains(errOut, "no-such-token") {
			t.Errorf("%v: exit %d, stderr %q; want 1, the 401 and the AdminTokenFile problem", args, code, errOut)
		}
	}
	// A token given on the command line owes nothing to the file: no note.
	_, errOut, _ := runBinary(t, binary, "stats", "-config", conf, "-admin", admin, "-token", "x")
	if strings.Contains(errOut, "which has problems") {
		t.Errorf("-token given: stderr %q blames the configuration", errOut)
	}
}

// TestSubcommandHelpListsOnlyItsOwnFlags: stats -h does not offer -tier,
// purge -h does not offer -json; help is on stdout with status 0.
func TestSubcommandHelpListsOnlyItsOwnFlags(t *testing.T) {
	flagsOf := func(help string) []string {
		var names []string
		for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(help, -1) {
			names = append(names, m[1])
		}
		return names
	}
	for _, tc := range []struct {
		cmd  string
		want string
	}{
		{"stats", "admin config json token"},
		{"purge", "admin all config tier token"},
		{"sign", "config expires"},
		{"samples", "dir only small"},
		{"check", "config ext j json list size tile-path url"},
		{"warm", "api cache-dir config depth j list rate tile-path url viewport"},
		{"classify", "config json"},
		{"config", "config json"},
		{"health", "address config timeout"},
	} {
		out, errOut, code := runBinary(t, binary, tc.cmd, "-h")
		if code != 0 || errOut != "" {
			t.Errorf("%s -h: exit %d, stderr %q", tc.cmd, code, errOut)
		}
		if got := strings.Join(flagsOf(out), " "); got != tc.want {
			t.Errorf("%s -h lists %q, want %q", tc.cmd, got, tc.want)
		}
	}
	if _, errOut, code := runBinary(t, binary, "stats", "-tier", "info"); code != 2 || !strings.Contains(errOut, "-tier") {
		t.Errorf("stats -tier: exit %d, %q", code, errOut)
	}
}

// TestJSONAccessLog: LogFormat = "json" makes every line one JSON object,
// the access log's included.
func TestJSONAccessLog(t *testing.T) {
	c := start(t, "RAIS_TILEPATH="+t.TempDir(), "RAIS_LOGFORMAT=json")
	resp, err := http.Get("http://" + c.addr + "/iiif/missing.tif/info.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line := <-c.lines:
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("not JSON: %q", line)
			}
			if m["msg"] == "access" {
				if m["status"] != float64(404) || m["path"] != "/iiif/missing.tif/info.json" || m["client"] != "127.0.0.1" {
					t.Errorf("access line %v", m)
				}
				return
			}
		case <-deadline:
			t.Fatal("no access line within 10s")
		}
	}
}

// TestStatsAndPurgeAgainstARunningServer: the README's `iiif-proxy stats`
// and `purge` work against the binary's own /stats and purge endpoints
// (the stats JSON must decode: tier state and faults included).
func TestStatsAndPurgeAgainstARunningServer(t *testing.T) {
	c := start(t, "RAIS_TILEPATH="+samplePyramid(t))
	for range 2 {
		resp, err := http.Get("http://" + c.addr + "/iiif/3/pattern.tif/0,0,256,256/256,/0/default.jpg")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	out, errOut, code := runBinary(t, binary, "stats", "-config", "/dev/null", "-admin", c.admin)
	if code != 0 || !strings.Contains(out, "tile") {
		t.Fatalf("stats: exit %d\n%s\n%s", code, out, errOut)
	}
	// The disk table: the tile store's budget (20GB by default) and bound.
	budget := strconv.FormatInt(20<<30, 10)
	var diskRow []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 12 && f[0] == "tile" && f[3] == budget {
			diskRow = f
		}
	}
	if !strings.Contains(out, "on disk") || diskRow == nil ||
		diskRow[4] != strconv.FormatInt(20<<30+(20<<30)/5+store.DiskSlack, 10) {
		t.Errorf("stats printed no disk row for the tile store with budget %s:\n%s", budget, out)
	}
	for _, m := range []string{`iiif_cache_max_bytes{tier="tile"}`, `iiif_cache_declined_total{tier="tile"}`,
		`iiif_cache_disk_bytes{tier="tile"}`, `iiif_cache_removed_total{cause="budget",tier="tile"}`} {
		if metric(t, c, m) == "" {
			t.Errorf("/metrics has no %s", m)
		}
	}
	if got := metric(t, c, `iiif_cache_max_bytes{tier="tile"}`); got != "2.147483648e+10" {
		t.Errorf("iiif_cache_max_bytes{tier=\"tile\"} = %s, want 20 GiB", got)
	}
	out, errOut, code = runBinary(t, binary, "purge", "-config", "/dev/null", "-admin", c.admin, "pattern.tif")
	if code != 0 {
		t.Fatalf("purge: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestHealthProbe: `iiif-proxy health` (the Docker image's HEALTHCHECK)
// succeeds against a running server, found from its Address, and fails
// against a port nobody listens on.
func TestHealthProbe(t *testing.T) {
	c := start(t, "RAIS_TILEPATH="+t.TempDir())
	_, port, _ := net.SplitHostPort(c.addr)
	if out, errOut, code := runBinary(t, binary, "health", "-address", ":"+port); code != 0 || strings.TrimSpace(out) != "ok" {
		t.Errorf("health against a running server: exit %d, %q %q", code, out, errOut)
	}
	if _, _, code := runBinary(t, binary, "health", "-config", "", "-address", "127.0.0.1:"+port, "-timeout", "1s"); code != 0 {
		t.Errorf("health with a host: exit %d", code)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	if _, errOut, code := runBinary(t, binary, "health", "-address", dead, "-timeout", "1s"); code != 1 || !strings.Contains(errOut, "health") {
		t.Errorf("health against nothing: exit %d, %q", code, errOut)
	}
}

// TestPurgeArgumentsAreChecked: purge asks for one thing, identifiers,
// -tier or -all, and a tier by a name that exists; a mix or a bad name is a
// usage error (2) before any request, not a purge of everything (`-all
// page.tif` purged all and ignored the identifier).
func TestPurgeArgumentsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-all", "page.tif"}, "one of them"},
		{[]string{"-tier", "tile", "page.tif"}, "one of them"},
		{[]string{"-tier", "tile", "-all"}, "one of them"},
		{[]string{"-tier", "bogus"}, `no tier "bogus"`},
	} {
		// An admin address nobody listens on: nothing may be sent anyway.
		args := append([]string{"purge", "-config", "/dev/null", "-admin", "127.0.0.1:1"}, tc.args...)
		_, errOut, code := runBinary(t, binary, args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("purge %v: exit %d, %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
	if _, errOut, code := runBinary(t, binary, "stats", "-config", "/dev/null", "-admin", "127.0.0.1:1", "tile"); code != 2 {
		t.Errorf("stats with an argument: exit %d, %q; want 2", code, errOut)
	}
}

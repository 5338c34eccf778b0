package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/proxy/proxyconf"
	"github.com/iiif-proxy/iiif-proxy/purge"
)

func write(t *testing.T, body string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "rais.toml")
	if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPrecedenceFileThenEnvThenFlags(t *testing.T) {
	dir := t.TempDir()
	f := write(t, "TilePath = \""+dir+"\"\nAddress = \":1\"\nJPGQuality = 80\nLogLevel = \"debug\"\nRenderTimeout = \"5s\"\n")
	env := []string{"RAIS_ADDRESS=:2", "RAIS_IMAGEMAXWIDTH=1024", "HOME=/root"}
	cfg, warns, err := Load(f, env, []string{"-address", "127.0.0.1:3", "-render-timeout=7s"})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings %v", warns)
	}
	if cfg.Address != "127.0.0.1:3" || cfg.JPGQuality != 80 || cfg.ImageMaxWidth != 1024 || cfg.LogLevel != "DEBUG" ||
		cfg.RenderTimeout.Std() != 7*time.Second || cfg.TilePath != dir || cfg.ImageMaxHeight != 20480 {
		t.Errorf("cfg %+v", cfg)
	}
}

func TestRAISKeysWeDoNotImplementOnlyWarn(t *testing.T) {
	f := write(t, "TilePath = \""+t.TempDir()+"\"\nPlugins = \"s3-images.so\"\nCapabilitiesFile = \"/etc/cap.toml\"\nS3Zone = \"us-west-2\"\nS3Bucket = \"\"\n")
	_, warns, err := Load(f, []string{"RAIS_S3CACHE=/x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(warns, "\n")
	for _, k := range []string{"Plugins", "CapabilitiesFile", "S3Zone", "RAIS_S3CACHE"} {
		if !strings.Contains(all, k) {
			t.Errorf("no warning names %s: %q", k, all)
		}
	}
	if strings.Contains(all, "S3Bucket") {
		t.Errorf("S3Bucket = \"\", which asks for nothing, warned: %q", all)
	}
}

func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	f := write(t, "TilePath = \"/does/not/exist\"\nTypo = 1\nJPGQuality = 0\nLogLevel = \"LOUD\"\nIIIFWebPath = \"iiif\"\n")
	_, _, err := Load(f, []string{"RAIS_IMAGEMAXAREA=lots", "RAIS_RENDERTIMEOUT=soon"}, []string{"-image-max-width", "-5"})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"unknown key Typo", "TilePath", "JPGQuality", "LogLevel", "IIIFWebPath",
		"RAIS_IMAGEMAXAREA", "RAIS_RENDERTIMEOUT", "ImageMaxWidth"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %s:\n%s", want, msg)
		}
	}
}

func TestShippedConfigLoads(t *testing.T) {
	f, err := filepath.Abs("../../conf/rais.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, warns, err := Load(f, []string{"RAIS_TILEPATH=" + t.TempDir()}, nil)
	if err != nil || len(warns) != 0 {
		t.Fatalf("conf/rais.toml: %v %v", err, warns)
	}
	def := Default()
	def.TilePath = cfg.TilePath
	def.DemoPage = true // the one setting the file turns on: make run shows the demo page
	if !reflect.DeepEqual(cfg, def) {
		t.Errorf("conf/rais.toml differs from the built-in defaults it documents:\n%+v\n%+v", cfg, def)
	}
}

func TestConfigFlag(t *testing.T) {
	f := write(t, "")
	for _, args := range [][]string{{"-config", f, "-address", ":1"}, {"--config=" + f, "-address", ":1"}} {
		file, given, rest, err := ConfigFlag(args)
		if err != nil || !given || file != f || strings.Join(rest, " ") != "-address :1" {
			t.Errorf("ConfigFlag(%v) = %q %v %v %v", args, file, given, rest, err)
		}
	}
	if _, _, _, err := ConfigFlag([]string{"-config", "/no/such/file"}); err == nil {
		t.Error("a missing -config file is not an error")
	}
}

func TestTiersFromFileAndEnvironment(t *testing.T) {
	f := write(t, `TilePath = "`+t.TempDir()+`"
CacheDir = "/var/cache/iiif"
[Tiers.Tile]
MaxBytes = "512MB"
Retention = "48h"
Formats = ["jpg", "webp"]
[Tiers.Other]
Enabled = false
`)
	env := []string{"RAIS_TIERS_TILE_REVALIDATE=2h", "RAIS_TIERS_THUMBNAIL_MAXBYTES=1.5GiB",
		"RAIS_TIERS_THUMBNAIL_FORMATS=jpg, png", "RAIS_TIERS_INFO_CACHECONTROL=no-cache"}
	cfg, warns, err := Load(f, env, []string{"-tiers-tile-maxsize", "512"})
	if err != nil || len(warns) != 0 {
		t.Fatal(err, warns)
	}
	tile := cfg.Tiers.Tile
	if tile.MaxBytes != 512<<20 || tile.Retention.Std() != 48*time.Hour || tile.Revalidate.Std() != 2*time.Hour ||
		strings.Join(tile.Formats, ",") != "jpg,webp" || tile.MaxSize != 512 || !tile.Enabled {
		t.Errorf("tile tier %+v", tile)
	}
	if cfg.Tiers.Thumbnail.MaxBytes != 3<<29 || strings.Join(cfg.Tiers.Thumbnail.Formats, ",") != "jpg,png" {
		t.Errorf("thumbnail tier %+v", cfg.Tiers.Thumbnail)
	}
	if cfg.Tiers.Info.CacheControl != "no-cache" || cfg.Tiers.Other.Enabled || cfg.CacheDir != "/var/cache/iiif" {
		t.Errorf("cfg %+v", cfg)
	}
}

func TestTierAndAdminProblems(t *testing.T) {
	f := write(t, `TilePath = "`+t.TempDir()+`"
AdminAddress = ":12416"
[Tiers.Tile]
MaxBytes = "lots"
`)
	_, _, err := Load(f, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "MaxBytes") {
		t.Fatalf("bad MaxBytes: %v", err)
	}
	f = write(t, `TilePath = "`+t.TempDir()+`"
AdminAddress = "0.0.0.0:12416"
[Tiers.Thumbnail]
Formats = ["bmp"]
[Tiers.Info]
MaxSize = 10
`)
	_, warns, err := Load(f, nil, nil)
	for _, want := range []string{"Tiers.Thumbnail.Formats", "Tiers.Info"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	// A public admin listener without a token starts (as RAIS's does),
	// with a warning that says what it serves and what it refuses.
	if strings.Contains(err.Error(), "AdminToken") {
		t.Errorf("a missing token on a public admin listener is an error: %v", err)
	}
	if w := strings.Join(warns, "\n"); !strings.Contains(w, `AdminAddress "0.0.0.0:12416" is not loopback`) || !strings.Contains(w, "purges are refused") {
		t.Errorf("no warning about the public admin listener: %q", w)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"20GB": 20 << 30, "512 MB": 512 << 20, "64KiB": 64 << 10, "1024": 1024,
		"1.5G": 3 << 29, "0": 0, "2tb": 2 << 40} {
		var b ByteSize
		if err := b.UnmarshalText([]byte(in)); err != nil || int64(b) != want {
			t.Errorf("%q = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "-1GB", "GB", "12XB", "1e30"} {
		var b ByteSize
		if err := b.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q accepted as %d", in, b)
		}
	}
	if s, _ := ByteSize(20 << 30).MarshalText(); string(s) != "20GB" {
		t.Errorf("MarshalText = %s", s)
	}
}

func TestFreeSpace(t *testing.T) {
	for in, want := range map[string]FreeSpace{"5%": {Percent: 5}, " 0.5 % ": {Percent: 0.5}, "1GB": {Bytes: 1 << 30},
		"512MB": {Bytes: 512 << 20}, "0": {}} {
		var f FreeSpace
		if err := f.UnmarshalText([]byte(in)); err != nil || f != want {
			t.Errorf("%q = %+v, %v; want %+v", in, f, err, want)
		}
	}
	for _, in := range []string{"", "100%", "-1%", "x%", "-1GB", "lots"} {
		var f FreeSpace
		if err := f.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q accepted as %+v", in, f)
		}
	}
	cfg, _, err := Load("", []string{"RAIS_TILEPATH=.", "RAIS_CACHEMINFREE=2MB"}, []string{"-cache-min-free", "3%"})
	if err != nil || cfg.CacheMinFree != (FreeSpace{Percent: 3}) {
		t.Errorf("flag over environment: %+v, %v", cfg.CacheMinFree, err)
	}
	if Default().CacheMinFree != (FreeSpace{Percent: 5}) {
		t.Errorf("default %+v, want 5%%", Default().CacheMinFree)
	}
	if s, _ := (FreeSpace{Bytes: 1 << 30}).MarshalText(); string(s) != "1GB" {
		t.Errorf("MarshalText = %s", s)
	}
}

func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	file := func(name, body string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	k1, k2 := strings.Repeat("a", 32), strings.Repeat("b", 40)
	tok := file("token", "  s3cret\n")
	keys := file("keys", "# newest first\n"+k2+"\n\n"+k1+"\n")
	short := file("short", "tooshort\n")
	empty := file("empty", "\n")
	base := "TilePath = \"" + dir + "\"\n"
	for _, tc := range []struct {
		name, toml string
		env        []string
		wantErr    string // "" means success
		token      string
		keys       []string
	}{
		{"token file", base + "AdminTokenFile = \"" + tok + "\"\n", nil, "", "s3cret", nil},
		{"token from env", base, []string{"RAIS_ADMINTOKEN=envtok"}, "", "envtok", nil},
		{"token file and token", base + "AdminTokenFile = \"" + tok + "\"\nAdminToken = \"x\"\n", nil, "use one", "", nil},
		{"empty token file", base + "AdminTokenFile = \"" + empty + "\"\n", nil, "is empty", "", nil},
		{"missing token file", base + "AdminTokenFile = \"" + dir + "/nope\"\n", nil, "AdminTokenFile", "", nil},
		{"key file, newest first", base + "SignedPrefixes = [\"private/\"]\nSigningKeyFile = \"" + keys + "\"\n", nil, "", "", []string{k2, k1}},
		{"keys from env", base + "SignedPrefixes = [\"private/\"]\n", []string{"RAIS_SIGNINGKEYS=" + k1 + "," + k2}, "", "", []string{k1, k2}},
		{"prefixes without keys", base + "SignedPrefixes = [\"private/\"]\n", nil, "needs signing keys", "", nil},
		{"short key", base + "SigningKeyFile = \"" + short + "\"\n", nil, "at least 32", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := Load(write(t, tc.toml), tc.env, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.AdminToken != tc.token || !reflect.DeepEqual(cfg.SigningKeys, tc.keys) {
				t.Errorf("token %q keys %q, want %q %q", cfg.AdminToken, cfg.SigningKeys, tc.token, tc.keys)
			}
		})
	}
}

func TestDiffNamesChangedKeysAndWhichAreLive(t *testing.T) {
	a := Default()
	b := a
	b.LogLevel = "DEBUG"
	b.Tiers.Tile.MaxBytes = 1 << 30
	b.Tiers.Other.Formats = []string{"png"}
	b.Address = ":1"
	b.SigningKeys = []string{"k"}
	got := Diff(a, b)
	want := []string{"Address", "LogLevel", "SigningKeys", "Tiers.Tile.MaxBytes", "Tiers.Other.Formats"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Diff = %v, want %v", got, want)
	}
	live := map[string]bool{}
	for _, k := range got {
		live[k] = Live(k)
	}
	if !reflect.DeepEqual(live, map[string]bool{"Address": false, "LogLevel": true, "SigningKeys": true,
		"Tiers.Tile.MaxBytes": true, "Tiers.Other.Formats": false}) {
		t.Errorf("Live: %v", live)
	}
}

func TestCopyLiveKeepsRestartKeys(t *testing.T) {
	run, next := Default(), Default()
	next.Address, next.LogLevel, next.Tiers.Info.Revalidate, next.Tiers.Tile.Enabled = ":9", "WARN", Duration(time.Minute), false
	CopyLive(&run, next)
	if run.Address != ":12415" || run.Tiers.Tile.Enabled != true {
		t.Errorf("restart keys changed: %q %v", run.Address, run.Tiers.Tile.Enabled)
	}
	if run.LogLevel != "WARN" || run.Tiers.Info.Revalidate != Duration(time.Minute) {
		t.Errorf("live keys not copied: %q %v", run.LogLevel, run.Tiers.Info.Revalidate)
	}
}

func TestSidecarKeys(t *testing.T) {
	// Upstream replaces TilePath; environment and flags reach every key.
	cfg, _, err := Load("", []string{"RAIS_UPSTREAM=http://127.0.0.1:8182/iiif/2", "RAIS_TRUSTEDPROXIES=10.0.0.0/8,192.168.1.7"},
		[]string{"-upstream-timeout", "5s", "-upstream-max-conns", "8", "-stale-while-revalidate", "1h", "-upstream-not-found-ttl", "0s"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Upstream != "http://127.0.0.1:8182/iiif/2" || cfg.UpstreamTimeout.Std() != 5*time.Second || cfg.UpstreamMaxConns != 8 ||
		cfg.StaleWhileRevalidate.Std() != time.Hour || cfg.UpstreamNotFoundTTL != 0 || cfg.UpstreamConnectTimeout.Std() != 2*time.Second {
		t.Errorf("loaded %+v", cfg)
	}
	p, err := proxyconf.ParseTrustedProxies(cfg.Front().TrustedProxies)
	if err != nil || len(p) != 2 || p[1].String() != "192.168.1.7/32" {
		t.Errorf("TrustedProxies = %v, %v", p, err)
	}
	// Every problem at once.
	_, _, err = Load("", []string{"RAIS_UPSTREAM=ftp://x", "RAIS_TRUSTEDPROXIES=not-an-ip"},
		[]string{"-upstream-max-conns", "0", "-stale-while-revalidate", "-1s"})
	for _, want := range []string{"Upstream:", "TrustedProxies", "UpstreamMaxConns", "stale-while-revalidate"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	// Without Upstream, TilePath is still required, and the message says
	// what else would do.
	if _, _, err := Load("", nil, nil); err == nil || !strings.Contains(err.Error(), "or Upstream") {
		t.Errorf("no TilePath and no Upstream: %v", err)
	}
}

func TestPyramidKeys(t *testing.T) {
	dir := t.TempDir()
	cfg, _, err := Load("", []string{"RAIS_TILEPATH=" + dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PyramidMinPixels != 32<<20 || cfg.PyramidMaxBytes != 10<<30 || cfg.PyramidBuilds != 1 {
		t.Errorf("defaults %d, %d, %d", cfg.PyramidMinPixels, cfg.PyramidMaxBytes, cfg.PyramidBuilds)
	}
	f := write(t, "TilePath = \""+dir+"\"\nPyramidMinPixels = 1000000\nPyramidMaxBytes = \"2GB\"\n")
	cfg, _, err = Load(f, []string{"RAIS_PYRAMIDMAXBYTES=3GB"}, []string{"-pyramid-builds", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PyramidMinPixels != 1000000 || cfg.PyramidMaxBytes != 3<<30 || cfg.PyramidBuilds != 2 {
		t.Errorf("file, env, flag: %d, %d, %d", cfg.PyramidMinPixels, cfg.PyramidMaxBytes, cfg.PyramidBuilds)
	}
	_, _, err = Load(f, nil, []string{"-pyramid-builds", "0", "-pyramid-min-pixels", "-1"})
	if err == nil || !strings.Contains(err.Error(), "PyramidBuilds") || !strings.Contains(err.Error(), "PyramidMinPixels") {
		t.Errorf("bad pyramid keys: %v", err)
	}
}

func TestUnversionedVersion(t *testing.T) {
	dir := t.TempDir()
	cfg, _, err := Load("", []string{"RAIS_TILEPATH=" + dir}, nil)
	if err != nil || cfg.UnversionedVersion != 2 {
		t.Fatalf("default %d, %v; want 2 (RAIS speaks 2.1 there)", cfg.UnversionedVersion, err)
	}
	for _, v := range []string{"0", "3"} {
		if _, _, err := Load("", []string{"RAIS_TILEPATH=" + dir}, []string{"-unversioned-version", v}); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
	_, _, err = Load("", []string{"RAIS_TILEPATH=" + dir, "RAIS_UNVERSIONEDVERSION=1"}, nil)
	if err == nil || !strings.Contains(err.Error(), "UnversionedVersion: 1 must be 2, 3 or 0") {
		t.Errorf("version 1: %v", err)
	}
}

func TestPurgeForwardKeys(t *testing.T) {
	dir := t.TempDir()
	cfg, _, err := Load("", []string{"RAIS_TILEPATH=" + dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Purge(); len(p.Targets) != 0 || p.QueueLen != 1000 || p.Attempts != 5 || p.Backoff != time.Second ||
		p.Timeout != 5*time.Second || p.WebPath != "/iiif" || !p.Unversioned {
		t.Errorf("defaults %+v", p)
	}
	f := write(t, "TilePath = \""+dir+"\"\nIIIFBaseURL = \"https://img.example.org\"\n"+
		"PurgeForward = [\"ban http://127.0.0.1:6081\", \"purge http://127.0.0.1:8080/images/iiif\"]\nPurgeForwardAttempts = 3\n")
	cfg, _, err = Load(f, []string{"RAIS_PURGEFORWARDTOKEN=tok", "RAIS_PURGEFORWARDBACKOFF=250ms"},
		[]string{"-purge-forward-queue-len", "10", "-purge-forward-timeout=2s"})
	if err != nil {
		t.Fatal(err)
	}
	want := purge.Config{Targets: []string{"ban http://127.0.0.1:6081", "purge http://127.0.0.1:8080/images/iiif"},
		WebPath: "/iiif", BaseURL: "https://img.example.org", Unversioned: true, QueueLen: 10, Attempts: 3,
		Backoff: 250 * time.Millisecond, Timeout: 2 * time.Second, WebhookToken: "tok"}
	if p := cfg.Purge(); !reflect.DeepEqual(p, want) {
		t.Errorf("file, env, flags:\n%+v\nwant\n%+v", p, want)
	}
	cfg, _, err = Load("", []string{"RAIS_TILEPATH=" + dir, "RAIS_PURGEFORWARD=ban http://127.0.0.1:6081, webhook https://relay/x"}, nil)
	if err != nil || !slices.Equal(cfg.PurgeForward, []string{"ban http://127.0.0.1:6081", "webhook https://relay/x"}) {
		t.Errorf("from the environment: %q %v", cfg.PurgeForward, err)
	}
	// Every problem at once, each on its line.
	_, _, err = Load("", []string{"RAIS_TILEPATH=" + dir, "RAIS_PURGEFORWARD=varnish http://x,ban ftp://y"},
		[]string{"-purge-forward-attempts", "0", "-purge-forward-queue-len", "-1"})
	for _, want := range []string{`PurgeForward: "varnish http://x": kind "varnish"`, `PurgeForward: "ban ftp://y"`,
		"PurgeForwardQueueLen: -1 must be >= 0", "PurgeForwardAttempts: must be > 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad purge keys: no %q in\n%v", want, err)
		}
	}
}

// Under the systemd unit (CacheDirectory=iiif-proxy), the cache goes where
// systemd says unless a setting says otherwise.
func TestCacheDirFollowsSystemd(t *testing.T) {
	dir := t.TempDir()
	env := []string{"RAIS_TILEPATH=" + dir}
	for _, tc := range []struct {
		name, file string
		env, args  []string
		want       string
	}{
		{"plain run", "", nil, nil, "cache"},
		{"systemd", "", []string{"CACHE_DIRECTORY=/var/cache/iiif-proxy"}, nil, "/var/cache/iiif-proxy"},
		{"systemd, several", "", []string{"CACHE_DIRECTORY=/var/cache/iiif-proxy:/var/cache/other"}, nil, "/var/cache/iiif-proxy"},
		{"not absolute", "", []string{"CACHE_DIRECTORY=relative"}, nil, "cache"},
		{"file wins", "CacheDir = \"/srv/cache\"\n", []string{"CACHE_DIRECTORY=/var/cache/iiif-proxy"}, nil, "/srv/cache"},
		{"env wins", "", []string{"CACHE_DIRECTORY=/var/cache/iiif-proxy", "RAIS_CACHEDIR=/srv/c"}, nil, "/srv/c"},
		{"flag wins", "", []string{"CACHE_DIRECTORY=/var/cache/iiif-proxy"}, []string{"-cache-dir", "/srv/f"}, "/srv/f"},
		{"off stays off", "", []string{"CACHE_DIRECTORY=/var/cache/iiif-proxy", "RAIS_CACHEDIR="}, nil, ""},
	} {
		f := ""
		if tc.file != "" {
			f = write(t, tc.file)
		}
		cfg, _, err := Load(f, append(slices.Clone(env), tc.env...), tc.args)
		if err != nil || cfg.CacheDir != tc.want {
			t.Errorf("%s: CacheDir %q (%v), want %q", tc.name, cfg.CacheDir, err, tc.want)
		}
	}
}

// TestS3SourceSettings: TilePath s3://… needs no directory, takes the
// source cache under CacheDir by default, and every bad S3 setting is
// reported at once.
func TestS3SourceSettings(t *testing.T) {
	cfg, _, err := Load("", []string{"RAIS_TILEPATH=s3://bucket/a/b", "RAIS_CACHEDIR=/var/cache/x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SourceCache() != "/var/cache/x/sources" || cfg.S3Timeout.Std() != 5*time.Second || cfg.SourceCacheMaxBytes != 10<<30 {
		t.Fatalf("defaults: %q %v %d", cfg.SourceCache(), cfg.S3Timeout, cfg.SourceCacheMaxBytes)
	}
	_, _, err = Load("", []string{"RAIS_TILEPATH=s3://bucket?x=1", "RAIS_CACHEDIR=", "RAIS_S3TIMEOUT=0s",
		"RAIS_S3BREAKERFAILURES=0", "RAIS_SOURCECACHEMAXBYTES=0"}, nil)
	if err == nil {
		t.Fatal("bad S3 settings accepted")
	}
	for _, want := range []string{"TilePath", "SourceCacheDir", "S3Timeout", "S3BreakerFailures", "SourceCacheMaxBytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %s in: %v", want, err)
		}
	}
}

// TestFindPrefersTheInstalledFileOverRAISs: the unit and the Docker image
// start the server with -config /etc/iiif-proxy/rais.toml; `iiif-proxy
// purge` and `stats` typed by hand (no -config) must read that file, not a
// RAIS site's /etc/rais.toml or nothing, or they miss its AdminAddress and
// token.
func TestFindPrefersTheInstalledFileOverRAISs(t *testing.T) {
	installed, rais := slices.Index(searchPath, "/etc/iiif-proxy/rais.toml"), slices.Index(searchPath, "/etc/rais.toml")
	if installed < 0 || rais < 0 || installed > rais {
		t.Fatalf("searchPath %q: want /etc/iiif-proxy/rais.toml, then /etc/rais.toml", searchPath)
	}
	dir := t.TempDir()
	files := []string{filepath.Join(dir, "conf.toml"), filepath.Join(dir, "installed.toml"), filepath.Join(dir, "rais.toml")}
	saved := searchPath
	t.Cleanup(func() { searchPath = saved })
	searchPath = files
	if got := Find(); got != "" {
		t.Errorf("no file exists: Find() = %q, want \"\"", got)
	}
	for i := len(files) - 1; i >= 0; i-- { // each newly made file comes earlier and wins
		if err := os.WriteFile(files[i], nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if got := Find(); got != files[i] {
			t.Errorf("Find() = %q, want %q (the first that exists)", got, files[i])
		}
	}
}

// TestANonTableForATableIsAnError: "Tiers = 3" or "[Tiers] Tile = 3" is a
// mistake to report, not a table to read as empty (every tier's settings
// silently left at their defaults).
func TestANonTableForATableIsAnError(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ body, want string }{
		{"Tiers = 3\n", "Tiers: must be a table ([Tiers])"},
		{"[Tiers]\nTile = \"big\"\n", "Tiers.Tile: must be a table ([Tiers.Tile])"},
	} {
		f := write(t, "TilePath = \""+dir+"\"\n"+tc.body)
		_, _, err := Load(f, nil, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one saying %q", tc.body, err, tc.want)
		}
	}
	// A real table still loads.
	f := write(t, "TilePath = \""+dir+"\"\n[Tiers.Tile]\nMaxBytes = \"1GB\"\n")
	if c, _, err := Load(f, nil, nil); err != nil || c.Tiers.Tile.MaxBytes != 1<<30 {
		t.Errorf("[Tiers.Tile] MaxBytes: %v, %v", c.Tiers.Tile.MaxBytes, err)
	}
}

// TestAFileThatIsNoTOMLIsTheOnlyFileProblem: after a syntax error nothing
// of the file was read, so its settings are not reported as missing
// ("TilePath: required" for a file that sets it); the environment's and the
// flags' problems are still listed.
func TestAFileThatIsNoTOMLIsTheOnlyFileProblem(t *testing.T) {
	f := write(t, "TilePath = \""+t.TempDir()+"\"\n[Tiers\n")
	_, _, err := Load(f, []string{"RAIS_JPGQUALITY=high"}, nil)
	if err == nil {
		t.Fatal("a file that is no TOML loaded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "toml: line ") || !strings.Contains(msg, "RAIS_JPGQUALITY") {
		t.Errorf("error %q: want the syntax error's line and the environment's problem", msg)
	}
	if strings.Contains(msg, "TilePath") {
		t.Errorf("error %q reports TilePath, which the unreadable file sets", msg)
	}
}

// TestSharedCacheKeys: the shared render tier's keys from file, environment
// and flags, and every problem of them reported at once.
func TestSharedCacheKeys(t *testing.T) {
	dir := t.TempDir()
	cfg, _, err := Load("", []string{"RAIS_TILEPATH=" + dir, "RAIS_SHAREDCACHE=s3://renders/fleet", "RAIS_SHAREDTIMEOUT=500ms"},
		[]string{"-shared-refresh-after", "100h", "-shared-queue-bytes", "8MB"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SharedCache != "s3://renders/fleet" || cfg.SharedTimeout.Std() != 500*time.Millisecond || cfg.SharedRefreshAfter.Std() != 100*time.Hour ||
		cfg.SharedQueueBytes != 8<<20 || cfg.SharedRetention.Std() != 4320*time.Hour || !cfg.SharedLifecycle || cfg.SharedWriters != 4 {
		t.Fatalf("shared keys read as %+v", cfg)
	}
	_, _, err = Load("", []string{"RAIS_TILEPATH=" + dir, "RAIS_SHAREDCACHE=http://renders/fleet", "RAIS_SHAREDTIMEOUT=0s",
		"RAIS_SHAREDRETENTION=1h", "RAIS_SHAREDWRITERS=0"}, nil)
	for _, want := range []string{"SharedCache:", "SharedTimeout", "SharedRetention", "SharedRefreshAfter", "SharedWriters"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

// TestDemoPageIsOffUnlessAskedFor: the demo page lists identifiers, so a
// RAIS site's file (which has no DemoPage key) must not turn it on; the
// shipped conf/rais.toml asks for it (make run shows it).
func TestDemoPageIsOffUnlessAskedFor(t *testing.T) {
	dir := t.TempDir()
	cfg, _, err := Load(write(t, "TilePath = \""+dir+"\"\n"), nil, nil)
	if err != nil || cfg.DemoPage {
		t.Errorf("a file without DemoPage: DemoPage %v (%v), want false", cfg.DemoPage, err)
	}
	cfg, _, err = Load("../../conf/rais.toml", []string{"RAIS_TILEPATH=" + dir}, nil)
	if err != nil || !cfg.DemoPage {
		t.Errorf("conf/rais.toml: DemoPage %v (%v), want true", cfg.DemoPage, err)
	}
}

// TestAddressesNeedAPortAndCacheDirADirectory: problems the server would
// only meet at start (no port to listen on) or never report (a file where
// the cache directory goes: served uncached for ever) stop the
// configuration.
func TestAddressesNeedAPortAndCacheDirADirectory(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "afile")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := Load("", []string{"RAIS_TILEPATH=" + dir, "RAIS_ADDRESS=localhost", "RAIS_ADMINADDRESS=127.0.0.1",
		"RAIS_CACHEDIR=" + file}, nil)
	if err == nil {
		t.Fatal("loaded")
	}
	for _, want := range []string{`Address: "localhost" is not HOST:PORT`, `AdminAddress: "127.0.0.1" is not HOST:PORT`,
		"CacheDir: " + file + " is not a directory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in:\n%v", want, err)
		}
	}
	if _, _, err := Load("", []string{"RAIS_TILEPATH=" + dir, "RAIS_ADDRESS=:0", "RAIS_CACHEDIR=" + filepath.Join(dir, "new")}, nil); err != nil {
		t.Errorf("a port alone and a cache directory still to make: %v", err)
	}
}

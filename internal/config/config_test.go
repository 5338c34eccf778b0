package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	f := write(t, "TilePath = \""+t.TempDir()+"\"\nPlugins = \"s3-images.so\"\nCapabilitiesFile = \"\"\nS3Zone = \"us-west-2\"\n")
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
	if cfg != def {
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

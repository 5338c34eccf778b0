package s3conf

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	ok := func(in, bucket, prefix string) {
		t.Helper()
		b, p, err := ParseURL(in)
		if err != nil || b != bucket || p != prefix {
			t.Errorf("ParseURL(%q) = %q, %q, %v; want %q, %q", in, b, p, err, bucket, prefix)
		}
	}
	ok("s3://images", "images", "")
	ok("s3://images/", "images", "")
	ok("s3://images/tiles", "images", "tiles/")
	ok("s3://images/a/b/", "images", "a/b/")
	bad := func(in, want string) {
		t.Helper()
		if _, _, err := ParseURL(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseURL(%q) error %v, want it to mention %q", in, err, want)
		}
	}
	bad("http://images/x", "s3://")
	bad("/data/images", "s3://")
	bad("s3://Images/x", "bucket")
	bad("s3://ab/x", "bucket")
	bad("s3://images/a//b", "segment")
	bad("s3://images/a/../b", "segment")
	bad("s3://images/x?y", "s3://")
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{"RAIS_S3_ENDPOINT": "127.0.0.1:9000", "RAIS_S3_DISABLESSL": "true",
		"RAIS_S3_FORCEPATHSTYLE": "1", "AWS_DEFAULT_REGION": "eu-west-1"}
	c, err := FromEnv(func(k string) string { return env[k] })
	if err != nil || c.Endpoint != "127.0.0.1:9000" || !c.DisableSSL || !c.ForcePathStyle || c.Region != "eu-west-1" {
		t.Fatalf("FromEnv = %+v, %v", c, err)
	}
	env = map[string]string{"RAIS_S3_DISABLESSL": "yes please", "RAIS_S3_FORCEPATHSTYLE": "maybe"}
	_, err = FromEnv(func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "RAIS_S3_DISABLESSL") || !strings.Contains(err.Error(), "RAIS_S3_FORCEPATHSTYLE") {
		t.Fatalf("FromEnv error %v, want both variables named", err)
	}
	if _, err := (Config{Endpoint: "http://x:9000"}).Client(); err == nil {
		t.Fatal("an endpoint with a scheme was accepted")
	}
}

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

func TestRegion(t *testing.T) {
	for _, tc := range []struct{ region, dflt, want string }{
		{"eu-west-3", "us-east-1", "eu-west-3"}, {"", "us-east-1", "us-east-1"}, {"", "", ""},
	} {
		env := map[string]string{"AWS_REGION": tc.region, "AWS_DEFAULT_REGION": tc.dflt}
		if got := Region(func(k string) string { return env[k] }); got != tc.want {
			t.Errorf("AWS_REGION=%q AWS_DEFAULT_REGION=%q: %q, want %q", tc.region, tc.dflt, got, tc.want)
		}
	}
}

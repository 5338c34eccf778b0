package shared

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/iiif-proxy/iiif-proxy/cache"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// faultProxy stands between a node and MinIO and breaks the store on
// demand: every request answered 500, or held past the node's timeout.
func faultProxy(t *testing.T, target string, fault string) string {
	u, _ := url.Parse("http://" + target)
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch fault {
		case "500":
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>`))
		case "slow":
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestStoreFaultsNeverFailARequest: a store that answers 500, hangs, refuses
// the node's credentials (403) or whose bucket vanished: every request is
// rendered and served, none waits longer than the layer's timeout a few
// times over, the failures are counted, and the breaker opens.
func TestStoreFaultsNeverFailARequest(t *testing.T) {
	for _, fault := range []string{"500", "slow", "403", "no bucket"} {
		t.Run(fault, func(t *testing.T) {
			f := newFleet(t)
			n := f.node(func(c *Config) {
				c.Timeout = 300 * time.Millisecond
				switch fault {
				case "500", "slow":
					c.S3.Endpoint = faultProxy(t, f.s.Endpoint, fault)
				case "403":
					c.S3.SecretKey = "not-the-secret"
				}
			})
			if fault == "no bucket" {
				must(t, f.s.Client().RemoveBucketWithOptions(context.Background(), f.bucket, minio.RemoveBucketOptions{ForceDelete: true}))
			}
			for i := range 5 {
				n.c.PurgeTier(rules.TierTile)
				start := time.Now()
				e, how := n.get(t)
				if how != cache.Miss || !strings.HasPrefix(string(e.Body), "fake a v1 ") {
					t.Fatalf("request %d: %v %q, want a render", i, how, e.Body)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Fatalf("request %d took %v with the store failing", i, d)
				}
			}
			s := n.l.Stats()
			if s.Errors < breakerFailures || s.Breaker != "open" || s.Rejected == 0 || s.Hits != 0 {
				t.Fatalf("stats %+v, want errors counted and the breaker open", s)
			}
		})
	}
}

package proxy

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iiif-proxy/iiif-proxy/purge"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// Every purge reaches the caches in front: the admin API's (an identifier,
// a tier) and a source change found by revalidation; /stats and /metrics
// count them per target.
func TestPurgesAreForwardedAndCounted(t *testing.T) {
	events := make(chan purge.Event, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev purge.Event
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			w.WriteHeader(http.StatusBadRequest)
		}
		events <- ev
	}))
	defer hook.Close()
	fwd, err := purge.New(purge.Config{Targets: []string{"webhook " + hook.URL}, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	now := time.Now()
	var mu sync.Mutex
	fp := serveFake(t, true, func(c *Config) {
		c.Forward = fwd
		c.Clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		for i := range c.Tiers {
			c.Tiers[i].Revalidate = time.Minute
		}
	})
	next := func(want string) purge.Event {
		t.Helper()
		select {
		case ev := <-events:
			if got := string(ev.Scope) + " " + ev.ID + ev.Tier + " " + ev.Reason; got != want {
				t.Errorf("forwarded %q, want %q", got, want)
			}
			return ev
		case <-time.After(10 * time.Second):
			t.Fatalf("nothing forwarded; want %q", want)
		}
		return purge.Event{}
	}

	tile := fp.base + "a/0,0,256,256/256,/0/default.jpg"
	fget(t, tile)
	fp.r.Set("a", 1000, 800) // replaced: a new identity
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	if r := fget(t, tile); r.header.Get("X-Cache") != "MISS" {
		t.Fatalf("changed source: X-Cache %s, want MISS", r.header.Get("X-Cache"))
	}
	next("id a source-changed")

	admin := serveAdmin(t, fp.p)
	del := func(path string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodDelete, "http://"+admin+path, nil)
		resp, err := fakeClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("DELETE %s: %s", path, resp.Status)
		}
	}
	del("/cache/ids/b%2Fc")
	if ev := next("id b/c admin"); len(ev.URLs) == 0 || ev.URLs[0] != "/iiif/3/b%2Fc/info.json" {
		t.Errorf("URLs %q", ev.URLs)
	}
	del("/cache/tiers/info")
	next("tier info admin")
	fp.p.PurgeTier(rules.TierTile) // as SIGHUP does when the limits change
	next("tier tile reload")
	del("/cache")
	next("all  admin")

	var stats Stats
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		resp, err := fakeClient.Get("http://" + admin + "/stats")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&stats)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(stats.PurgeForward) == 1 && stats.PurgeForward[0].Sent == 5 || time.Now().After(deadline) {
			break
		}
	}
	if len(stats.PurgeForward) != 1 || stats.PurgeForward[0].Sent != 5 || stats.PurgeForward[0].Target != "webhook "+hook.URL {
		t.Errorf("/stats purgeForward %+v, want 5 sent", stats.PurgeForward)
	}
	resp, err := fakeClient.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`iiif_purge_forward_total{result="sent",target="webhook ` + hook.URL + `"} 5`,
		`iiif_purge_forward_total{result="dropped",target="webhook ` + hook.URL + `"} 0`,
		`iiif_purge_forward_queued{target="webhook ` + hook.URL + `"} 0`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
}

// serveAdmin serves p's admin endpoints on a loopback port until the test ends.
func serveAdmin(t *testing.T, p *Proxy) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := p.AdminServer("")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		fakeClient.CloseIdleConnections()
		srv.Shutdown()
		<-done
	})
	return ln.Addr().String()
}

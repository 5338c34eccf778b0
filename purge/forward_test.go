package purge

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

func TestIDRegexMatchesEveryURLOfTheImageAndNoOther(t *testing.T) {
	re := regexp.MustCompile(idRegex("/iiif", "box1/scan.tif"))
	for _, u := range []string{
		"/iiif/3/box1%2Fscan.tif/info.json",
		"/iiif/2/box1%2Fscan.tif/info.json",
		"/iiif/box1%2Fscan.tif/info.json",
		"/iiif/3/box1%2Fscan.tif",
		"/iiif/box1%2fscan.tif",
		"/iiif/3/box1%2Fscan.tif/0,0,256,256/256,/0/default.jpg",
		"/iiif/2/%62ox1%2fscan%2Etif/full/full/0/default.jpg",
		"/iiif/3/box1%2Fscan.tif/info.json?x=1",
		"/iiif/3/box1%2Fscan.tif?x=1",
		"/iiif/signed/1767225600.AbC-_d/3/box1%2Fscan.tif/full/max/0/default.jpg",
	} {
		if !re.MatchString(u) {
			t.Errorf("%s is not matched by %s", u, re)
		}
	}
	for _, u := range []string{
		"/iiif/3/box1%2Fscan.tiff/info.json",
		"/iiif/3/box1%2Fscan.tif.jpg/info.json",
		"/iiif/3/box1/scan.tif/info.json", // an unescaped slash names no image
		"/iiif/3/xbox1%2Fscan.tif/info.json",
		"/iiif/3/box1%2Fscanxtif/info.json", // "." is a literal, not any character
		"/other/3/box1%2Fscan.tif/info.json",
		"/iiifx/3/box1%2Fscan.tif/info.json",
		"/iiif/4/box1%2Fscan.tif/info.json",
	} {
		if re.MatchString(u) {
			t.Errorf("%s is matched by %s", u, re)
		}
	}
	// Every character an identifier may hold, and a web path with odd ones.
	for _, tc := range []struct{ path, id string }{
		{"/iiif", "a b+c(1)[x]$^.*?é\"\\'#%"},
		{"/images/i.i+f", "x"},
	} {
		re := regexp.MustCompile(idRegex(tc.path, tc.id))
		esc := strings.ReplaceAll(tc.path, " ", "%20")
		for _, enc := range []string{pathEscapeAll(tc.id), escapeNeeded(tc.id)} {
			if u := esc + "/3/" + enc + "/info.json"; !re.MatchString(u) {
				t.Errorf("%s is not matched by %s", u, re)
			}
		}
		if strings.ContainsAny(idRegex(tc.path, tc.id), "\\ \"") {
			t.Errorf("%s holds a backslash, space or quote: Varnish's ban parser reads those", re)
		}
	}
}

// pathEscapeAll percent-encodes every byte.
func pathEscapeAll(s string) string {
	var b strings.Builder
	for i := range len(s) {
		b.WriteString("%" + strings.ToLower(string("0123456789ABCDEF"[s[i]>>4])+string("0123456789ABCDEF"[s[i]&15])))
	}
	return b.String()
}

// escapeNeeded percent-encodes only what pathLiteral does not allow.
func escapeNeeded(s string) string {
	var b strings.Builder
	for _, r := range s {
		if pathLiteral(r) {
			b.WriteRune(r)
			continue
		}
		for _, c := range []byte(string(r)) {
			b.WriteString("%" + string("0123456789ABCDEF"[c>>4]) + string("0123456789ABCDEF"[c&15]))
		}
	}
	return b.String()
}

func TestParseTargetAndValidate(t *testing.T) {
	for _, s := range []string{"ban http://127.0.0.1:6081", "PURGE http://127.0.0.1:8080/images/iiif",
		"webhook https://relay.example.org/purge?key=secret"} {
		if _, err := ParseTarget(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	tg, _ := ParseTarget("webhook https://user:pw@relay.example.org/purge?key=secret")
	if got := tg.String(); got != "webhook https://relay.example.org/purge" {
		t.Errorf("String() = %q: secrets must not reach metrics or logs", got)
	}
	err := Config{Targets: []string{"ban", "flush http://x", "ban ftp://x", "purge http://x/?q=1"},
		QueueLen: -1, Attempts: -1, Backoff: -1, WebhookToken: "a\nb"}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`"ban" must be`, `kind "flush"`, `"ftp://x"`, "takes no query", "PurgeForwardQueueLen",
		"PurgeForwardAttempts", "PurgeForwardBackoff", "PurgeForwardToken"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
	if f, err := New(Config{}); f != nil || err != nil {
		t.Errorf("no targets: %v %v, want a nil Forwarder", f, err)
	}
	var f *Forwarder // a nil Forwarder forwards nothing and does not panic
	f.ID("x", ReasonAdmin)
	f.All(ReasonAdmin)
	f.Close()
	if f.Stats() != nil {
		t.Error("stats of a nil Forwarder")
	}
}

// recorder is a loopback HTTP server that records each request and
// answers fail's status to the first failures, 200 after.
type recorder struct {
	srv   *httptest.Server
	mu    sync.Mutex
	reqs  []recorded
	fails int
	got   chan struct{}
}

type recorded struct {
	method, uri, host string
	header            http.Header
	body              []byte
}

func newRecorder(t *testing.T, fails int) *recorder {
	r := &recorder{fails: fails, got: make(chan struct{}, 1000)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, recorded{req.Method, req.RequestURI, req.Host, req.Header.Clone(), b})
		fail := len(r.reqs) <= r.fails
		r.mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		r.got <- struct{}{}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) requests() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// waitStats waits until cond holds for the first target's counters.
func waitStats(t *testing.T, f *Forwarder, cond func(TargetStats) bool) TargetStats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := f.Stats()[0]
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("counters never got there: %+v", s)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWebhookIsRetriedWithBackoffUntilItAnswers(t *testing.T) {
	rec := newRecorder(t, 2)
	f, err := New(Config{Targets: []string{"webhook " + rec.srv.URL + "/hook?key=k"}, BaseURL: "https://images.example.org",
		Unversioned: true, Backoff: 5 * time.Millisecond, WebhookToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.ID("box1/scan.tif", ReasonSourceChanged)
	s := waitStats(t, f, func(s TargetStats) bool { return s.Sent == 1 })
	if s.Failed != 2 || s.Retried != 2 || s.Dropped != 0 || s.Queued != 0 {
		t.Errorf("counters %+v, want 1 sent after 2 failed and 2 retried", s)
	}
	reqs := rec.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	r := reqs[2]
	if r.method != http.MethodPost || r.uri != "/hook?key=k" || r.header.Get("Authorization") != "Bearer tok" ||
		r.header.Get("Content-Type") != "application/json" {
		t.Errorf("request %s %s %v", r.method, r.uri, r.header)
	}
	var ev Event
	if err := json.Unmarshal(r.body, &ev); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	wantURLs := []string{
		"https://images.example.org/iiif/3/box1%2Fscan.tif/info.json", "https://images.example.org/iiif/3/box1%2Fscan.tif",
		"https://images.example.org/iiif/2/box1%2Fscan.tif/info.json", "https://images.example.org/iiif/2/box1%2Fscan.tif",
		"https://images.example.org/iiif/box1%2Fscan.tif/info.json", "https://images.example.org/iiif/box1%2Fscan.tif",
	}
	wantPrefixes := []string{"/iiif/3/box1%2Fscan.tif/", "/iiif/2/box1%2Fscan.tif/", "/iiif/box1%2Fscan.tif/"}
	if ev.Scope != ScopeID || ev.ID != "box1/scan.tif" || ev.Reason != ReasonSourceChanged ||
		!slices.Equal(ev.URLs, wantURLs) || !slices.Equal(ev.Prefixes, wantPrefixes) || ev.BanRegex != idRegex("/iiif", "box1/scan.tif") {
		t.Errorf("event %+v", ev)
	}
}

func TestPurgeAndBanRequests(t *testing.T) {
	purge, ban := newRecorder(t, 0), newRecorder(t, 0)
	f, err := New(Config{Targets: []string{"purge " + purge.srv.URL + "/images/iiif/", "ban " + ban.srv.URL},
		BaseURL: "https://images.example.org", WebPath: "/iiif/"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.ID("a.jpg", ReasonAdmin)
	f.Tier("info", ReasonReload)
	f.All(ReasonAdmin)
	for range 4 { // PURGE: one identifier's 4 URLs (no unversioned form); nothing for a tier or all
		<-purge.got
	}
	for range 3 {
		<-ban.got
	}
	var uris []string
	for _, r := range purge.requests() {
		if r.method != "PURGE" || r.host != "images.example.org" {
			t.Errorf("%s with Host %s", r.method, r.host)
		}
		uris = append(uris, r.uri)
	}
	if want := []string{"/images/iiif/3/a.jpg/info.json", "/images/iiif/3/a.jpg", "/images/iiif/2/a.jpg/info.json",
		"/images/iiif/2/a.jpg"}; !slices.Equal(uris, want) {
		t.Errorf("PURGE %q, want %q", uris, want)
	}
	var bans []string
	for _, r := range ban.requests() {
		if r.method != "BAN" {
			t.Errorf("method %s", r.method)
		}
		bans = append(bans, r.header.Get("X-Ban-Url"))
	}
	if want := []string{idRegex("/iiif", "a.jpg"), "^/iiif/.*/info[.]json([?]|$)", "^/iiif/"}; !slices.Equal(bans, want) {
		t.Errorf("BAN %q, want %q", bans, want)
	}
	waitStats(t, f, func(s TargetStats) bool { return s.Sent == 4 })
}

// A target that accepts and never answers, or is not there at all: the
// purge never waits, the queue stays bounded, drops are counted.
func TestDeadAndHangingTargetsNeverBlockThePurge(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // connections to it are refused

	arrived, release := make(chan struct{}, 100), make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	}))
	defer hang.Close()
	defer close(release)

	f, err := New(Config{Targets: []string{"ban http://" + dead, "webhook " + hang.URL}, QueueLen: 4, Attempts: 3,
		Backoff: time.Millisecond, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	const purges = 50
	f.ID("first", ReasonAdmin)
	<-arrived // the hanging target's worker is stuck in its first request
	start := time.Now()
	for i := range purges - 1 {
		f.ID(strings.Repeat("x", i+1), ReasonAdmin)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("%d purges took %v: forwarding blocked them", purges, took)
	}
	s := waitStats(t, f, func(s TargetStats) bool { return s.Dropped == purges })
	// Each request that got into the queue was tried 3 times, retried twice.
	if s.Sent != 0 || s.Queued != 0 || s.Failed == 0 || s.Failed%3 != 0 || s.Retried != 2*s.Failed/3 {
		t.Errorf("dead target: %+v", s)
	}
	h := f.Stats()[1]
	// One request hangs in the worker, four wait in the queue, the rest
	// were dropped at the door.
	if h.Dropped != purges-5 || h.Queued != 4 || h.Sent != 0 {
		t.Errorf("hanging target: %+v, want %d dropped and 4 queued", h, purges-5)
	}
	f.Close() // ends the hanging request: Close does not wait for Timeout
	h = f.Stats()[1]
	if h.Dropped != purges || h.Queued != 0 {
		t.Errorf("after Close: %+v, want every request dropped", h)
	}
	f.ID("late", ReasonSourceChanged) // a background revalidation after shutdown
	if h = f.Stats()[1]; h.Dropped != purges+1 || h.Queued != 0 {
		t.Errorf("forwarded after Close: %+v, want it dropped", h)
	}
}

// FuzzIDRegex: for any identifier, the ban regex compiles, matches the URLs
// the proxy itself writes for it (url.PathEscape) in every form, matches no
// other identifier's info.json, and holds nothing Varnish's ban parser
// would split or unescape.
func FuzzIDRegex(f *testing.F) {
	for _, s := range []string{"a.jpg", "box1/scan.tif", "a b+c", "é/ü", "2", "x%2Fy", "[]^$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if id == "" || !utf8.ValidString(id) || strings.ContainsRune(id, 0) {
			return
		}
		src := idRegex("/iiif", id)
		if strings.ContainsAny(src, "\\ \"") {
			t.Fatalf("%q: %s holds a backslash, space or quote", id, src)
		}
		re, err := regexp.Compile(src)
		if err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		esc := url.PathEscape(id)
		for _, u := range []string{"/iiif/3/" + esc + "/info.json", "/iiif/" + esc, "/iiif/2/" + esc + "/full/max/0/default.jpg"} {
			if !re.MatchString(u) {
				t.Fatalf("%q: %s does not match %s", id, src, u)
			}
		}
		// An image named "2" or "3" also matches the version segment of
		// /iiif/3/{any}/…: the over-match idRegex documents.
		if other := "/iiif/3/" + esc + "x/info.json"; id != "2" && id != "3" && re.MatchString(other) {
			t.Fatalf("%q: %s matches another image's %s", id, src, other)
		}
	})
}

package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/iiif-proxy/iiif-proxy/cache/cacheconf"
	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/renderer/fake"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/store"
)

// clock is a clock the test moves. It starts at the real time because the
// store stamps entries with its own clock at Put.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func quiet() *slog.Logger                { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
func openStore(t *testing.T) *store.Tier {
	t.Helper()
	s, err := store.Open(store.Config{Dir: filepath.Join(t.TempDir(), "tier")})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// fixture is a cache over a fake renderer with one source "a" (1000×800),
// every tier on disk, tiles also in memory.
type fixture struct {
	c   *Cache
	r   *fake.Renderer
	clk *clock
	res rules.Resolved
	key []byte
}

func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	f := &fixture{r: fake.New(), clk: newClock()}
	f.r.Set("a", 1000, 800)
	cfg := Config{SourceCacheLen: 10, Clock: f.clk.now, Logger: quiet()}
	for tr := range rules.NumTiers {
		cfg.Tiers[tr] = TierConfig{Store: openStore(t), Policy: cacheconf.Policy{Revalidate: time.Minute}}
	}
	cfg.Tiers[rules.TierTile].MemLen = 10
	if mod != nil {
		mod(&cfg)
	}
	f.c = New(cfg, f.r)
	t.Cleanup(f.c.Wait)
	req, err := rules.Parse(rules.V3, "a/0,0,256,256/256,/0/default.jpg")
	must(t, err)
	f.res, err = req.Resolve(rules.ImageInfo{Width: 1000, Height: 800}, rules.Limits{})
	must(t, err)
	f.key = Key("a", f.res)
	return f
}

// fill fills the tile key of source "a" as the proxy does.
func (f *fixture) fill(t *testing.T, tier rules.Tier) (store.Entry, How) {
	t.Helper()
	src, err := f.c.Source(context.Background(), "a")
	must(t, err)
	e, how, err := f.c.Fill(tier, f.key, func(ctx context.Context) (store.Entry, error) {
		img, err := f.r.Render(ctx, src, f.res)
		return store.Entry{ContentType: img.MIME, LastModified: img.ModTime, SourceIdentity: img.Identity, Body: img.Body}, err
	})
	must(t, err)
	return e, how
}

func TestStampedeRendersOnce(t *testing.T) {
	f := newFixture(t, nil)
	release := f.r.Hold()
	const n = 50
	var wg sync.WaitGroup
	hows := make(chan How, n)
	for range n {
		wg.Go(func() { _, how := f.fill(t, rules.TierTile); hows <- how })
	}
	for f.r.Started.Load() == 0 {
		time.Sleep(time.Millisecond) // until the leader's render is at the gate
	}
	release()
	wg.Wait()
	close(hows)
	count := map[How]int{}
	for h := range hows {
		count[h]++
	}
	if got := f.r.Renders.Load(); got != 1 {
		t.Errorf("%d renders for %d concurrent misses, want 1", got, n)
	}
	// A request scheduled after the fill ended finds the entry (HIT).
	if count[Miss] != 1 || count[Miss]+count[Hit]+count[Collapsed] != n {
		t.Errorf("outcomes %v: want one miss, the rest collapsed or hits", count)
	}
	if s := f.c.Stats()["tile"]; s.Misses != 1 {
		t.Errorf("stats %+v: want 1 miss", s)
	}
}

func TestAFillNobodyWaitsForIsCancelled(t *testing.T) {
	// The request that starts a fill waits up to RenderTimeout, then
	// leaves; being the last, it cancels the render.
	f := newFixture(t, func(c *Config) { c.RenderWait = 20 * time.Millisecond; c.RenderTimeout = 60 * time.Millisecond })
	defer f.r.Hold()() // never released before the request gives up
	src, err := f.c.Source(context.Background(), "a")
	must(t, err)
	var renderErr atomic.Value
	done := make(chan struct{})
	_, _, err = f.c.Fill(rules.TierTile, f.key, func(ctx context.Context) (store.Entry, error) {
		defer close(done)
		_, err := f.r.Render(ctx, src, f.res)
		renderErr.Store(fmt.Sprint(err))
		return store.Entry{}, err
	})
	if !errors.Is(err, ErrRenderWait) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Fill = %v, want ErrRenderWait or the deadline", err)
	}
	<-done // the render saw its context end: nobody waits for it
	if got := renderErr.Load(); got != context.Canceled.Error() && got != context.DeadlineExceeded.Error() {
		t.Errorf("render ended with %v, want its context's end", got)
	}
}

// TestAJoinerGivesUpButTheRenderGoesOn: a request that joins a flight gives
// up at RenderWait (a 503 for its client); the request that started the
// flight waits up to RenderTimeout, so the render is neither cancelled nor
// lost, and it is stored.
func TestAJoinerGivesUpButTheRenderGoesOn(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RenderWait = 20 * time.Millisecond; c.RenderTimeout = time.Minute })
	release := f.r.Hold()
	src, err := f.c.Source(context.Background(), "a")
	must(t, err)
	started := make(chan struct{})
	var renderCtx context.Context
	render := func(ctx context.Context) (store.Entry, error) {
		renderCtx = ctx
		close(started)
		img, err := f.r.Render(ctx, src, f.res)
		return store.Entry{ContentType: img.MIME, Body: img.Body}, err
	}
	type result struct {
		how How
		err error
	}
	leader := make(chan result, 1)
	go func() {
		_, how, err := f.c.Fill(rules.TierTile, f.key, render)
		leader <- result{how, err}
	}()
	<-started
	if _, _, err := f.c.Fill(rules.TierTile, f.key, render); !errors.Is(err, ErrRenderWait) {
		t.Fatalf("joiner: %v, want ErrRenderWait", err)
	}
	if renderCtx.Err() != nil {
		t.Fatalf("the render was cancelled when the joiner left: %v", renderCtx.Err())
	}
	release()
	if r := <-leader; r.err != nil || r.how != Miss {
		t.Fatalf("leader: %v %v, want a MISS", r.how, r.err)
	}
	if _, how := f.fill(t, rules.TierTile); how != Hit {
		t.Errorf("after the render: %v, want HIT (stored)", how)
	}
}

// TestFlightIsCancelledWhenItsLastWaiterLeaves counts: a flight's context
// lives while any request waits on it, ends when the last one leaves, and a
// request arriving afterwards gets a fresh one.
func TestFlightIsCancelledWhenItsLastWaiterLeaves(t *testing.T) {
	var w waiters
	a, first := w.join("k", time.Minute)
	b, second := w.join("k", time.Minute)
	if a != b || !first || second {
		t.Fatalf("two requests for one key: same context %v, first %v %v", a == b, first, second)
	}
	w.leave("k", a)
	if a.ctx.Err() != nil {
		t.Fatal("cancelled while a request still waits")
	}
	w.leave("k", b)
	if a.ctx.Err() == nil {
		t.Fatal("not cancelled when the last request left")
	}
	c, first := w.join("k", time.Minute)
	if c == a || c.ctx.Err() != nil || !first {
		t.Fatal("a new request joined the abandoned flight's context")
	}
	w.done("k", c)
	if c.ctx.Err() == nil || len(w.m) != 0 {
		t.Errorf("a finished flight left its context behind: %d", len(w.m))
	}
	w.leave("k", c) // its request then leaves: nothing to undo
}

// TestETagMatchesTheStore: one format whether the entry was stored or not,
// including bodies whose hash has leading zero digits (the old uncached
// format dropped them).
func TestETagMatchesTheStore(t *testing.T) {
	s := openStore(t)
	var bodies [][]byte
	for i := 0; len(bodies) < 3; i++ {
		b := fmt.Appendf(nil, "body %d", i)
		if xxhash.Sum64(b)>>56 == 0 { // two leading zero hex digits
			bodies = append(bodies, b)
		}
	}
	bodies = append(bodies, []byte("plain"))
	for i, b := range bodies {
		stored, err := s.Put(fmt.Appendf(nil, "k%d", i), store.Entry{ContentType: "text/plain", Body: b})
		must(t, err)
		if got := ETag(b); got != stored.ETag || len(got) != 18 {
			t.Errorf("ETag(%q) = %s, the store says %s", b, got, stored.ETag)
		}
	}
	// And through the cache: an uncached tier's fill and a stored one agree.
	cached := newFixture(t, nil)
	bypass := newFixture(t, func(c *Config) { c.Tiers[rules.TierTile] = TierConfig{} })
	a, _ := cached.fill(t, rules.TierTile)
	b, how := bypass.fill(t, rules.TierTile)
	if how != Bypass || a.ETag != b.ETag || a.ETag != ETag(a.Body) {
		t.Errorf("stored ETag %s, uncached %s (%v): want one", a.ETag, b.ETag, how)
	}
}

func TestHitsFromMemoryAndDisk(t *testing.T) {
	f := newFixture(t, nil)
	e, how := f.fill(t, rules.TierTile)
	if how != Miss {
		t.Fatalf("first fill %v, want MISS", how)
	}
	r := f.c.Lookup(rules.TierTile, f.key, "a", nil)
	if r.State != Found || r.InBuf || string(r.Entry.Body) != string(e.Body) {
		t.Fatalf("memory lookup %+v", r)
	}
	other := f.c.Lookup(rules.TierOther, f.key, "a", nil)
	if other.State != Missing {
		t.Fatalf("another tier found it: %+v", other)
	}
	f.c.Tier(rules.TierTile).mem.RemoveFunc(func(string) bool { return true })
	buf := make([]byte, 0, 4096)
	r = f.c.Lookup(rules.TierTile, f.key, "a", buf)
	if r.State != Found || !r.InBuf || string(r.Entry.Body) != string(e.Body) || &r.Buf[:1][0] != &buf[:1][0] {
		t.Fatalf("disk lookup did not read into the buffer given: %+v", r)
	}
	if s := f.c.Stats()["tile"]; s.MemHits != 1 || s.DiskHits != 1 || s.Misses != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestRevalidationByIdentity(t *testing.T) {
	var changed []string // OnSourceChanged's calls
	f := newFixture(t, func(c *Config) { c.OnSourceChanged = func(id string) { changed = append(changed, id) } })
	f.fill(t, rules.TierTile)
	f.clk.advance(2 * time.Minute)
	infos := f.r.Infos.Load()
	r := f.c.Lookup(rules.TierTile, f.key, "a", nil)
	if r.State != Found || r.How != Revalidated || f.r.Infos.Load() != infos+1 {
		t.Fatalf("unchanged source: %v %v, %d Info calls", r.State, r.How, f.r.Infos.Load()-infos)
	}
	if r = f.c.Lookup(rules.TierTile, f.key, "a", nil); r.How != Hit {
		t.Fatalf("right after revalidating: %v, want a plain hit (refreshed)", r.How)
	}
	if len(changed) != 0 {
		t.Fatalf("OnSourceChanged(%q) for an unchanged source", changed)
	}
	f.r.Set("a", 1000, 800) // replaced: same size, new identity
	f.clk.advance(2 * time.Minute)
	if r = f.c.Lookup(rules.TierTile, f.key, "a", nil); r.State != Changed {
		t.Fatalf("replaced source: %v, want Changed", r.State)
	}
	if r = f.c.Lookup(rules.TierTile, f.key, "a", nil); r.State != Missing {
		t.Fatalf("after the purge: %v, want Missing", r.State)
	}
	if !slices.Equal(changed, []string{"a"}) {
		t.Errorf("OnSourceChanged calls %q, want one for a", changed)
	}
	e, _ := f.fill(t, rules.TierTile)
	if !strings.Contains(string(e.Body), " v2 ") {
		t.Errorf("re-rendered %q, want version 2", e.Body)
	}
}

func TestStaleIfErrorKeepsTheEntry(t *testing.T) {
	f := newFixture(t, nil)
	e, _ := f.fill(t, rules.TierTile)
	f.r.FailInfo("a", &renderer.UnavailableError{Err: errors.New("connection refused")})
	f.clk.advance(2 * time.Minute)
	r := f.c.Lookup(rules.TierTile, f.key, "a", nil)
	if r.State != Found || r.How != Stale || string(r.Entry.Body) != string(e.Body) {
		t.Fatalf("unreachable source: %v %v, want the old entry as STALE", r.State, r.How)
	}
	f.r.FailInfo("a", renderer.ErrNotFound) // gone for real: purge
	if r = f.c.Lookup(rules.TierTile, f.key, "a", nil); r.State != Changed {
		t.Fatalf("source gone: %v, want Changed", r.State)
	}
}

func TestStaleWhileRevalidateChecksInTheBackgroundOnce(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.StaleWhileRevalidate = time.Hour })
	f.fill(t, rules.TierTile)
	f.clk.advance(2 * time.Minute)
	infos := f.r.Infos.Load()
	for range 20 {
		if r := f.c.Lookup(rules.TierTile, f.key, "a", nil); r.State != Found || r.How != Stale {
			t.Fatalf("within stale-while-revalidate: %v %v, want STALE at once", r.State, r.How)
		}
	}
	f.c.Wait()
	if got := f.r.Infos.Load() - infos; got < 1 || got > 20 {
		t.Fatalf("%d background checks", got)
	}
	if s := f.c.Stats()["tile"]; s.Unchanged == 0 || s.Background == 0 || s.Background > 20 {
		t.Errorf("stats %+v", s)
	}
	if r := f.c.Lookup(rules.TierTile, f.key, "a", nil); r.How != Hit {
		t.Errorf("after the background check: %v, want HIT", r.How)
	}
	// A changed source found in the background purges.
	f.r.Set("a", 1000, 800)
	f.clk.advance(2 * time.Minute)
	f.c.Lookup(rules.TierTile, f.key, "a", nil)
	f.c.Wait()
	if r := f.c.Lookup(rules.TierTile, f.key, "a", nil); r.State != Missing {
		t.Errorf("after a background check found a change: %v, want Missing", r.State)
	}
	// Past Revalidate+StaleWhileRevalidate the check is synchronous again.
	f.fill(t, rules.TierTile)
	f.clk.advance(2 * time.Hour)
	if r := f.c.Lookup(rules.TierTile, f.key, "a", nil); r.How != Revalidated {
		t.Errorf("far past: %v, want REVALIDATED", r.How)
	}
}

func TestOneCheckPerImageWithinRevalidate(t *testing.T) {
	f := newFixture(t, nil)
	f.fill(t, rules.TierTile)
	f.fill(t, rules.TierOther) // another entry of the same image
	f.clk.advance(2 * time.Minute)
	infos := f.r.Infos.Load()
	for _, tr := range []rules.Tier{rules.TierTile, rules.TierOther} {
		if r := f.c.Lookup(tr, f.key, "a", nil); r.How != Revalidated {
			t.Fatalf("%v: %v, want REVALIDATED", tr, r.How)
		}
	}
	if got := f.r.Infos.Load() - infos; got != 1 {
		t.Errorf("%d checks of one image for two old entries, want 1", got)
	}
}

func TestOneBackgroundCheckPerKey(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.StaleWhileRevalidate = time.Hour })
	f.fill(t, rules.TierTile)
	f.clk.advance(2 * time.Minute)
	// Hold the check: Info blocks while the key is marked busy.
	k := "tile\x00" + string(f.key)
	f.c.checks.Store(k, struct{}{})
	for range 10 {
		f.c.Lookup(rules.TierTile, f.key, "a", nil)
	}
	if s := f.c.Stats()["tile"]; s.Background != 0 {
		t.Errorf("%d checks started while one runs", s.Background)
	}
	f.c.checks.Delete(k)
}

func TestMaxEntryBytesServesWithoutStoring(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Tiers[rules.TierTile].MaxEntryBytes = 5 })
	f.fill(t, rules.TierTile)
	if r := f.c.Lookup(rules.TierTile, f.key, "a", nil); r.State != Missing {
		t.Errorf("an entry over MaxEntryBytes was stored")
	}
	if s := f.c.Stats()["tile"]; s.TooLarge != 1 {
		t.Errorf("too large %d, want 1", s.TooLarge)
	}
}

func TestPurgeIDDropsEveryTierAndTheDescription(t *testing.T) {
	f := newFixture(t, nil)
	f.fill(t, rules.TierTile)
	f.fill(t, rules.TierOther)
	infos := f.r.Infos.Load()
	if n := f.c.PurgeID("a"); n != 2 {
		t.Errorf("purged %d entries on disk, want 2", n)
	}
	for _, tr := range []rules.Tier{rules.TierTile, rules.TierOther} {
		if r := f.c.Lookup(tr, f.key, "a", nil); r.State != Missing {
			t.Errorf("%v still has it", tr)
		}
	}
	_, _ = f.c.Source(context.Background(), "a")
	if f.r.Infos.Load() != infos+1 {
		t.Error("the source description survived the purge")
	}
}

func TestSourceCachesDescriptions(t *testing.T) {
	f := newFixture(t, nil)
	for range 5 {
		_, err := f.c.Source(context.Background(), "a")
		must(t, err)
	}
	if got := f.r.Infos.Load(); got != 1 {
		t.Errorf("%d Info calls for 5 lookups, want 1", got)
	}
	if _, err := f.c.Source(context.Background(), "nope"); !errors.Is(err, renderer.ErrNotFound) {
		t.Errorf("missing source: %v", err)
	}
}

// A normalised key never equals a canonical or info key, and purge by
// identifier reaches it.
func TestNormalisedKeyApart(t *testing.T) {
	for _, path := range []string{"0,0,512,512/256,256/0/color.jpg", "full/max/0/default.jpg", "0,0,10,10/10,10/0/default.jpg"} {
		req, err := rules.Parse(rules.V3, "a/"+path)
		if err != nil {
			t.Fatal(err)
		}
		nk := NormalisedKey("a", req)
		if !bytes.HasPrefix(nk, []byte("a\x00~")) {
			t.Errorf("%s: %q does not start with the identifier, NUL and ~", path, nk)
		}
		res, err := req.Resolve(rules.ImageInfo{Width: 1000, Height: 1000}, rules.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if k := Key("a", res); bytes.Equal(k, nk) || bytes.Equal(InfoKey("a", rules.V3), nk) {
			t.Errorf("%s: normalised key %q collides", path, nk)
		}
	}
}

// unavailableStore answers every call with err: a tier out of service.
type unavailableStore struct {
	Store
	err error
}

func (s unavailableStore) Get([]byte) (store.Entry, error) { return store.Entry{}, s.err }
func (s unavailableStore) GetAppend(_, dst []byte) (store.Entry, []byte, error) {
	return store.Entry{}, dst, s.err
}
func (s unavailableStore) Lookup([]byte) (store.Entry, error)           { return store.Entry{}, s.err }
func (s unavailableStore) Put([]byte, store.Entry) (store.Entry, error) { return store.Entry{}, s.err }

// TestATierStillOpeningIsNoFault: right after start the port answers
// before the tiers' databases are open (issue 7); those requests are served
// uncached, but a tier opening is a state, not a fault: not counted as
// one, not warned about. A tier out of service for a fault is counted.
func TestATierStillOpeningIsNoFault(t *testing.T) {
	for _, tc := range []struct {
		err    error
		faults bool
	}{{store.ErrOpening, false}, {fmt.Errorf("%w: no space left on device", store.ErrUnavailable), true}} {
		f := newFixture(t, func(c *Config) {
			c.Tiers[rules.TierTile] = TierConfig{Store: unavailableStore{openStore(t), tc.err}}
		})
		if _, how := f.fill(t, rules.TierTile); how != Miss {
			t.Fatalf("%v: %v, want a miss served uncached", tc.err, how)
		}
		var n uint64
		for op := range f.c.Tier(rules.TierTile).stats.faults {
			n += f.c.Tier(rules.TierTile).stats.faults[op].Load()
		}
		if (n > 0) != tc.faults {
			t.Errorf("%v: %d faults counted, want faults %v", tc.err, n, tc.faults)
		}
	}
}

package shared

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/iiif-proxy/iiif-proxy/cache"
	"github.com/iiif-proxy/iiif-proxy/cache/cacheconf"
	"github.com/iiif-proxy/iiif-proxy/internal/s3conf"
	"github.com/iiif-proxy/iiif-proxy/internal/s3test"
	"github.com/iiif-proxy/iiif-proxy/renderer/fake"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/store"
)

// clock is a clock the test moves, from the real time (MinIO stamps
// objects with its own).
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fleet is one MinIO bucket shared by nodes built on it.
type fleet struct {
	t      *testing.T
	s      *s3test.Server
	bucket string
	url    string
}

func newFleet(t *testing.T) *fleet {
	s := s3test.Start(t)
	b := s.Bucket("")
	return &fleet{t: t, s: s, bucket: b, url: "s3://" + b + "/render"}
}

func (f *fleet) s3() s3conf.Config {
	return s3conf.Config{Endpoint: f.s.Endpoint, DisableSSL: true, ForcePathStyle: true, Region: s3test.Region,
		AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey}
}

// node is one iiif-proxy's cache: a fake renderer with source "a", a tile
// tier on disk, and the shared layer.
type node struct {
	c     *cache.Cache
	r     *fake.Renderer
	l     *Layer
	clk   *clock
	res   rules.Resolved
	key   []byte
	store *store.Tier
}

func (f *fleet) node(mod func(*Config)) *node {
	t := f.t
	t.Helper()
	n := &node{r: fake.New(), clk: newClock()}
	n.r.Set("a", 1000, 800)
	cfg := Config{URL: f.url, S3: f.s3(), Timeout: time.Second, Clock: n.clk.now, Logger: quiet(),
		PollInterval: 10 * time.Millisecond, LeaseTTL: 30 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	var err error
	n.l, err = New(cfg)
	must(t, err)
	t.Cleanup(func() { n.l.Close(5 * time.Second) })
	n.store, err = store.Open(store.Config{Dir: filepath.Join(t.TempDir(), "tile")})
	must(t, err)
	t.Cleanup(func() { n.store.Close() })
	ccfg := cache.Config{SourceCacheLen: 10, Clock: n.clk.now, Logger: quiet(), Shared: n.l,
		RenderWait: 10 * time.Second, RenderTimeout: 20 * time.Second}
	ccfg.Tiers[rules.TierTile] = cache.TierConfig{Store: n.store, Policy: cacheconf.Policy{Revalidate: time.Minute}}
	n.c = cache.New(ccfg, n.r)
	t.Cleanup(n.c.Wait)
	req, err := rules.Parse(rules.V3, "a/0,0,256,256/256,/0/default.jpg")
	must(t, err)
	n.res, err = req.Resolve(rules.ImageInfo{Width: 1000, Height: 800}, rules.Limits{})
	must(t, err)
	n.key = cache.Key("a", n.res)
	return n
}

// get serves the tile as the proxy does: look locally, else fill.
func (n *node) get(t *testing.T) (store.Entry, cache.How) {
	t.Helper()
	r := n.c.Lookup(rules.TierTile, n.key, "a", nil)
	if r.State == cache.Found {
		return r.Entry, r.How
	}
	return n.fill(t)
}

func (n *node) fill(t *testing.T) (store.Entry, cache.How) {
	t.Helper()
	src, err := n.c.Source(context.Background(), "a")
	must(t, err)
	e, how, err := n.c.Fill(rules.TierTile, n.key, func(ctx context.Context) (store.Entry, error) {
		img, err := n.r.Render(ctx, src, n.res)
		return store.Entry{ContentType: img.MIME, LastModified: img.ModTime, SourceIdentity: img.Identity, Body: img.Body}, err
	})
	must(t, err)
	return e, how
}

// settle waits (bounded) until the node's queued writes are done.
func (n *node) settle(t *testing.T, writes uint64) {
	t.Helper()
	for i := 0; i < 500; i++ {
		s := n.l.Stats()
		if s.Writes+s.Drops >= writes && s.QueueLen == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("writes did not finish: %+v", n.l.Stats())
}

func (f *fleet) objects(prefix string) []string {
	var out []string
	for o := range f.s.Client().ListObjects(context.Background(), f.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		must(f.t, o.Err)
		out = append(out, o.Key)
	}
	return out
}

// TestConditionalPutHonoured: the MinIO the tests run honours If-None-Match: *
// (the lease) and If-Match (a takeover) on PutObject; the stampede promise
// rests on both.
func TestConditionalPutHonoured(t *testing.T) {
	f := newFleet(t)
	c := f.s.Client()
	ctx := context.Background()
	put := func(cond func(*minio.PutObjectOptions), body string) (minio.UploadInfo, error) {
		o := minio.PutObjectOptions{}
		cond(&o)
		return c.PutObject(ctx, f.bucket, "lease", strings.NewReader(body), int64(len(body)), o)
	}
	ifNone := func(o *minio.PutObjectOptions) { o.SetMatchETagExcept("*") }
	first, err := put(ifNone, "one")
	must(t, err)
	if _, err := put(ifNone, "two"); !lostRace(err) {
		t.Fatalf("second If-None-Match: * put: %v, want PreconditionFailed", err)
	}
	if _, err := put(func(o *minio.PutObjectOptions) { o.SetMatchETag("0123") }, "three"); !lostRace(err) {
		t.Fatalf("If-Match on a wrong ETag: %v, want PreconditionFailed", err)
	}
	if _, err := put(func(o *minio.PutObjectOptions) { o.SetMatchETag(first.ETag) }, "four"); err != nil {
		t.Fatalf("If-Match on the current ETag: %v", err)
	}
	if _, err := put(func(o *minio.PutObjectOptions) { o.SetMatchETag(first.ETag) }, "five"); !lostRace(err) {
		t.Fatalf("If-Match on a replaced ETag: %v, want PreconditionFailed", err)
	}
	obj, err := c.GetObject(ctx, f.bucket, "lease", minio.GetObjectOptions{})
	must(t, err)
	b, err := io.ReadAll(obj)
	must(t, err)
	if string(b) != "four" {
		t.Fatalf("lease holds %q, want four", b)
	}
}

// TestRenderedOnOneHitOnOther: a tile rendered on node A is served by node
// B from the shared layer without rendering, then from B's own disk.
func TestRenderedOnOneHitOnOther(t *testing.T) {
	f := newFleet(t)
	a, b := f.node(nil), f.node(nil)
	ea, how := a.get(t)
	if how != cache.Miss {
		t.Fatalf("A: %v, want MISS", how)
	}
	a.settle(t, 1)
	eb, how := b.get(t)
	if how != cache.SharedHit || b.r.Renders.Load() != 0 {
		t.Fatalf("B: %v with %d renders, want SHARED and none", how, b.r.Renders.Load())
	}
	if !bytes.Equal(ea.Body, eb.Body) || ea.ETag != eb.ETag || !ea.LastModified.Equal(eb.LastModified) || ea.SourceIdentity != eb.SourceIdentity {
		t.Fatalf("B's entry %+v differs from A's %+v", eb, ea)
	}
	if _, how := b.get(t); how != cache.Hit {
		t.Fatalf("B again: %v, want HIT (stored locally)", how)
	}
	if s := b.l.Stats(); s.Hits != 1 || s.Misses != 0 {
		t.Fatalf("B's shared stats %+v", s)
	}
	if got := f.objects("render/l/"); len(got) != 0 {
		t.Fatalf("leases left behind: %v", got)
	}
}

// TestCorruptObjectNeverServed: an entry altered in the bucket (one byte,
// or cut short) is detected, deleted, counted, and rendered again.
func TestCorruptObjectNeverServed(t *testing.T) {
	for _, name := range []string{"flipped", "truncated"} {
		t.Run(name, func(t *testing.T) {
			f := newFleet(t)
			a := f.node(nil)
			a.get(t)
			a.settle(t, 1)
			k := a.l.keys.entry("tile", a.key)
			c := f.s.Client()
			obj, err := c.GetObject(context.Background(), f.bucket, k, minio.GetObjectOptions{})
			must(t, err)
			v, err := io.ReadAll(obj)
			must(t, err)
			if name == "flipped" {
				v[len(v)-3] ^= 1
			} else {
				v = v[:len(v)-5]
			}
			_, err = c.PutObject(context.Background(), f.bucket, k, bytes.NewReader(v), int64(len(v)), minio.PutObjectOptions{})
			must(t, err)
			b := f.node(nil)
			e, how := b.get(t)
			if how != cache.Miss || b.r.Renders.Load() != 1 || !strings.HasPrefix(string(e.Body), "fake a v1 ") {
				t.Fatalf("B: %v, %d renders, body %q; want a fresh render", how, b.r.Renders.Load(), e.Body)
			}
			if s := b.l.Stats(); s.Corrupt != 1 {
				t.Fatalf("corrupt = %d, want 1", s.Corrupt)
			}
			b.settle(t, 1)
			// B's render replaced the object: a third node hits it.
			if _, how := f.node(nil).get(t); how != cache.SharedHit {
				t.Fatalf("C after B's render: %v, want SHARED", how)
			}
		})
	}
}

// TestStampedeAcrossNodes: 150 concurrent misses of one tile over three
// nodes render it once: each node collapses its own requests into one
// flight, one node takes the lease, the other two wait for its entry.
func TestStampedeAcrossNodes(t *testing.T) {
	f := newFleet(t)
	nodes := []*node{f.node(nil), f.node(nil), f.node(nil)}
	var releases []func()
	for _, n := range nodes {
		releases = append(releases, n.r.Hold())
	}
	var wg sync.WaitGroup
	hows := make(chan cache.How, 150)
	for i := range 150 {
		n := nodes[i%3]
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, how := n.fill(t)
			hows <- how
		}()
	}
	// Let the renders go once one has started and the other nodes wait
	// on its lease (bounded).
	for i := 0; i < 500; i++ {
		var started int64
		var waits uint64
		for _, n := range nodes {
			started += n.r.Started.Load()
			waits += n.l.Stats().LeaseWaits
		}
		if started >= 1 && waits >= 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, r := range releases {
		r()
	}
	wg.Wait()
	close(hows)
	var renders int64
	for _, n := range nodes {
		renders += n.r.Renders.Load()
	}
	count := map[cache.How]int{}
	for h := range hows {
		count[h]++
	}
	if renders != 1 {
		t.Fatalf("%d renders over 3 nodes, want 1 (responses %v)", renders, count)
	}
	if count[cache.Miss] != 1 || count[cache.SharedHit]+count[cache.Collapsed] != 149 {
		t.Fatalf("responses %v, want 1 MISS and 149 SHARED or COLLAPSED", count)
	}
}

// TestDeadNodesLeaseTakenOver: a lease left by a node that died is taken
// over once it expires, and does not hold a render up before then longer
// than RenderWait.
func TestDeadNodesLeaseTakenOver(t *testing.T) {
	f := newFleet(t)
	dead := f.node(nil)
	won, err := dead.l.acquire(context.Background(), dead.l.keys.lease("tile", dead.key))
	if err != nil || !won {
		t.Fatalf("acquire: %v %v", won, err)
	}
	// Its expiry is 30s ahead of the clocks: a node whose clock is 31s
	// on takes it over at once.
	a := f.node(nil)
	a.clk.advance(31 * time.Second)
	start := time.Now()
	if _, how := a.get(t); how != cache.Miss {
		t.Fatalf("A: %v, want MISS", how)
	}
	if s := a.l.Stats(); s.Takeovers != 1 || s.LeaseWaits != 0 {
		t.Fatalf("stats %+v, want one takeover, no wait", s)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
	a.settle(t, 1)
	if got := f.objects("render/l/"); len(got) != 0 {
		t.Fatalf("leases left behind: %v", got)
	}
}

// TestLeaseHeldWaitBounded: a live lease whose entry never comes holds a
// node up to its wait, then the node renders itself.
func TestLeaseHeldWaitBounded(t *testing.T) {
	f := newFleet(t)
	other := f.node(nil)
	won, err := other.l.acquire(context.Background(), other.l.keys.lease("tile", other.key))
	if err != nil || !won {
		t.Fatalf("acquire: %v %v", won, err)
	}
	a := f.node(nil)
	start := time.Now()
	_, found, cl := a.l.Claim(context.Background(), "tile", a.key, 300*time.Millisecond)
	if found {
		t.Fatal("found an entry nobody wrote")
	}
	cl.Finish(nil)
	if d := time.Since(start); d < 300*time.Millisecond || d > 10*time.Second {
		t.Fatalf("waited %v, want about 300ms", d)
	}
	if s := a.l.Stats(); s.WaitTimeouts != 1 || s.LeaseWaits != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestPurgeReachesOtherNodes: a purge on A removes the identifier's shared
// objects and B drops its own copy on its next revalidation.
func TestPurgeReachesOtherNodes(t *testing.T) {
	f := newFleet(t)
	a, b := f.node(nil), f.node(nil)
	a.get(t)
	a.settle(t, 1)
	if _, how := b.get(t); how != cache.SharedHit {
		t.Fatalf("B: %v", how)
	}
	// The purge is after B's copy was stored (the store stamps it with the
	// real time, however long the set-up took).
	a.clk.ns.Store(time.Now().Add(time.Second).UnixNano())
	a.c.PurgeID("a")
	a.l.Wait()
	if got := f.objects("render/o/"); len(got) != 0 {
		t.Fatalf("objects left after purge: %v", got)
	}
	// Within its revalidation age B still serves its copy...
	if _, how := b.get(t); how != cache.Hit {
		t.Fatalf("B within Revalidate: %v, want HIT", how)
	}
	// ...past it, it reads the generation and drops it.
	b.clk.advance(2 * time.Minute)
	r := b.c.Lookup(rules.TierTile, b.key, "a", nil)
	if r.State != cache.Changed {
		t.Fatalf("B past Revalidate: state %v, want Changed (purged)", r.State)
	}
	if _, how := b.fill(t); how != cache.Miss || b.r.Renders.Load() != 1 {
		t.Fatalf("B after purge: %v with %d renders, want a render", how, b.r.Renders.Load())
	}
}

// TestStaleWriteAfterPurgeNotServed: an entry written by a render that
// began before a purge (a slow node's late write) is refused and deleted.
func TestStaleWriteAfterPurgeNotServed(t *testing.T) {
	f := newFleet(t)
	a, b := f.node(nil), f.node(nil)
	b.clk.advance(time.Minute)
	b.c.PurgeID("a") // at B's clock, a minute after A renders
	a.get(t)
	a.settle(t, 1)
	c := f.node(nil)
	c.clk.advance(2 * time.Minute)
	if _, how := c.get(t); how != cache.Miss {
		t.Fatalf("C: %v, want MISS (the shared entry predates the purge)", how)
	}
	if s := c.l.Stats(); s.Purged != 1 {
		t.Fatalf("purged = %d, want 1", s.Purged)
	}
}

// TestSlidingLifetime: a read past RefreshAfter of the retention copies the
// object onto itself (a new age); a younger read does not.
func TestSlidingLifetime(t *testing.T) {
	f := newFleet(t)
	a := f.node(func(c *Config) { c.Retention = 6 * 30 * 24 * time.Hour; c.RefreshAfter = 4.0 / 6 })
	a.get(t)
	a.settle(t, 1)
	k := a.l.keys.entry("tile", a.key)
	stat := func() minio.ObjectInfo {
		st, err := f.s.Client().StatObject(context.Background(), f.bucket, k, minio.StatObjectOptions{})
		must(t, err)
		return st
	}
	b := f.node(func(c *Config) { c.Retention = 6 * 30 * 24 * time.Hour; c.RefreshAfter = 4.0 / 6 })
	b.clk.advance(3 * 30 * 24 * time.Hour) // three months: young enough
	if _, how := b.fill(t); how != cache.SharedHit {
		t.Fatalf("B: %v", how)
	}
	if s := b.l.Stats(); s.Refreshes != 0 {
		t.Fatalf("refreshed at three months of six")
	}
	before := stat()
	c := f.node(func(c *Config) { c.Retention = 6 * 30 * 24 * time.Hour; c.RefreshAfter = 4.0 / 6 })
	c.clk.advance(5 * 30 * 24 * time.Hour) // five months: refreshed
	time.Sleep(1100 * time.Millisecond)    // S3's Last-Modified has whole seconds
	if _, how := c.fill(t); how != cache.SharedHit {
		t.Fatalf("C: %v", how)
	}
	for i := 0; i < 300 && c.l.Stats().Refreshes == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	after := stat()
	if c.l.Stats().Refreshes != 1 || !after.LastModified.After(before.LastModified) || after.UserMetadata["Iiif-Refreshed"] == "" {
		t.Fatalf("refreshes %d, Last-Modified %v → %v, metadata %v", c.l.Stats().Refreshes, before.LastModified, after.LastModified, after.UserMetadata)
	}
	// The refreshed object is the same entry.
	if _, how := f.node(nil).get(t); how != cache.SharedHit {
		t.Fatalf("after refresh: %v", how)
	}
}

// TestLifecycleRuleSet: at start the layer adds its expiry rules to the
// bucket's lifecycle configuration, keeping the rules already there.
func TestLifecycleRuleSet(t *testing.T) {
	f := newFleet(t)
	other := "keep-me"
	ctx := context.Background()
	cfg, _ := f.s.Client().GetBucketLifecycle(ctx, f.bucket)
	if cfg == nil || len(cfg.Rules) == 0 {
		cfg = lifecycleWith(other)
		must(t, f.s.Client().SetBucketLifecycle(ctx, f.bucket, cfg))
	}
	a := f.node(func(c *Config) { c.Lifecycle = true; c.Retention = 40 * 24 * time.Hour })
	for i := 0; i < 300 && !a.l.Stats().Lifecycle; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if !a.l.Stats().Lifecycle {
		t.Fatal("lifecycle not set")
	}
	got, err := f.s.Client().GetBucketLifecycle(ctx, f.bucket)
	must(t, err)
	ids := map[string]int{}
	for _, r := range got.Rules {
		ids[r.ID] = int(r.Expiration.Days)
		if strings.HasSuffix(r.ID, "-entries") && (r.RuleFilter.Prefix != "render/o/" || r.Expiration.Days != 40) {
			t.Fatalf("entries rule %+v", r)
		}
	}
	if _, ok := ids[other]; !ok || len(ids) != 3 {
		t.Fatalf("rules %v, want the bucket's own and two of the layer's", ids)
	}
	// A second node finds them in place.
	b := f.node(func(c *Config) { c.Retention = 40 * 24 * time.Hour })
	for i := 0; i < 300 && !b.l.Stats().Lifecycle; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if !b.l.Stats().Lifecycle {
		t.Fatal("rules in place not recognised")
	}
}

// TestQueueBoundDropsWrites: a write past the queue's byte bound is dropped
// and counted, its lease released, and the response unaffected.
func TestQueueBoundDropsWrites(t *testing.T) {
	f := newFleet(t)
	a := f.node(func(c *Config) { c.QueueBytes = 10 })
	if _, how := a.get(t); how != cache.Miss {
		t.Fatalf("A: %v", how)
	}
	for i := 0; i < 300 && len(f.objects("render/l/")) > 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if s := a.l.Stats(); s.Drops != 1 || s.Writes != 0 {
		t.Fatalf("stats %+v, want one drop", s)
	}
	if got := f.objects("render/"); len(got) != 0 {
		t.Fatalf("objects %v, want none (the write was dropped, the lease released)", got)
	}
}

// TestStoreDownBreaker: with MinIO stopped, a node serves from its local
// tier and renders without waiting on the store; the breaker opens after a
// few failures and then costs nothing; when MinIO is back, the next probe
// closes it and the shared layer is used again.
func TestStoreDownBreaker(t *testing.T) {
	f := newFleet(t)
	a := f.node(nil)
	a.get(t)
	a.settle(t, 1)
	f.s.Stop()
	// A's own copy serves with the store down.
	if _, how := a.get(t); how != cache.Hit {
		t.Fatalf("A local: %v", how)
	}
	b := f.node(nil)
	start := time.Now()
	for i := 0; i < 4; i++ {
		b.c.PurgeTier(rules.TierTile) // each request a miss
		if _, how := b.get(t); how != cache.Miss {
			t.Fatalf("B, store down: %v, want MISS (rendered)", how)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("four renders with the store down took %v", d)
	}
	s := b.l.Stats()
	if s.Breaker != "open" || s.BreakerOpens != 1 || s.Errors < breakerFailures || s.Rejected == 0 {
		t.Fatalf("stats %+v, want the breaker open", s)
	}
	// Open: a miss does not ask the store (nothing fails, all is
	// rejected at once).
	b.c.PurgeTier(rules.TierTile)
	before := b.l.Stats()
	b.get(t)
	b.settle(t, before.Writes+before.Drops+1)
	if after := b.l.Stats(); after.Errors != before.Errors || after.Rejected <= before.Rejected {
		t.Fatalf("a miss with the breaker open: errors %d → %d, rejected %d → %d; want no store operation",
			before.Errors, after.Errors, before.Rejected, after.Rejected)
	}
	f.s.Restart()
	// Each request past the backoff probes; the first that finds the
	// store answering closes the breaker. (A MinIO just restarted may
	// refuse a request or two while it loads: the backoff doubles.)
	how := cache.Miss
	for i := 0; i < 6 && how != cache.SharedHit; i++ {
		b.clk.advance(breakerMaxBackoff)
		b.c.PurgeTier(rules.TierTile)
		_, how = b.get(t)
	}
	if how != cache.SharedHit {
		t.Fatalf("B after restart: %v, want SHARED; %+v", how, b.l.Stats())
	}
	if s := b.l.Stats(); s.Breaker != "closed" {
		t.Fatalf("breaker %s after the store came back", s.Breaker)
	}
}

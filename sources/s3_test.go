package sources

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/iiif-proxy/iiif-proxy/internal/dirlock"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/iiif-proxy/iiif-proxy/internal/s3test"
	"github.com/iiif-proxy/iiif-proxy/renderer"
)

// newStore starts MinIO with a bucket and returns a store on it under the
// prefix "pre" and the server.
func newStore(t *testing.T, mod func(*Config)) (*Store, *s3test.Server, string) {
	t.Helper()
	srv := s3test.Start(t)
	b := srv.Bucket("")
	cfg := Config{URL: "s3://" + b + "/pre", Endpoint: srv.Endpoint, DisableSSL: true, ForcePathStyle: true,
		Region: s3test.Region, AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey, Dir: t.TempDir(),
		Timeout: 2 * time.Second, BreakerFailures: 2, BreakerCooldown: 200 * time.Millisecond, BlockSize: 4 << 10}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, srv, b
}

func put(t *testing.T, srv *s3test.Server, bucket, key string, data []byte) {
	t.Helper()
	_, err := srv.Client().PutObject(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestRangedReadsFetchOnlyWhatIsRead(t *testing.T) {
	s, srv, b := newStore(t, nil)
	data := randBytes(1<<20, 1)
	put(t, srv, b, "pre/dir/a.bin", data)
	ctx := context.Background()
	obj, err := s.Stat(ctx, "dir/a.bin")
	if err != nil {
		t.Fatal(err)
	}
	if obj.Size != int64(len(data)) || obj.ETag == "" || obj.Key != "pre/dir/a.bin" {
		t.Fatalf("stat = %+v", obj)
	}
	f, err := s.Open(obj)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := s.Stats().FetchedBytes
	p := make([]byte, 100)
	if _, err := f.ReadAt(p, 500_000); err != nil || !bytes.Equal(p, data[500_000:500_100]) {
		t.Fatalf("ReadAt: %v", err)
	}
	// One 4 KiB block (two when the range straddles one).
	if got := s.Stats().FetchedBytes - before; got == 0 || got > 8<<10 {
		t.Fatalf("fetched %d bytes for 100", got)
	}
	gets := s.Stats().Gets
	if _, err := f.ReadAt(p, 500_000); err != nil || s.Stats().Gets != gets {
		t.Fatalf("a cached block was fetched again (%v)", err)
	}
	// The end of the object, short read.
	tail := make([]byte, 10)
	if n, err := f.ReadAt(tail, int64(len(data)-4)); n != 4 || err != io.EOF || !bytes.Equal(tail[:4], data[len(data)-4:]) {
		t.Fatalf("tail read = %d, %v", n, err)
	}
	// Concurrent readers of one range: one fetch.
	gets = s.Stats().Gets
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			q := make([]byte, 64<<10)
			if _, err := f.ReadAt(q, 700_000); err != nil || !bytes.Equal(q, data[700_000:700_000+64<<10]) {
				t.Errorf("concurrent ReadAt: %v", err)
			}
		})
	}
	wg.Wait()
	if n := s.Stats().Gets - gets; n < 1 || n > 2 {
		// Readers that arrive while the run is claimed wait for it; a
		// second GET can only come from one that claimed before.
		t.Fatalf("%d GETs for one range read by 16 readers", n)
	}
	// Whole fetches the rest, and the local copy is the object.
	wf, err := f.Whole(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer wf.Close()
	got, err := io.ReadAll(io.NewSectionReader(wf, 0, obj.Size))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("whole copy differs (%v)", err)
	}
	if st := s.Stats(); st.FetchedBytes > uint64(len(data))+16<<10 || st.Whole != 1 || st.Bytes != int64(len(data)) {
		t.Fatalf("stats after whole: %+v", st)
	}
}

func TestIdentifiersStayInsideThePrefix(t *testing.T) {
	s, srv, b := newStore(t, nil)
	put(t, srv, b, "secret.bin", []byte("outside the prefix"))
	put(t, srv, b, "pre/in.bin", []byte("inside"))
	for _, id := range []string{"../secret.bin", "a/../../secret.bin", "/secret.bin", "", ".", "a//b", "x\x00y"} {
		if _, err := s.Stat(context.Background(), id); !errors.Is(err, renderer.ErrNotFound) {
			t.Errorf("Stat(%q) = %v, want ErrNotFound", id, err)
		}
	}
	if _, err := s.Stat(context.Background(), "missing.bin"); !errors.Is(err, renderer.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	if _, err := s.Stat(context.Background(), "in.bin"); err != nil {
		t.Error(err)
	}
}

func TestRevalidationByETag(t *testing.T) {
	s, srv, b := newStore(t, nil)
	put(t, srv, b, "pre/x.bin", randBytes(10000, 2))
	ctx := context.Background()
	o1, err := s.Stat(ctx, "x.bin")
	if err != nil {
		t.Fatal(err)
	}
	o2, err := s.Stat(ctx, "x.bin")
	if err != nil || o2 != o1 || s.Stats().NotModified != 1 {
		t.Fatalf("second stat: %+v %v, notModified %d", o2, err, s.Stats().NotModified)
	}
	f1, _ := s.Open(o1)
	defer f1.Close()
	newData := randBytes(12000, 3)
	put(t, srv, b, "pre/x.bin", newData)
	// A reader of the old version gets ErrSourceChanged, never mixed bytes.
	if _, err := f1.ReadAt(make([]byte, 10), 8000); !errors.Is(err, renderer.ErrSourceChanged) {
		t.Fatalf("read of an overwritten version: %v", err)
	}
	o3, err := s.Stat(ctx, "x.bin")
	if err != nil || o3.ETag == o1.ETag || o3.Size != 12000 {
		t.Fatalf("after overwrite: %+v %v", o3, err)
	}
	f3, _ := s.Open(o3)
	defer f3.Close()
	p := make([]byte, 100)
	if _, err := f3.ReadAt(p, 11000); err != nil || !bytes.Equal(p, newData[11000:11100]) {
		t.Fatalf("new version read: %v", err)
	}
	if k, ok := s.Known("x.bin"); !ok || k != o3 {
		t.Fatalf("Known = %+v", k)
	}
}

func TestEvictionUnderASmallBudget(t *testing.T) {
	var evicted []string
	var mu sync.Mutex
	s, srv, b := newStore(t, func(c *Config) {
		c.MaxBytes = 100 << 10
		c.OnEvict = func(o Object) { mu.Lock(); evicted = append(evicted, o.ID); mu.Unlock() }
	})
	ctx := context.Background()
	for i, id := range []string{"a", "b", "c"} {
		put(t, srv, b, "pre/"+id, randBytes(40<<10, uint64(10+i)))
	}
	whole := func(id string) {
		t.Helper()
		o, err := s.Stat(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		f, _ := s.Open(o)
		defer f.Close()
		wf, err := f.Whole(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wf.Close()
	}
	whole("a")
	whole("b")
	whole("c") // 120 KB > 100 KB: a (least recently used) goes
	st := s.Stats()
	if st.Bytes > 100<<10 || st.Evicted != 1 || len(evicted) != 1 || evicted[0] != "a" {
		t.Fatalf("after three: bytes %d evicted %d %v", st.Bytes, st.Evicted, evicted)
	}
	if _, ok := s.Known("a"); ok {
		t.Fatal("a still indexed")
	}
	// What is on disk matches the count: data files of b and c only.
	var onDisk int64
	ms, _ := filepath.Glob(filepath.Join(s.cfg.Dir, "*.data"))
	for _, m := range ms {
		fi, _ := os.Stat(m)
		onDisk += fi.Size()
	}
	if len(ms) != 2 || onDisk != 80<<10 {
		t.Fatalf("%d data files, %d bytes", len(ms), onDisk)
	}
	// A new store on the same directory finds both (bitmaps persisted).
	s.Close()
	s2, err := New(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st := s2.Stats(); st.Whole != 2 || st.Bytes != 80<<10 {
		t.Fatalf("reloaded: %+v", st)
	}
}

func TestStoreDownServesCachedAndFailsFast(t *testing.T) {
	s, srv, b := newStore(t, nil)
	ctx := context.Background()
	put(t, srv, b, "pre/cached", randBytes(20<<10, 4))
	put(t, srv, b, "pre/other", randBytes(20<<10, 5))
	o, err := s.Stat(ctx, "cached")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := s.Open(o)
	wf, err := f.Whole(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wf.Close()
	f.Close()
	srv.Stop()
	// Cached: answered from the cache (stale), whatever the store does.
	for range 4 {
		got, err := s.Stat(ctx, "cached")
		if err != nil || got != o {
			t.Fatalf("cached while down: %+v %v", got, err)
		}
	}
	// Not cached: unavailable, and once the breaker is open, at once.
	var ue *renderer.UnavailableError
	if _, err := s.Stat(ctx, "other"); !errors.As(err, &ue) {
		t.Fatalf("uncached while down: %v", err)
	}
	if st := s.Stats(); st.Breaker != "open" || st.BreakerOpens != 1 {
		t.Fatalf("breaker: %+v", st)
	}
	refused := s.Stats().Refused
	start := time.Now()
	if _, err := s.Stat(ctx, "other"); !errors.As(err, &ue) || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("open breaker: %v after %s", err, time.Since(start))
	}
	if s.Stats().Refused != refused+1 {
		t.Fatal("request not refused by the open breaker")
	}
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.Stat(ctx, "other")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := s.Stats(); st.Breaker != "closed" {
		t.Fatalf("breaker after recovery: %s", st.Breaker)
	}
}

// TestStoreFailuresAreUnavailableNotMissing: a 403 (bad credentials), a
// bucket that vanished and a store that accepts connections but never
// answers are failures of the store (UnavailableError, counted, opening the
// breaker), never "no such image", and a silent store fails within Timeout.
func TestStoreFailuresAreUnavailableNotMissing(t *testing.T) {
	ctx := context.Background()
	check := func(t *testing.T, s *Store, timeout bool) {
		t.Helper()
		var ue *renderer.UnavailableError
		for i := range 2 {
			start := time.Now()
			_, err := s.Stat(ctx, "a.bin")
			if !errors.As(err, &ue) || ue.Timeout != timeout {
				t.Fatalf("attempt %d: %v (%T), want UnavailableError with Timeout %v", i, err, err, timeout)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("took %s", took)
			}
		}
		if st := s.Stats(); st.Breaker != "open" || st.Errors != 2 {
			t.Fatalf("stats: %+v", st)
		}
	}
	t.Run("forbidden", func(t *testing.T) {
		s, srv, b := newStore(t, func(c *Config) { c.SecretKey = "wrong-secret-key" })
		put(t, srv, b, "pre/a.bin", []byte("x"))
		check(t, s, false)
	})
	t.Run("bucket gone", func(t *testing.T) {
		s, _, _ := newStore(t, func(c *Config) { c.URL = "s3://no-such-bucket/pre" })
		check(t, s, false)
	})
	t.Run("500s", func(t *testing.T) {
		// A store answering every request with 500 InternalError.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>`)
		})}
		go hs.Serve(ln)
		defer hs.Close()
		s, err := New(Config{URL: "s3://bkt/pre", Endpoint: ln.Addr().String(), DisableSSL: true, ForcePathStyle: true,
			Region: "us-east-1", AccessKey: "k", SecretKey: "s", Dir: t.TempDir(), Timeout: time.Second,
			BreakerFailures: 2, BreakerCooldown: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		check(t, s, false)
	})
	t.Run("silent", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var conns []net.Conn
		var mu sync.Mutex
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c) // held open, never answered
				mu.Unlock()
			}
		}()
		defer func() {
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
		}()
		s, err := New(Config{URL: "s3://bkt/pre", Endpoint: ln.Addr().String(), DisableSSL: true, ForcePathStyle: true,
			Region: "us-east-1", AccessKey: "k", SecretKey: "s", Dir: t.TempDir(), Timeout: 300 * time.Millisecond,
			BreakerFailures: 2, BreakerCooldown: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		check(t, s, true)
		if s.Stats().Timeouts != 2 {
			t.Fatalf("timeouts: %+v", s.Stats())
		}
	})
}

// TestBelowMinFreeReadsGoUncached: with the source cache's file system below
// the free-space minimum, nothing is written: ranged reads come straight
// from the store (counted), and what cannot be read that way (a whole copy)
// is unavailable, never a corrupt file.
func TestBelowMinFreeReadsGoUncached(t *testing.T) {
	s, srv, b := newStore(t, func(c *Config) { c.MinFreeBytes = 1 << 30 })
	free := uint64(2 << 30)
	var mu sync.Mutex
	s.free = func(string) (uint64, uint64, error) { mu.Lock(); defer mu.Unlock(); return free, 100 << 30, nil }
	data := randBytes(200<<10, 9)
	put(t, srv, b, "pre/x", data)
	ctx := context.Background()
	o, err := s.Stat(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := s.Open(o)
	defer f.Close()
	p := make([]byte, 1000)
	if _, err := f.ReadAt(p, 10_000); err != nil || !bytes.Equal(p, data[10_000:11_000]) {
		t.Fatal(err)
	}
	held := s.Stats().Bytes
	mu.Lock()
	free = 1<<30 + 1000 // below the minimum plus any block
	mu.Unlock()
	if _, err := f.ReadAt(p, 150_000); err != nil || !bytes.Equal(p, data[150_000:151_000]) {
		t.Fatalf("uncached read: %v", err)
	}
	if st := s.Stats(); st.Uncached != 1 || st.Bytes != held {
		t.Fatalf("stats: %+v (held before %d)", st, held)
	}
	var ue *renderer.UnavailableError
	if _, err := f.Whole(ctx); !errors.As(err, &ue) {
		t.Fatalf("Whole below the minimum: %v", err)
	}
	mu.Lock()
	free = 2 << 30
	mu.Unlock()
	wf, err := f.Whole(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer wf.Close()
	got, _ := io.ReadAll(io.NewSectionReader(wf, 0, o.Size))
	if !bytes.Equal(got, data) {
		t.Fatal("whole copy differs after room came back")
	}
}

// openIn counts this process's descriptors open on files in dir.
func openIn(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, dir+"/") {
			n++
		}
	}
	return n
}

// TestIdleObjectsHoldNoDescriptors: a source cache of many objects keeps a
// descriptor open only while a reader is.
func TestIdleObjectsHoldNoDescriptors(t *testing.T) {
	s, srv, b := newStore(t, nil)
	ctx := context.Background()
	var files []*File
	for i := range 20 {
		id := fmt.Sprintf("o%d", i)
		put(t, srv, b, "pre/"+id, randBytes(10<<10, uint64(i)))
		o, err := s.Stat(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		f, err := s.Open(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.ReadAt(make([]byte, 100), 9000); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	// One more than the readers: the directory's lock (internal/dirlock).
	if n := openIn(t, s.cfg.Dir); n != 21 {
		t.Fatalf("%d descriptors with 20 readers open, want 21 (with the lock)", n)
	}
	for _, f := range files {
		f.Close()
	}
	if n := openIn(t, s.cfg.Dir); n != 1 {
		t.Fatalf("%d descriptors open with no reader, want 1 (the lock)", n)
	}
	if st := s.Stats(); st.Objects != 20 {
		t.Fatalf("objects: %d", st.Objects)
	}
}

// TestRestartKeepsOnlyWhatWasSynced: blocks fetched by ranges are kept
// across a clean shutdown (Close writes the bitmap after syncing the data);
// after a crash (no Close), what was never recorded is removed, never
// trusted.
func TestRestartKeepsOnlyWhatWasSynced(t *testing.T) {
	s, srv, b := newStore(t, nil)
	ctx := context.Background()
	data := randBytes(100<<10, 11)
	put(t, srv, b, "pre/r", data)
	read := func(s *Store) {
		t.Helper()
		o, err := s.Stat(ctx, "r")
		if err != nil {
			t.Fatal(err)
		}
		f, _ := s.Open(o)
		defer f.Close()
		p := make([]byte, 10)
		if _, err := f.ReadAt(p, 50_000); err != nil || !bytes.Equal(p, data[50_000:50_010]) {
			t.Fatal(err)
		}
	}
	read(s)
	held := s.Stats().Bytes
	// Crash: a second store on the directory without Close (the kernel
	// drops a dead process's lock; here the test does).
	s.lock.Release()
	crashed, err := New(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st := crashed.Stats(); st.Objects != 0 || st.Bytes != 0 {
		t.Fatalf("after a crash: %+v", st)
	}
	if ms, _ := filepath.Glob(filepath.Join(s.cfg.Dir, "*")); len(ms) != 1 || filepath.Base(ms[0]) != "LOCK" {
		t.Fatalf("left behind: %v (want only the directory's LOCK)", ms)
	}
	// Clean: read, Close, reopen: the blocks are there, nothing is fetched.
	read(crashed)
	crashed.Close()
	again, err := New(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if st := again.Stats(); st.Objects != 1 || st.Bytes != held {
		t.Fatalf("after a clean restart: %+v, want %d bytes", st, held)
	}
	read(again)
	if st := again.Stats(); st.Gets != 0 || st.NotModified != 1 {
		t.Fatalf("blocks fetched again after a clean restart: %+v", st)
	}
}

// TestSourceCacheIsOneServers: a second server on the same source cache
// would delete the first one's downloads under way at its start (it keeps
// only what it has records of); it is refused, naming the directory.
func TestSourceCacheIsOneServers(t *testing.T) {
	s, _, _ := newStore(t, nil)
	if _, err := New(s.cfg); err == nil || !strings.Contains(err.Error(), "SourceCacheDir") || !errors.Is(err, dirlock.ErrHeld) {
		t.Fatalf("a second store on the same directory: %v, want ErrHeld", err)
	}
	s.Close()
	again, err := New(s.cfg)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	again.Close()
}

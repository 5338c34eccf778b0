package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// clock is an injectable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// openMem opens a tier on a fresh in-memory file system with the sweeper off
// (tests call sweep themselves) and clk as its clock.
func openMem(t testing.TB, cfg Config, clk *clock) *engine {
	t.Helper()
	if cfg.fs == nil {
		cfg.fs = vfs.NewMem()
	}
	if cfg.Dir == "" {
		cfg.Dir = "db"
	}
	if clk != nil {
		cfg.now = clk.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	cfg.noSweeper = true
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tier, err := openEngine(cfg.withDefaults(), nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = tier.Close() })
	return tier
}

func mustPut(t testing.TB, tier interface {
	Put([]byte, Entry) (Entry, error)
}, key string, e Entry) Entry {
	t.Helper()
	got, err := tier.Put([]byte(key), e)
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return got
}

// jpeg returns an entry whose body is n incompressible bytes determined by
// seed, like a real JPEG's.
func jpeg(n int, seed byte) Entry {
	b := make([]byte, n)
	x := uint64(seed)*0x9e3779b97f4a7c15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x >> 32)
	}
	return Entry{ContentType: "image/jpeg", LastModified: time.Unix(1700000000, 0), Body: b}
}

// rawState scans the raw keyspace and returns the accounting it implies, and
// checks that every entry has exactly its own access-index key (at the
// bucket the policy holds for it) and a policy node, and nothing else has.
func rawState(t testing.TB, tier *engine) counters {
	t.Helper()
	var c counters
	it, err := tier.db.NewIter(&pebble.IterOptions{LowerBound: []byte{spaceEntry}, UpperBound: []byte{spaceEnd}})
	if err != nil {
		t.Fatal(err)
	}
	index := map[string]bool{}
	for ok := it.First(); ok; ok = it.Next() {
		v := it.Value()
		key := it.Key()[1:]
		c.bytes += int64(len(key) + len(v))
		c.entries++
		if _, ok := parseHeader(v); !ok {
			t.Errorf("raw entry %q has a bad header", key)
			continue
		}
		tier.polMu.Lock()
		n := tier.pol.get(key)
		tier.polMu.Unlock()
		if n == nil {
			t.Errorf("entry %q has no policy node", key)
			continue
		}
		index[string(appendAccessKey(nil, n.persisted, key))] = true
	}
	tier.polMu.Lock()
	if nodes := len(tier.pol.nodes); nodes != len(index) {
		t.Errorf("policy has %d nodes, keyspace %d entries", nodes, len(index))
	}
	tier.polMu.Unlock()
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	it, err = tier.db.NewIter(&pebble.IterOptions{LowerBound: []byte{spaceAccess}, UpperBound: []byte{spaceAccess + 1}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if !index[string(it.Key())] {
			t.Errorf("stale index key %q", it.Key())
		}
		n++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if n != len(index) {
		t.Errorf("index has %d keys, entries %d", n, len(index))
	}
	return c
}

// checkAccounting asserts that Stats agree with a raw scan.
func checkAccounting(t testing.TB, tier *engine) {
	t.Helper()
	raw := rawState(t, tier)
	st := tier.Stats()
	if st.Bytes != raw.bytes || st.Entries != raw.entries {
		t.Errorf("Stats Bytes=%d Entries=%d, raw scan Bytes=%d Entries=%d", st.Bytes, st.Entries, raw.bytes, raw.entries)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings, all expected
	}{
		{"minimal", Config{Dir: "x"}, nil},
		{"full", Config{Dir: "x", MaxBytes: 1 << 30, Retention: time.Hour, TouchEvery: time.Minute, SweepEvery: time.Second, CacheBytes: 1 << 20}, nil},
		{"no dir", Config{}, []string{"Dir is required"}},
		{"touch not below retention", Config{Dir: "x", Retention: time.Minute, TouchEvery: time.Minute}, []string{"TouchEvery 1m0s must be less than Retention"}},
		{"every problem at once", Config{MaxBytes: -1, Retention: -1, TouchEvery: -1, SweepEvery: -1, CacheBytes: -1},
			[]string{"Dir", "MaxBytes", "Retention", "TouchEvery", "SweepEvery", "CacheBytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v; missing %q", err, w)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		wantTouch time.Duration
	}{
		{"no retention", Config{Dir: "x"}, time.Hour},
		{"retention", Config{Dir: "x", Retention: 16 * time.Hour}, time.Hour},
		{"explicit", Config{Dir: "x", Retention: 16 * time.Hour, TouchEvery: time.Minute}, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg.withDefaults()
			if c.TouchEvery != tt.wantTouch || c.SweepEvery != DefaultSweepEvery || c.CacheBytes != DefaultCacheBytes || c.Logger == nil {
				t.Errorf("withDefaults = TouchEvery %v SweepEvery %v CacheBytes %d", c.TouchEvery, c.SweepEvery, c.CacheBytes)
			}
		})
	}
}

func TestPutGet(t *testing.T) {
	tests := []struct {
		name string
		key  string
		e    Entry
	}{
		{"tile", "img1\x00full/max/0/default.jpg", jpeg(20<<10, 1)},
		{"empty body", "img1\x00empty", Entry{ContentType: "image/png"}},
		{"no last-modified", "img2\x00x", Entry{ContentType: "application/json", Body: []byte(`{"a":1}`)}},
		{"sub-second last-modified", "img3\x00y", Entry{ContentType: "image/webp", LastModified: time.Unix(1700000000, 999999999), Body: []byte("w")}},
		{"unusual content type", "img4\x00z", Entry{ContentType: `application/ld+json;profile="http://iiif.io/api/image/3/context.json"`, Body: []byte("{}")}},
		{"empty key", "", Entry{Body: []byte("k")}},
		{"large", "big", jpeg(1<<20, 9)},
	}
	clk := newClock()
	tier := openMem(t, Config{}, clk)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.Advance(time.Second)
			stored := mustPut(t, tier, tt.key, tt.e)
			if !stored.StoredAt.Equal(clk.Now()) {
				t.Errorf("StoredAt = %v, want %v", stored.StoredAt, clk.Now())
			}
			if len(stored.ETag) != 18 || stored.ETag[0] != '"' || stored.ETag[17] != '"' {
				t.Errorf("ETag = %s, want a quoted 16-digit hex hash", stored.ETag)
			}
			wantLM := time.Time{}
			if !tt.e.LastModified.IsZero() {
				wantLM = tt.e.LastModified.Truncate(time.Second)
			}
			if !stored.LastModified.Equal(wantLM) {
				t.Errorf("stored LastModified = %v, want %v", stored.LastModified, wantLM)
			}
			got, err := tier.Get([]byte(tt.key))
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.ContentType != tt.e.ContentType || !bytes.Equal(got.Body, tt.e.Body) ||
				!got.LastModified.Equal(wantLM) || got.LastModified.IsZero() != wantLM.IsZero() ||
				!got.StoredAt.Equal(stored.StoredAt) || got.ETag != stored.ETag {
				t.Errorf("Get = %+v (body %d bytes), want %+v", got.ContentType, len(got.Body), stored.ContentType)
			}
		})
	}
	checkAccounting(t, tier)
	if st := tier.Stats(); st.Puts != uint64(len(tests)) || st.Hits != uint64(len(tests)) || st.Entries != int64(len(tests)) {
		t.Errorf("Stats = %+v", st)
	}
}

func TestGetBodyIsPrivate(t *testing.T) {
	tier := openMem(t, Config{}, newClock())
	e := jpeg(100, 3)
	mustPut(t, tier, "k", e)
	e.Body[0] ^= 0xff // the caller reuses its buffer after Put
	got, _ := tier.Get([]byte("k"))
	got.Body[1] ^= 0xff
	again, err := tier.Get([]byte("k"))
	if err != nil || !bytes.Equal(again.Body, jpeg(100, 3).Body) {
		t.Fatalf("Get after mutating buffers: %v, body changed", err)
	}
}

func TestETagIdentifiesBytes(t *testing.T) {
	tier := openMem(t, Config{}, newClock())
	a := mustPut(t, tier, "a", jpeg(1000, 1))
	b := mustPut(t, tier, "b", jpeg(1000, 1))
	c := mustPut(t, tier, "c", jpeg(1000, 2))
	if a.ETag != b.ETag || a.ETag == c.ETag {
		t.Errorf("ETags %s %s %s: same bytes must match, different must not", a.ETag, b.ETag, c.ETag)
	}
}

func TestMiss(t *testing.T) {
	tier := openMem(t, Config{}, newClock())
	_, err := tier.Get([]byte("nope"))
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get = %v, want plain ErrNotFound", err)
	}
	if err := tier.Touch([]byte("nope")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Touch = %v, want ErrNotFound", err)
	}
	if err := tier.Refresh([]byte("nope"), time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Refresh = %v, want ErrNotFound", err)
	}
	if st := tier.Stats(); st.Misses != 1 || st.Hits != 0 {
		t.Errorf("Stats = %+v, want one miss", st)
	}
}

func TestOverwrite(t *testing.T) {
	clk := newClock()
	tier := openMem(t, Config{}, clk)
	mustPut(t, tier, "k", jpeg(5000, 1))
	clk.Advance(time.Hour)
	mustPut(t, tier, "k", jpeg(300, 2))
	got, err := tier.Get([]byte("k"))
	if err != nil || !bytes.Equal(got.Body, jpeg(300, 2).Body) {
		t.Fatalf("Get after overwrite: %v", err)
	}
	checkAccounting(t, tier)
	if st := tier.Stats(); st.Entries != 1 {
		t.Errorf("Entries = %d, want 1", st.Entries)
	}
}

func TestCorruptValueDropped(t *testing.T) {
	tests := []struct {
		name   string
		mangle func(v []byte) []byte
	}{
		{"body bit flip", func(v []byte) []byte { v[len(v)-1] ^= 1; return v }},
		{"header bit flip", func(v []byte) []byte { v[offStoredAt] ^= 0x10; return v }},
		{"body hash changed", func(v []byte) []byte { v[offBodyHash] ^= 1; return v }},
		{"body checksum changed", func(v []byte) []byte { v[offBodyCRC] ^= 1; return v }},
		{"content type changed", func(v []byte) []byte { v[headerLen] = 'X'; return v }},
		{"checksum changed", func(v []byte) []byte { v[0] ^= 1; return v }},
		{"truncated body", func(v []byte) []byte { return v[:len(v)-100] }},
		{"truncated header", func(v []byte) []byte { return v[:20] }},
		{"empty", func(v []byte) []byte { return nil }},
		{"padded", func(v []byte) []byte { return append(v, 0) }},
		{"unknown version", func(v []byte) []byte { v[offVersion] = 99; return v }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tier := openMem(t, Config{}, newClock())
			mustPut(t, tier, "other", jpeg(500, 5))
			mustPut(t, tier, "k", jpeg(2000, 1))
			ek := appendEntryKey(nil, []byte("k"))
			v, closer, err := tier.db.Get(ek)
			if err != nil {
				t.Fatal(err)
			}
			bad := tt.mangle(bytes.Clone(v))
			closer.Close()
			if err := tier.db.Set(ek, bad, pebble.NoSync); err != nil {
				t.Fatal(err)
			}

			_, err = tier.Get([]byte("k"))
			if !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Get = %v, want ErrNotFound and ErrCorrupt", err)
			}
			if _, _, err := tier.db.Get(ek); !errors.Is(err, pebble.ErrNotFound) {
				t.Errorf("corrupt value still stored: %v", err)
			}
			_, err = tier.Get([]byte("k"))
			if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) {
				t.Errorf("second Get = %v, want plain ErrNotFound", err)
			}
			st := tier.Stats()
			if st.Corrupt != 1 || st.Misses != 2 || st.Hits != 0 || st.Entries != 1 {
				t.Errorf("Stats = %+v, want Corrupt 1, Misses 2, Entries 1", st)
			}
			if _, err := tier.Get([]byte("other")); err != nil {
				t.Errorf("other entry: %v", err)
			}
			if len(bad) == len(v) {
				// Same length, so the accounting is exact; the index key
				// was found through the (intact or not) access field.
				if bytes.Equal(bad[offAccess:offAccess+8], v[offAccess:offAccess+8]) {
					checkAccounting(t, tier)
				}
			}
		})
	}
}

// TestHitsNeverWrite: no hit writes to Pebble, however stale its index key;
// the sweeper's checkpoint then moves the index key (a few bytes), once,
// and never rewrites the value.
func TestHitsNeverWrite(t *testing.T) {
	clk := newClock()
	tier := openMem(t, Config{TouchEvery: time.Minute}, clk)
	mustPut(t, tier, "k", jpeg(20<<10, 1))
	get := func() {
		t.Helper()
		if _, err := tier.Get([]byte("k")); err != nil {
			t.Fatalf("Get: %v", err)
		}
	}
	// Every write goes through commit; batches that reach the memtable are
	// counted there (there is no WAL to measure).
	writes := func() (uint64, uint64) { return tier.writes.Load(), tier.db.Metrics().MemTable.Size }

	w0, mem0 := writes()
	for range 1000 {
		get()
	}
	clk.Advance(time.Hour) // far past TouchEvery
	for range 1000 {
		get()
	}
	if err := tier.Touch([]byte("k")); err != nil {
		t.Fatal(err)
	}
	if w, mem := writes(); w != w0 || mem != mem0 {
		t.Fatalf("hits wrote: %d batches, %d memtable bytes", w-w0, mem-mem0)
	}
	if err := tier.sweep(); err != nil { // the checkpoint: one batch, index keys only
		t.Fatal(err)
	}
	w1, mem1 := writes()
	if w1 != w0+1 || mem1-mem0 > 1024 {
		t.Fatalf("checkpoint: %d batches, %d memtable bytes; want one batch of index keys (a 20 KB value is not rewritten)", w1-w0, mem1-mem0)
	}
	for range 1000 {
		get()
	}
	if err := tier.sweep(); err != nil {
		t.Fatal(err)
	}
	if w, _ := writes(); w != w1 {
		t.Fatalf("hits after the checkpoint wrote: %d batches", w-w1)
	}
	if st := tier.Stats(); st.Touches != 1 || st.Hits != 3000 {
		t.Errorf("Stats = %+v, want Touches 1, Hits 3000", st)
	}
	checkAccounting(t, tier)
	// The checkpointed read survives a restart's rebuild.
	tier.polMu.Lock()
	n := tier.pol.get([]byte("k"))
	persisted := n.persisted
	tier.polMu.Unlock()
	if want := seconds(clk.Now()); persisted != want {
		t.Errorf("index bucket %d after the checkpoint, want %d", persisted, want)
	}
}

func TestTouchAndRefresh(t *testing.T) {
	clk := newClock()
	tier := openMem(t, Config{TouchEvery: time.Minute}, clk)
	stored := mustPut(t, tier, "k", jpeg(1000, 1))

	clk.Advance(time.Hour)
	if err := tier.Touch([]byte("k")); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	if st := tier.Stats(); st.Touches != 0 {
		t.Errorf("Touch wrote (Touches %d)", st.Touches)
	}
	if err := tier.Touch([]byte("absent")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Touch(absent) = %v, want ErrNotFound", err)
	}
	if err := tier.sweep(); err != nil {
		t.Fatal(err)
	}
	if st := tier.Stats(); st.Touches != 1 {
		t.Errorf("Touches = %d after the checkpoint, want 1", st.Touches)
	}

	clk.Advance(time.Hour)
	revalidated := clk.Now().Add(-time.Minute)
	if err := tier.Refresh([]byte("k"), revalidated); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	got, err := tier.Get([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	if !got.StoredAt.Equal(revalidated) || got.ETag != stored.ETag || !bytes.Equal(got.Body, jpeg(1000, 1).Body) {
		t.Errorf("after Refresh: StoredAt %v (want %v), ETag %s (want %s)", got.StoredAt, revalidated, got.ETag, stored.ETag)
	}
	clk.Advance(time.Second)
	if err := tier.Refresh([]byte("k"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := tier.Get([]byte("k")); !got.StoredAt.Equal(clk.Now()) {
		t.Errorf("Refresh(zero): StoredAt %v, want now %v", got.StoredAt, clk.Now())
	}
	checkAccounting(t, tier)
}

func TestBudgetEvictsLeastRecentlyRead(t *testing.T) {
	clk := newClock()
	const size = 1000
	entrySize := int64(1 + valueLen("image/jpeg", make([]byte, size))) // keys are one byte
	// Room for 10 entries; eviction goes down to 99%, i.e. 9 of them.
	tier := openMem(t, Config{MaxBytes: 10 * entrySize, TouchEvery: time.Second}, clk)
	for _, k := range "abcdefghij" {
		mustPut(t, tier, string(k), jpeg(size, byte(k)))
		clk.Advance(time.Second)
	}
	// Read a, c, e: they become the most recently read, in that order.
	for _, k := range "ace" {
		if _, err := tier.Get([]byte{byte(k)}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	if err := tier.sweep(); err != nil {
		t.Fatal(err)
	}
	if st := tier.Stats(); st.Evicted != 0 {
		t.Fatalf("evicted %d within budget", st.Evicted)
	}
	// Three more Puts: 13 entries, over budget by 3; down to 9 evicts 4:
	// the least recently read are b, d, f, g.
	for _, k := range "klm" {
		mustPut(t, tier, string(k), jpeg(size, byte(k)))
		clk.Advance(time.Second)
	}
	if err := tier.sweep(); err != nil {
		t.Fatal(err)
	}
	var left string
	for _, k := range "abcdefghijklm" {
		if _, err := tier.Get([]byte{byte(k)}); err == nil {
			left += string(k)
		}
	}
	if want := "acehijklm"; left != want {
		t.Errorf("after eviction %q remain, want %q", left, want)
	}
	st := tier.Stats()
	if st.Evicted != 4 || st.Bytes > tier.cfg.MaxBytes*95/100 {
		t.Errorf("Stats = %+v, want Evicted 4 and Bytes <= 95%% of %d", st, tier.cfg.MaxBytes)
	}
	checkAccounting(t, tier)
}

func TestBudgetWakesSweeper(t *testing.T) {
	swept := make(chan struct{}, 1)
	cfg := Config{fs: vfs.NewMem(), Dir: "db", MaxBytes: 50 << 10, SweepEvery: time.Hour, Logger: quiet,
		afterSweep: func() {
			select {
			case swept <- struct{}{}:
			default:
			}
		}}
	tier, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	for i := range 100 {
		mustPut(t, tier, fmt.Sprint(i), jpeg(1000, byte(i)))
	}
	// SweepEvery is an hour: only Puts going over budget wake the sweeper.
	// Each pass signals; once the pass woken by the last Put has run, the
	// tier is within budget.
	timeout := time.After(10 * time.Second)
	for tier.Stats().Bytes > cfg.MaxBytes {
		select {
		case <-swept:
		case <-timeout:
			t.Fatalf("Bytes %d still over budget %d", tier.Stats().Bytes, cfg.MaxBytes)
		}
	}
	if tier.Stats().Evicted == 0 {
		t.Error("nothing evicted")
	}
}

func TestPutTooLarge(t *testing.T) {
	tier := openMem(t, Config{MaxBytes: 1000}, newClock())
	tests := []struct {
		name string
		e    Entry
	}{
		{"over budget", jpeg(1000, 1)},
		{"content type too long", Entry{ContentType: strings.Repeat("x", maxCTLen+1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tier.Put([]byte("k"), tt.e); !errors.Is(err, ErrTooLarge) {
				t.Errorf("Put = %v, want ErrTooLarge", err)
			}
		})
	}
}

func TestRetention(t *testing.T) {
	clk := newClock()
	tier := openMem(t, Config{Retention: time.Hour}, clk) // TouchEvery 3m45s
	mustPut(t, tier, "read", jpeg(100, 1))
	mustPut(t, tier, "unread", jpeg(100, 2))
	clk.Advance(30 * time.Minute)
	if _, err := tier.Get([]byte("read")); err != nil { // touches: stale by 30m
		t.Fatal(err)
	}
	clk.Advance(45 * time.Minute) // unread: 75m since its Put; read: 45m since its Get
	if err := tier.sweep(); err != nil {
		t.Fatal(err)
	}
	if st := tier.Stats(); st.Expired != 1 || st.Entries != 1 {
		t.Fatalf("Stats = %+v, want Expired 1, Entries 1", st)
	}
	if _, err := tier.Get([]byte("unread")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(unread) = %v, want ErrNotFound", err)
	}
	if _, err := tier.Get([]byte("read")); err != nil {
		t.Errorf("Get(read) = %v", err)
	}
	checkAccounting(t, tier)
}

func TestRetentionEnforcedOnGet(t *testing.T) {
	clk := newClock()
	tier := openMem(t, Config{Retention: time.Hour}, clk)
	mustPut(t, tier, "k", jpeg(100, 1))
	clk.Advance(time.Hour) // exactly Retention: still fresh
	if _, err := tier.Get([]byte("k")); err != nil {
		t.Fatalf("Get at Retention: %v", err)
	}
	clk.Advance(time.Hour + time.Second) // the Get above touched it
	if _, err := tier.Get([]byte("k")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get past Retention = %v, want ErrNotFound", err)
	}
	if st := tier.Stats(); st.Expired != 1 || st.Entries != 0 {
		t.Errorf("Stats = %+v, want Expired 1, Entries 0", st)
	}
	checkAccounting(t, tier)
}

func TestStaleIndexKeysAreDropped(t *testing.T) {
	clk := newClock()
	tier := openMem(t, Config{Retention: time.Hour}, clk)
	mustPut(t, tier, "k", jpeg(100, 1))
	// Index keys that point at nothing, or at the wrong bucket.
	for _, ik := range [][]byte{appendAccessKey(nil, 5, []byte("gone")), appendAccessKey(nil, 6, []byte("k"))} {
		if err := tier.db.Set(ik, nil, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	// The retention sweep walks the old buckets: both keys are stale (the
	// policy knows no "gone", and holds "k" under its Put's bucket).
	if err := tier.sweep(); err != nil {
		t.Fatal(err)
	}
	if st := tier.Stats(); st.Expired != 0 || st.Entries != 1 || st.Corrupt != 0 {
		t.Errorf("Stats = %+v, want Expired 0, Entries 1", st)
	}
	if _, err := tier.Get([]byte("k")); err != nil {
		t.Errorf("Get(k) = %v", err)
	}
	checkAccounting(t, tier)
}

func TestPurgePrefix(t *testing.T) {
	clk := newClock()
	tier := openMem(t, Config{}, clk)
	keys := []string{
		"img1\x00a", "img1\x00b", "img1\x00c/d", // purged
		"img10\x00a", "img\x00a", "img1", "img2\x00a", "img1\x01a", // kept
	}
	for i, k := range keys {
		mustPut(t, tier, k, jpeg(100*(i+1), byte(i)))
		clk.Advance(time.Second)
	}
	tier.Get([]byte("img1\x00b")) // a touched entry moves in the index
	n, err := tier.PurgePrefix([]byte("img1\x00"))
	if err != nil || n != 3 {
		t.Fatalf("PurgePrefix = %d, %v; want 3", n, err)
	}
	for i, k := range keys {
		_, err := tier.Get([]byte(k))
		if gone := errors.Is(err, ErrNotFound); gone != (i < 3) {
			t.Errorf("Get(%q) = %v after purge", k, err)
		}
	}
	checkAccounting(t, tier)
	if st := tier.Stats(); st.Entries != int64(len(keys)-3) {
		t.Errorf("Entries = %d, want %d", st.Entries, len(keys)-3)
	}
	if n, err := tier.PurgePrefix([]byte("nothing\x00")); n != 0 || err != nil {
		t.Errorf("PurgePrefix(absent) = %d, %v", n, err)
	}
}

func TestPurgePrefixEdges(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		keys   []string
		want   int
	}{
		{"trailing 0xff", "a\xff", []string{"a\xff", "a\xff\xff", "a\xffb", "b", "a"}, 3},
		{"all 0xff", "\xff\xff", []string{"\xff\xff", "\xff\xff\x00", "\xff"}, 2},
		{"empty prefix purges all", "", []string{"a", "b", "\xff"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tier := openMem(t, Config{}, newClock())
			for _, k := range tt.keys {
				mustPut(t, tier, k, jpeg(10, 1))
			}
			n, err := tier.PurgePrefix([]byte(tt.prefix))
			if err != nil || n != tt.want {
				t.Fatalf("PurgePrefix = %d, %v; want %d", n, err, tt.want)
			}
			checkAccounting(t, tier)
			// The layout and counter keys are outside the entry space.
			if _, err := tier.Put([]byte("after"), jpeg(10, 1)); err != nil {
				t.Fatal(err)
			}
			checkAccounting(t, tier)
		})
	}
}

func TestPurgeAll(t *testing.T) {
	tier := openMem(t, Config{}, newClock())
	for i := range 50 {
		mustPut(t, tier, fmt.Sprint(i), jpeg(100, byte(i)))
	}
	if err := tier.PurgeAll(); err != nil {
		t.Fatal(err)
	}
	if st := tier.Stats(); st.Bytes != 0 || st.Entries != 0 {
		t.Errorf("Stats = %+v, want empty", st)
	}
	if _, err := tier.Get([]byte("1")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after PurgeAll = %v", err)
	}
	checkAccounting(t, tier)
	mustPut(t, tier, "new", jpeg(100, 1))
	checkAccounting(t, tier)
}

func TestReopenOnDisk(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	cfg := Config{Dir: dir, now: clk.Now, Logger: quiet, noSweeper: true}
	tier, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		mustPut(t, tier, fmt.Sprintf("img%d\x00tile", i%30), jpeg(1000+i, byte(i))) // overwrites too
		mustPut(t, tier, fmt.Sprintf("u%d", i), jpeg(500, byte(i)))
	}
	if _, err := tier.PurgePrefix([]byte("img7\x00")); err != nil {
		t.Fatal(err)
	}
	before := tier.Stats()
	if err := tier.Close(); err != nil {
		t.Fatal(err)
	}

	tier, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	after := tier.Stats()
	if after.Bytes != before.Bytes || after.Entries != before.Entries || after.Entries != 329 {
		t.Errorf("after reopen Bytes=%d Entries=%d, before Bytes=%d Entries=%d (want 329 entries)",
			after.Bytes, after.Entries, before.Bytes, before.Entries)
	}
	checkAccounting(t, tier.eng.Load())
	got, err := tier.Get([]byte("img3\x00tile"))
	if err != nil || !bytes.Equal(got.Body, jpeg(1000+273, 273%256).Body) {
		t.Errorf("Get after reopen: %v", err)
	}
}

func TestClosed(t *testing.T) {
	tier := openMem(t, Config{}, newClock())
	mustPut(t, tier, "k", jpeg(10, 1))
	if err := tier.Close(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"Get":         func() error { _, err := tier.Get([]byte("k")); return err },
		"Put":         func() error { _, err := tier.Put([]byte("k"), jpeg(1, 1)); return err },
		"Touch":       func() error { return tier.Touch([]byte("k")) },
		"Refresh":     func() error { return tier.Refresh([]byte("k"), time.Time{}) },
		"PurgePrefix": func() error { _, err := tier.PurgePrefix([]byte("k")); return err },
		"PurgeAll":    tier.PurgeAll,
		"Close":       tier.Close,
		"sweep":       tier.sweep,
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) && !(name == "sweep" && err == nil) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	_ = tier.Stats() // still fine
}

func TestConcurrentAccounting(t *testing.T) {
	clk := newClock()
	// A small budget so that the sweeper evicts while writers write.
	tier := openMem(t, Config{MaxBytes: 64 << 10, TouchEvery: time.Second}, clk)
	var wg sync.WaitGroup
	const workers, ops = 8, 400
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ops {
				key := []byte(fmt.Sprintf("img%d\x00%d", i%5, (i*7+w)%40))
				switch i % 10 {
				case 0:
					clk.Advance(time.Second)
				case 1:
					_ = tier.Touch(key)
				case 2:
					_ = tier.Refresh(key, time.Time{})
				case 3:
					if w == 0 {
						_, _ = tier.PurgePrefix([]byte(fmt.Sprintf("img%d\x00", i%5)))
					}
				case 4, 5, 6:
					if _, err := tier.Put(key, jpeg(500+i, byte(i))); err != nil {
						t.Error(err)
					}
				default:
					_, _ = tier.Get(key)
				}
			}
		}()
	}
	// The sweeper runs alongside the workers until they are done.
	stop, swept := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(swept)
		for {
			select {
			case <-stop:
				return
			default:
				_ = tier.sweep()
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-swept
	checkAccounting(t, tier)
	if st := tier.Stats(); st.Errors != 0 || st.Corrupt != 0 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestTouchDoesNotReviveExpired(t *testing.T) {
	clk := newClock()
	tier := openMem(t, Config{Retention: time.Hour}, clk)
	mustPut(t, tier, "k", jpeg(100, 1))
	clk.Advance(2 * time.Hour)
	if err := tier.Touch([]byte("k")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Touch(expired) = %v, want ErrNotFound", err)
	}
	if err := tier.Refresh([]byte("k"), time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Refresh(expired) = %v, want ErrNotFound", err)
	}
	if st := tier.Stats(); st.Expired != 1 || st.Entries != 0 {
		t.Errorf("Stats = %+v, want Expired 1, Entries 0", st)
	}
	checkAccounting(t, tier)
}

func TestGetAppendReadsIntoTheCallersBuffer(t *testing.T) {
	tier := openMem(t, Config{}, newClock())
	want := mustPut(t, tier, "k", jpeg(20_000, 3))
	buf := append(make([]byte, 0, 32<<10), "prefix"...)
	e, out, err := tier.GetAppend([]byte("k"), buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(out[:6]) != "prefix" || !bytes.Equal(out[6:], want.Body) || !bytes.Equal(e.Body, want.Body) {
		t.Fatal("GetAppend did not append the body after the prefix")
	}
	if &out[0] != &buf[:1][0] {
		t.Error("GetAppend reallocated a buffer that had room")
	}
	if e.ETag != want.ETag || e.ContentType != want.ContentType {
		t.Errorf("entry %+v, want %+v", e, want)
	}
	allocs := testing.AllocsPerRun(100, func() { _, _, _ = tier.GetAppend([]byte("k"), buf[:0]) })
	if allocs > 2 {
		t.Errorf("GetAppend into a big enough buffer: %.0f allocations, want at most the ETag's", allocs)
	}
	if _, out, err := tier.GetAppend([]byte("missing"), buf); !errors.Is(err, ErrNotFound) || len(out) != len(buf) {
		t.Errorf("miss: %v, %d bytes", err, len(out))
	}
}

// TestLoneWritesAreFlushed: there is no WAL, so the sweeper flushes the
// memtable every flushEvery; without it a quiet server killed after one
// write would lose it.
func TestLoneWritesAreFlushed(t *testing.T) {
	dir := t.TempDir()
	tier, err := Open(Config{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	e := jpeg(3000, 9)
	mustPut(t, tier, "lonely", e)
	inSSTable := func() bool {
		ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
		for _, l := range ssts {
			if b, err := os.ReadFile(l); err == nil && bytes.Contains(b, e.Body[:512]) {
				return true
			}
		}
		return false
	}
	for i := 0; !inSSTable(); i++ { // bounded: the flush runs every flushEvery
		if i > 100 {
			t.Fatalf("after %v no sstable holds the entry", 100*50*time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		if fi, err := os.Stat(l); err == nil && fi.Size() != 0 {
			t.Errorf("WAL file %s has %d bytes: the store runs without a WAL", l, fi.Size())
		}
	}
}

// TestVersion1ValuesStayReadable: values written before the CRC32C body
// checksum (format 1, xxhash64 body check) are still served and still checked.
func TestVersion1ValuesStayReadable(t *testing.T) {
	tier := openMem(t, Config{}, newClock())
	body := jpeg(5000, 7).Body
	v1 := func(body []byte) []byte {
		h := header{version: formatV1, hlen: headerLenV1, flags: flagLastMod, ctLen: len("image/jpeg"),
			bodyLen: len(body), lastMod: 1700000000, storedAt: 1, access: seconds(newClock().Now()), bodyHash: xxhash.Sum64(body)}
		v := make([]byte, headerLenV1+h.ctLen+len(body))
		copy(v[headerLenV1:], "image/jpeg")
		copy(v[headerLenV1+h.ctLen:], body)
		putHeader(v, &h)
		return v
	}
	for name, flip := range map[string]bool{"intact": false, "flipped body bit": true} {
		v := v1(body)
		if flip {
			v[len(v)-1] ^= 1
		}
		if err := tier.db.Set(appendEntryKey(nil, []byte(name)), v, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		e, err := tier.Get([]byte(name))
		switch {
		case flip && !errors.Is(err, ErrCorrupt):
			t.Errorf("%s: Get = %v, want ErrCorrupt", name, err)
		case !flip && (err != nil || !bytes.Equal(e.Body, body) || e.ContentType != "image/jpeg" || e.ETag != etag(xxhash.Sum64(body))):
			t.Errorf("%s: Get = %+v, %v", name, e.ContentType, err)
		}
	}
}

// TestStatsRoundTripJSON: the stats JSON that /stats serves decodes back
// (iiif-proxy stats reads it), state and faults included.
func TestStatsRoundTripJSON(t *testing.T) {
	in := Stats{Hits: 3, State: StateDegraded, FreeBytes: 42}
	in.Faults[FaultReadOnly] = 2
	in.Faults[FaultNoSpace] = 1
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Stats
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	if out != in {
		t.Errorf("round trip %s: got %+v, want %+v", b, out, in)
	}
	for st := StateOK; st <= StateOpening; st++ {
		var got State
		if text, _ := st.MarshalText(); got.UnmarshalText(text) != nil || got != st {
			t.Errorf("state %s does not round-trip", st)
		}
	}
}

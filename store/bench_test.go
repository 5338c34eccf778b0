package store

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func BenchmarkGetHit(b *testing.B) {
	for _, bc := range []struct {
		name string
		fs   func() vfs.FS
	}{
		{"mem", func() vfs.FS { return vfs.NewMem() }},
		{"disk", func() vfs.FS { return vfs.Default }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := Config{fs: bc.fs()}
			if cfg.fs == vfs.Default {
				cfg.Dir = b.TempDir()
			}
			tier := openMem(b, cfg, newClock())
			key := []byte("img1\x00512,512,512,512/512,/0/default.jpg")
			mustPut(b, tier, string(key), jpeg(20<<10, 1))
			b.SetBytes(20 << 10)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tier.Get(key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGetHitParallel(b *testing.B) {
	tier := openMem(b, Config{}, newClock())
	keys := make([][]byte, 256)
	for i := range keys {
		keys[i] = []byte("img1\x00tile" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
		mustPut(b, tier, string(keys[i]), jpeg(20<<10, byte(i)))
	}
	b.SetBytes(20 << 10)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := tier.Get(keys[i%len(keys)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkGetMiss(b *testing.B) {
	tier := openMem(b, Config{}, newClock())
	for i := range 10000 {
		mustPut(b, tier, string(binary.BigEndian.AppendUint32([]byte("img\x00"), uint32(i))), jpeg(100, 1))
	}
	key := []byte("absent\x00key")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tier.Get(key); err != ErrNotFound {
			b.Fatal(err)
		}
	}
}

func BenchmarkPut(b *testing.B) {
	for _, bc := range []struct {
		name string
		fs   func() vfs.FS
	}{
		{"mem", func() vfs.FS { return vfs.NewMem() }},
		{"disk", func() vfs.FS { return vfs.Default }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			// A budget keeps the benchmark's footprint bounded and makes it
			// measure the steady state: Puts while the sweeper evicts.
			cfg := Config{fs: bc.fs(), MaxBytes: 128 << 20}
			if cfg.fs == vfs.Default {
				cfg.Dir = b.TempDir()
			}
			clk := newClock()
			tier := openMem(b, cfg, clk)
			e := jpeg(20<<10, 1)
			key := make([]byte, 0, 64)
			b.SetBytes(20 << 10)
			b.ReportAllocs()
			i := uint32(0)
			for b.Loop() {
				key = binary.BigEndian.AppendUint32(append(key[:0], "img1\x00tile"...), i%100000)
				i++
				if _, err := tier.Put(key, e); err != nil {
					b.Fatal(err)
				}
				if i%1000 == 0 {
					clk.Advance(time.Second)
					if err := tier.sweep(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkOpen opens a closed tier of 100,000 small entries on disk: the
// counters and the access index are read (the eviction order is rebuilt),
// never the entries (TestOpenDoesNotScan counts that). About 150 ms on a
// shared two-core machine, most of it the rebuild of the policy.
func BenchmarkOpen(b *testing.B) {
	cfg := Config{Dir: b.TempDir(), Logger: quiet, noSweeper: true}
	tier, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	e := Entry{ContentType: "application/json", Body: make([]byte, 200)}
	key := make([]byte, 0, 32)
	for i := range 100_000 {
		key = binary.BigEndian.AppendUint32(append(key[:0], "img\x00"...), uint32(i))
		if _, err := tier.Put(key, e); err != nil {
			b.Fatal(err)
		}
	}
	if err := tier.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		tier, err := Open(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := tier.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

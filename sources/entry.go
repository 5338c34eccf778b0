package sources

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// entry is one object version in the source cache: a sparse file the
// object's size (name.data) and a bitmap of the blocks it holds, written
// to name.meta after the data is synced (on Close, and when the entry
// becomes whole), so a crash never leaves a bitmap that claims unwritten
// bytes.
type entry struct {
	obj      Object
	name     string // file name without extension
	dataPath string // Dir/name.data
	block    int64
	nblocks  int64
	lastUse  atomic.Int64 // Unix ns
	// The last failure of the store met reading this version, and when
	// (Unix ns): a decoder sharing a reader with others (libvips keeps
	// pyramid levels open) learns whether its failure was the store's.
	failAt  atomic.Int64
	failErr atomic.Pointer[error]

	mu       sync.Mutex // protects the rest
	f        *os.File   // name.data, read-write, open while refs > 0 (an idle entry holds no descriptor)
	have     []uint64   // bitmap of blocks held
	nhave    int64
	inflight map[int64]chan struct{} // blocks being fetched: closed when done
	refs     int                     // open Files; f is open while there are any
	gone     bool                    // evicted or replaced: files removed
	dirty    bool                    // have changed since the last persist
}

func (e *entry) bit(b int64) bool { return e.have[b/64]&(1<<(b%64)) != 0 }

func (e *entry) whole() bool { return e.nhave == e.nblocks }

// blockLen is the length of block b (the object's last one is short).
func (e *entry) blockLen(b int64) int64 {
	return min(e.block, e.obj.Size-b*e.block)
}

func entryName(o Object) string {
	k := sha256.Sum256([]byte(o.Key))
	v := sha256.Sum256([]byte(o.ETag + "\x00" + fmt.Sprint(o.Size)))
	return hex.EncodeToString(k[:12]) + "-" + hex.EncodeToString(v[:6])
}

func (s *Store) path(name, ext string) string { return filepath.Join(s.cfg.Dir, name+ext) }

// add makes obj the cached version of its identifier, replacing (and
// removing) an older one.
func (s *Store) add(obj Object) (*entry, error) {
	s.mu.Lock()
	old := s.index[obj.ID]
	if old != nil && old.obj == obj {
		s.mu.Unlock()
		return old, nil
	}
	s.mu.Unlock()
	if old != nil {
		s.drop(obj.ID, old)
	}
	e := &entry{obj: obj, name: entryName(obj), block: s.cfg.BlockSize}
	e.dataPath = s.path(e.name, ".data")
	e.nblocks = (obj.Size + e.block - 1) / e.block
	e.have = make([]uint64, (e.nblocks+63)/64)
	f, err := os.OpenFile(s.path(e.name, ".data"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	err = f.Truncate(obj.Size) // sparse: no block is written yet
	f.Close()
	if err != nil {
		return nil, err
	}
	e.lastUse.Store(s.now().UnixNano())
	s.mu.Lock()
	if cur := s.index[obj.ID]; cur != nil && cur != old {
		// Another request added a version meanwhile: keep one.
		s.mu.Unlock()
		if cur.obj == obj {
			return cur, nil
		}
		s.drop(obj.ID, cur)
		return s.add(obj)
	}
	s.index[obj.ID] = e
	s.mu.Unlock()
	return e, nil
}

// drop removes id's cached version (e, or whichever is cached when e is
// nil) and its files.
func (s *Store) drop(id string, e *entry) {
	s.mu.Lock()
	cur := s.index[id]
	if cur == nil || (e != nil && cur != e) {
		s.mu.Unlock()
		return
	}
	delete(s.index, id)
	s.mu.Unlock()
	s.remove(cur)
}

// remove deletes e's files (open Files keep reading the data) and gives
// back its bytes. e is no longer in the index.
func (s *Store) remove(e *entry) {
	e.mu.Lock()
	if e.gone {
		e.mu.Unlock()
		return
	}
	e.gone = true
	held := e.heldBytes()
	e.mu.Unlock()
	os.Remove(s.path(e.name, ".meta"))
	os.Remove(s.path(e.name, ".data"))
	s.mu.Lock()
	s.bytes -= held
	s.mu.Unlock()
	if s.cfg.OnEvict != nil {
		s.cfg.OnEvict(e.obj)
	}
}

// heldBytes is what e's blocks take. e.mu is held.
func (e *entry) heldBytes() int64 {
	n := e.nhave * e.block
	if e.nblocks > 0 && e.bit(e.nblocks-1) {
		n -= e.block - e.blockLen(e.nblocks-1)
	}
	return n
}

package sources

import (
	"encoding/json"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// meta is name.meta.
type meta struct {
	ID, Key, ETag string
	Size          int64
	ModTime       time.Time
	Block         int64
	Have          []uint64
}

// persist syncs e's data, then writes its bitmap, so the bitmap never
// claims bytes a crash lost.
func (e *entry) persist() error {
	e.mu.Lock()
	if !e.dirty || e.gone {
		e.mu.Unlock()
		return nil
	}
	m := meta{ID: e.obj.ID, Key: e.obj.Key, ETag: e.obj.ETag, Size: e.obj.Size, ModTime: e.obj.ModTime,
		Block: e.block, Have: append([]uint64(nil), e.have...)}
	e.dirty = false
	data, p := e.dataPath, strings.TrimSuffix(e.dataPath, ".data")+".meta"
	e.mu.Unlock()
	f, err := os.Open(data)
	if err != nil {
		return err
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// load indexes what an earlier run left in the directory: entries whose
// bitmap was written; anything else (a data file without one, temporaries)
// is removed.
func (s *Store) load() {
	des, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return
	}
	keep := map[string]bool{}
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), ".meta")
		if !ok {
			continue
		}
		b, err := os.ReadFile(s.path(name, ".meta"))
		var m meta
		if err != nil || json.Unmarshal(b, &m) != nil || m.Block != s.cfg.BlockSize || !ValidID(m.ID) || m.Key != s.Key(m.ID) {
			continue
		}
		obj := Object{ID: m.ID, Key: m.Key, ETag: m.ETag, Size: m.Size, ModTime: m.ModTime}
		if entryName(obj) != name {
			continue
		}
		e := &entry{obj: obj, name: name, block: m.Block, dataPath: s.path(name, ".data")}
		e.nblocks = (obj.Size + e.block - 1) / e.block
		if int64(len(m.Have)) != (e.nblocks+63)/64 {
			continue
		}
		if fi, err := os.Stat(e.dataPath); err != nil || fi.Size() != obj.Size {
			continue
		}
		e.have = m.Have
		for _, w := range m.Have {
			e.nhave += int64(bits.OnesCount64(w))
		}
		if mt, err := os.Stat(s.path(name, ".meta")); err == nil {
			e.lastUse.Store(mt.ModTime().UnixNano())
		}
		if old := s.index[m.ID]; old != nil {
			delete(keep, old.name)
		}
		s.index[m.ID] = e
		s.bytes += e.heldBytes()
		keep[name] = true
	}
	for _, de := range des {
		name := de.Name()
		if i := strings.IndexByte(name, '.'); i > 0 && keep[name[:i]] || name == "LOCK" {
			continue // a kept object's file, or the directory's lock (internal/dirlock)
		}
		os.Remove(filepath.Join(s.cfg.Dir, name))
	}
	s.evict(nil)
}

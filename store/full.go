package store

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// What a Tier does when the file system stays full whatever eviction does:
// the garbage of every tier goes first, then the tier's own contents. A
// trial on an 8 MB tmpfs found the cache wedged there: an abandoned
// database's moved-aside directory (7 MB) that only its own tier would
// delete, and, after a restart on a disk the cache itself had filled, four
// tiers refusing to open (free space between the reserve and twice the
// reserve) while none was below the reserve, where the emergency drop
// fires.

// maxAbandoned bounds the databases a tier abandons (see pebbleLogger):
// each keeps its goroutines, memtable, block cache and open files until
// the process exits. A tier that has abandoned this many stops opening
// until a restart: its directory fails fatally again and again, which is a
// failing disk, not a full one.
const maxAbandoned = 2

// asideKinds are the kinds of moved-aside directories ("<dir>.<kind>-<time>").
var asideKinds = []string{".corrupt-", ".failed-"}

// isAside reports whether name is a moved-aside directory of some tier:
// "<tier>.<kind>-<time>" with moveAside's time layout.
func isAside(name string) bool {
	for _, k := range asideKinds {
		if i := strings.Index(name, k); i > 0 {
			_, err := time.Parse("20060102T150405.000", name[i+len(k):])
			return err == nil
		}
	}
	return false
}

// removeAllAside deletes the moved-aside directories of every tier beside
// this one (the tiers of one server share CacheDir): they are garbage by
// definition, and when space is short the tier that moved one aside may be
// open and content, never looking for them. A database abandoned in one
// may still hold its files open, and deleting an open file frees nothing,
// so each file is truncated first (truncate works on the inode the open
// descriptors share); files already deleted but held open by this process
// are truncated through /proc/self/fd.
func (t *Tier) removeAllAside() {
	parent := filepath.Dir(t.cfg.Dir)
	names, err := t.cfg.fs.List(parent)
	if err != nil {
		return
	}
	onDefault := isOnDefault(t.cfg.fs)
	for _, n := range names {
		if !isAside(n) {
			continue
		}
		p := t.cfg.fs.PathJoin(parent, n)
		if onDefault {
			truncateTree(p)
		}
		_ = t.cfg.fs.RemoveAll(p)
	}
	if onDefault {
		truncateDeletedUnder(parent)
	}
}

// truncateTree truncates every regular file under dir to zero bytes.
func truncateTree(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			_ = os.Truncate(p, 0)
		}
		return nil
	})
}

// truncateDeletedUnder truncates the files this process holds open that
// were deleted from a moved-aside directory under parent (an abandoned
// database's, removed before this fix truncated first, or deleted by
// Pebble while a reader held them): their space comes back now rather than
// when the process exits.
func truncateDeletedUnder(parent string) {
	const fdDir = "/proc/self/fd"
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		link := filepath.Join(fdDir, e.Name())
		target, err := os.Readlink(link)
		if err != nil || !strings.HasSuffix(target, " (deleted)") {
			continue
		}
		target = strings.TrimSuffix(target, " (deleted)")
		rel, err := filepath.Rel(parent, target)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		if top, _, _ := strings.Cut(rel, string(filepath.Separator)); !isAside(top) {
			continue
		}
		_ = os.Truncate(link, 0) // the magic link reaches the deleted inode
	}
}

// lowAtOpen is emergency's rule for a tier that cannot open: the file
// system has stayed below twice the reserve (the least open asks for) for
// emergencyAfter while the tier's own directory holds data. Then that data
// is what fills the disk (a cache that filled it before a restart, with
// every tier between the reserve and twice the reserve, so that no
// emergency fires and nothing opens to evict): it is dropped, and the tier
// opens empty.
func (t *Tier) lowAtOpen(free int64) bool {
	if free < 0 || free >= 2*t.reserve() || !t.holdsData() {
		t.openLowSince = time.Time{}
		return false
	}
	if t.openLowSince.IsZero() {
		t.openLowSince = time.Now()
		return false
	}
	if time.Since(t.openLowSince) < emergencyAfter {
		return false
	}
	t.openLowSince = time.Time{}
	return true
}

// dataBytes is the size of the tier's tables.
func (t *Tier) dataBytes() int64 {
	names, err := t.cfg.fs.List(t.cfg.Dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, name := range names {
		if strings.HasSuffix(name, ".sst") || strings.HasSuffix(name, ".blob") {
			if fi, err := t.cfg.fs.Stat(t.cfg.fs.PathJoin(t.cfg.Dir, name)); err == nil {
				n += fi.Size()
			}
		}
	}
	return n
}

// holdsData reports whether the tier's directory holds tables.
func (t *Tier) holdsData() bool {
	names, err := t.cfg.fs.List(t.cfg.Dir)
	if err != nil {
		return false
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".sst") || strings.HasSuffix(n, ".blob") {
			return true
		}
	}
	return false
}

// openPanicked handles an open that panicked inside Pebble (openPebble):
// the directory is dropped, as a cache may, so the next open starts empty
// and cannot meet the same tables again.
func (t *Tier) openPanicked(err error) bool {
	var pe *openPanicError
	if !errors.As(err, &pe) {
		return false
	}
	t.log.Error("store: Pebble panicked cleaning up a failed open; recovered, dropping this tier's contents", "err", err)
	t.truncateOwn()
	if rerr := t.cfg.fs.RemoveAll(t.cfg.Dir); rerr != nil && t.allowLog("drop") {
		t.log.Warn("store: dropping the tier's contents failed (logged at most once a minute)", "err", rerr)
	}
	return true
}

// truncateOwn truncates the tier's own files before they are deleted, for
// the same reason as removeAllAside: a panicked open leaks open files.
func (t *Tier) truncateOwn() {
	if isOnDefault(t.cfg.fs) {
		truncateTree(t.cfg.Dir)
	}
}

// tooManyAbandoned reports (and logs once) a tier that has abandoned
// maxAbandoned databases: it stays out of service until a restart.
func (t *Tier) tooManyAbandoned() bool {
	n := t.abandoned.Load()
	if n < maxAbandoned {
		return false
	}
	t.setOut(StateDegraded, "abandoned "+strconv.Itoa(int(n))+" databases after fatal Pebble errors: the disk is failing; restart to try again")
	if t.allowLog("abandoned") {
		t.log.Error("store: this tier abandoned too many databases after fatal errors; serving uncached until a restart",
			"abandoned", n)
	}
	return true
}

// unflushed is, per directory holding tiers (a server's CacheDir), what
// its tiers have admitted into their memtables since their last flush:
// room their flushes will take on the file system they share. Puts are
// admitted against the free space minus this, not against the free space
// alone: the trial's thumbnail tier (PNGs of 300 KB to 1 MB, 600 KB free,
// MinFree 420 KB) admitted a megabyte into its memtable, whose flush then
// met ENOSPC, took the tier out of service and lost the memtable, every 5 s.
var unflushed sync.Map // filepath.Dir(Config.Dir) → *atomic.Int64

// unflushedFor returns the unflushed count of the tiers beside t.
func (t *Tier) unflushedFor() *atomic.Int64 {
	parent := filepath.Dir(t.cfg.Dir)
	if v, ok := unflushed.Load(parent); ok {
		return v.(*atomic.Int64)
	}
	v, _ := unflushed.LoadOrStore(parent, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// roomFor admits n bytes into the memtable if the file system keeps
// MinFree once everything admitted is flushed; an entry refused here is
// served uncached, as below MinFree.
func (h *hooks) roomFor(n int64) bool {
	if h == nil || h.t == nil {
		return true
	}
	free := h.t.free.Load()
	if free < 0 {
		return true
	}
	all := h.t.unflushedFor()
	if free-all.Load()-n < h.t.minFree.Load() {
		if free-n < h.t.minFree.Load() {
			h.t.wantRoom(n) // not a matter of waiting for flushes
		}
		return false
	}
	h.pending.Add(n)
	all.Add(n)
	return true
}

// flushed: the memtable reached the disk (or was dropped with its
// database). What it took is in the next statfs, read now so that the
// admitted bytes are not counted twice nor forgotten meanwhile.
func (h *hooks) flushed() {
	if h == nil || h.t == nil {
		return
	}
	h.t.unflushedFor().Add(-h.pending.Swap(0))
	h.t.statfs()
}

// wantRoom records that a Put of n bytes found the file system too full
// even with every memtable flushed: the supervisor then treats the tier as
// below MinFree by n (checkSpace) and evicts for it (shed), so that a
// cache on a disk smaller than its budget keeps storing new entries in
// place of old ones, as it does when its flushes take it below MinFree.
// Entries larger than an eighth of the file system are not worth evicting
// for: they are served uncached.
func (t *Tier) wantRoom(n int64) {
	if n > t.total.Load()/8 {
		return
	}
	for {
		old := t.want.Load()
		if n <= old || t.want.CompareAndSwap(old, n) {
			break
		}
	}
	t.kick()
}

// churnDrop is how many databases in a row may be retired for lack of
// space soon after opening before the tier drops its contents.
const churnDrop = 3

// noSpaceChurn reports, for a database just retired by fault f, quick when
// it had not been open for stableAfter, whether the tier keeps failing for
// lack of space with its own data in the way: Pebble's compactions of what
// it holds need more room than the file system has (a compaction writes
// its outputs before deleting its inputs), fail with ENOSPC at every open,
// and eviction never gets to run. Then the data goes, as in an emergency.
func (t *Tier) noSpaceChurn(f Fault, quick bool) bool {
	if f != FaultNoSpace || !quick {
		t.churn = 0
		return false
	}
	t.churn++
	if t.churn < churnDrop {
		return false
	}
	if free := t.statfs(); free >= 0 && free >= t.dataBytes() {
		return false // room to compact it all: the space went elsewhere
	}
	t.churn = 0
	return true
}

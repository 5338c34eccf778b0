package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sys/unix"
)

// Fault is a kind of cache-directory fault.
type Fault uint8

// Fault kinds, as Stats.Faults and the metrics count them.
const (
	FaultNone     Fault = iota
	FaultNoSpace        // ENOSPC, EDQUOT, or below the free-space reserve
	FaultReadOnly       // EROFS, EACCES, EPERM: a read-only mount or lost permissions
	FaultIO             // EIO and every other error (a deleted directory: ENOENT)
	FaultCorrupt        // a checksum failed in Pebble, or the layout is not ours
	FaultLocked         // another process holds the directory's lock
	NumFaults           // the number of kinds
)

var faultNames = [NumFaults]string{"none", "nospace", "readonly", "io", "corrupt", "locked"}

func (f Fault) String() string {
	if f < NumFaults {
		return faultNames[f]
	}
	return "unknown"
}

// classify says what kind of fault err is.
func classify(err error) Fault {
	switch {
	case err == nil:
		return FaultNone
	case err != nil && pebble.IsCorruptionError(err), errors.Is(err, errLayout):
		return FaultCorrupt
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return FaultNoSpace
	case errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return FaultReadOnly
	}
	return FaultIO
}

// openFault says what kind of fault an error of pebble.Open is: an error
// that carries no errno (a WAL or MANIFEST Pebble cannot parse, a missing
// file it expected) means the store cannot be read, as corrupt.
func openFault(err error) Fault {
	var errno syscall.Errno
	var le *lockedError
	var pe *openPanicError
	switch {
	case errors.As(err, &le):
		return FaultLocked
	case errors.As(err, &pe):
		return FaultIO // not the files' fault: Tier.open drops them (full.go)
	case errors.As(err, &errno):
		return classify(err)
	}
	return FaultCorrupt
}

// errRefused is what faultFS returns instead of creating a data file while
// the file system is below the reserve: Pebble's flush or compaction then
// fails cleanly, before it has written anything.
var errRefused = fmt.Errorf("store: cache file system below its free-space reserve: %w", syscall.ENOSPC)

// faultFS is the vfs.FS a tier's Pebble runs on. It sees every file error
// before Pebble does and reports it to the engine's hooks, which flips the
// tier out of service before Pebble can go further; it refuses to create
// sstables and blob files while the file system is below the reserve, so
// Pebble never writes data into a full disk; it counts bytes written so the
// Tier re-reads the free space after every few megabytes; and it takes the
// directory's lock itself (see Lock).
//
// Below it sits vfs.OnDiskFull, which on ENOSPC releases the tier's reserve
// file and retries the write once, so that a MANIFEST write already under
// way (whose failure is fatal to Pebble) finishes.
type faultFS struct {
	vfs.FS
	h *hooks

	lockMu sync.Mutex
	lock   io.Closer // the directory's lock, for releaseLock
}

// releaseLock releases the directory's lock when Pebble cannot: after a
// pebble.Open that panicked (openPebble). Closing it twice is harmless.
func (fs *faultFS) releaseLock() {
	fs.lockMu.Lock()
	defer fs.lockMu.Unlock()
	if fs.lock != nil {
		_ = fs.lock.Close()
		fs.lock = nil
	}
}

// held records the lock Lock hands to Pebble.
func (fs *faultFS) held(c io.Closer, err error) (io.Closer, error) {
	if err == nil {
		fs.lockMu.Lock()
		fs.lock = c
		fs.lockMu.Unlock()
	}
	return c, err
}

// isDataFile reports whether name is a file whose creation may be refused:
// sstables and blob files. MANIFEST, OPTIONS and marker files never are:
// refusing them is fatal to Pebble, and they are small. Nor is the WAL
// (".log"): without a WAL (DisableWAL) the only one is the empty file
// pebble.Open creates after it has started its compaction scheduler, and
// refusing it failed the open with a compaction running, whose clean-up
// panicked ("element has outstanding references", then "io.Closer is nil"
// in the compaction's goroutine): the crash of the 8 MB tmpfs trial.
func isDataFile(name string) bool {
	return strings.HasSuffix(name, ".sst") || strings.HasSuffix(name, ".blob")
}

func (fs *faultFS) seen(err error) error {
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		fs.h.fault(classify(err), err)
	}
	return err
}

func (fs *faultFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if isDataFile(name) && !fs.h.canFlush() {
		return nil, &os.PathError{Op: "create", Path: name, Err: errRefused}
	}
	f, err := fs.FS.Create(name, c)
	if err != nil {
		// A missing directory is a fault here: it was deleted under us.
		fs.h.fault(classify(err), err)
		return nil, err
	}
	return &faultFile{File: f, fs: fs}, nil
}

func (fs *faultFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	if err != nil {
		return nil, fs.seen(err)
	}
	return &faultFile{File: f, fs: fs}, nil
}

func (fs *faultFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	if err != nil {
		return nil, fs.seen(err)
	}
	return &faultFile{File: f, fs: fs}, nil
}

func (fs *faultFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.Open(name, opts...)
	if err != nil {
		return nil, err // absent files are normal; EIO shows on reads
	}
	return &faultFile{File: f, fs: fs}, nil
}

func (fs *faultFS) Link(o, n string) error   { return fs.seen(fs.FS.Link(o, n)) }
func (fs *faultFS) Rename(o, n string) error { return fs.seen(fs.FS.Rename(o, n)) }

// Remove is not a fault when it fails: Pebble only logs failed deletions of
// obsolete files, and a read-only directory is reported by the next write.
func (fs *faultFS) Remove(name string) error { return fs.FS.Remove(name) }

// Lock takes the directory's lock with fcntl, as vfs.Default does, but
// without vfs.Default's process-wide table of locked paths: a tier that
// abandons a database (see pebbleLogger) moves its directory aside and
// opens a fresh one at the same path, and that table would still call the
// path locked. The Tier keeps its own table (lockedDirs), released when a
// database is closed or abandoned. On EAGAIN the error names the lock file
// and, from the PID file the holder wrote beside it, its process.
func (fs *faultFS) Lock(name string) (io.Closer, error) {
	if fs.FS != vfs.Default && !isOnDefault(fs.FS) {
		return fs.held(fs.FS.Lock(name)) // MemFS and test file systems
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fs.seen(err)
	}
	spec := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &spec); err != nil {
		f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, &lockedError{lock: name, holder: readHolder(name)}
		}
		return nil, fs.seen(err)
	}
	return fs.held(f, nil)
}

// isOnDefault reports whether fs is vfs.Default under OnDiskFull.
func isOnDefault(fs vfs.FS) bool {
	for fs != nil {
		if fs == vfs.Default {
			return true
		}
		fs = fs.Unwrap()
	}
	return false
}

// lockedError is the error of a tier whose directory another process holds.
type lockedError struct {
	lock   string
	holder string // "PID 1234 (from …/LOCK.pid)", or why it is unknown
}

func (e *lockedError) Error() string {
	return fmt.Sprintf("store: %s is locked by another process (%s); this tier serves uncached and retries until that process exits",
		e.lock, e.holder)
}

// pidFile is the name of the file beside Pebble's LOCK that names its holder.
const pidFile = "LOCK.pid"

// readHolder describes the process that wrote the PID file beside lock.
func readHolder(lock string) string {
	p := filepath.Join(filepath.Dir(lock), pidFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return "holder unknown: no " + p
	}
	return fmt.Sprintf("PID %s, from %s", strings.TrimSpace(string(b)), p)
}

// faultFile reports the errors of one file's writes, syncs and reads.
type faultFile struct {
	vfs.File
	fs *faultFS
}

func (f *faultFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.fs.h.wrote(n)
	return n, f.fs.seen(err)
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	f.fs.h.wrote(n)
	return n, f.fs.seen(err)
}

func (f *faultFile) Sync() error     { return f.fs.seen(f.File.Sync()) }
func (f *faultFile) SyncData() error { return f.fs.seen(f.File.SyncData()) }
func (f *faultFile) SyncTo(n int64) (bool, error) {
	full, err := f.File.SyncTo(n)
	return full, f.fs.seen(err)
}
func (f *faultFile) Preallocate(off, n int64) error { return f.fs.seen(f.File.Preallocate(off, n)) }

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	if err != nil && errors.Is(err, syscall.EIO) {
		f.fs.h.fault(FaultIO, err)
	}
	return n, err
}

// lockedDirs is the process's table of tier directories in use, so that two
// Tiers in one process cannot share one (fcntl locks do not exclude the
// process that holds them).
var lockedDirs struct {
	sync.Mutex
	m map[string]bool
}

func lockDir(dir string) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	lockedDirs.Lock()
	defer lockedDirs.Unlock()
	if lockedDirs.m == nil {
		lockedDirs.m = map[string]bool{}
	}
	if lockedDirs.m[abs] {
		return false
	}
	lockedDirs.m[abs] = true
	return true
}

func unlockDir(dir string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	lockedDirs.Lock()
	defer lockedDirs.Unlock()
	delete(lockedDirs.m, abs)
}

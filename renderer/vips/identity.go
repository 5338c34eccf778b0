package vips

import (
	"io/fs"
	"strconv"
	"syscall"
	"time"
)

// Identity is what tells one version of a source file from another: its
// inode (and device), size, modification time in nanoseconds and change time
// (ctime) in nanoseconds. It is the one value every part compares to decide
// whether a file changed: the renderer's header and open-handle caches, and
// the proxy's revalidation of cached derivatives (through String, stored
// with every cache entry).
//
// The modification time alone misses replaced files: cp -p, rsync -a and tar x
// restore it, and a rewrite within the same second (or within the
// filesystem's timestamp granularity) keeps it. The change time cannot be set
// from user space and moves on every write, rename over, chmod or utimes, so
// a replacement is caught even when size and mtime are preserved; a new inode
// catches a file renamed into place. It also moves on chmod, chown and new
// hard links: such a file is re-rendered once, needlessly but harmlessly.
//
// An S3 object's identity is its ETag and size (ETag set, the file fields
// zero): an overwritten object gets a new ETag.
type Identity struct {
	Dev, Ino uint64
	Size     int64
	ModNs    int64 // modification time, Unix nanoseconds
	ChangeNs int64 // change time (ctime), Unix nanoseconds; 0 where the OS does not say
	ETag     string
}

// IdentityOf computes the identity of a file from its FileInfo (from Stat on
// an open file, so it describes the bytes that will be read).
func IdentityOf(fi fs.FileInfo) Identity {
	id := Identity{Size: fi.Size(), ModNs: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.Dev, id.Ino = uint64(st.Dev), st.Ino
		id.ChangeNs = time.Unix(st.Ctim.Unix()).UnixNano()
	}
	return id
}

// String is the identity in a compact, stable form for storing with cache
// entries and comparing later: "v1:ino:size:mtime:ctime" in hexadecimal. It
// leaves out the device number: NFS and device-mapper number devices anew
// when they are mounted, which would make every stored entry look changed
// after a remount, and the identifier stored beside it already names the
// file. (In memory, the device stays part of the identity.) The leading
// version lets the form change without an old value ever comparing equal to
// a new one.
//
// An S3 object's is "s3:size:etag".
func (id Identity) String() string {
	if id.ETag != "" {
		return "s3:" + strconv.FormatInt(id.Size, 16) + ":" + id.ETag
	}
	b := make([]byte, 0, 64)
	b = append(b, "v1:"...)
	b = strconv.AppendUint(b, id.Ino, 16)
	b = append(b, ':')
	b = strconv.AppendInt(b, id.Size, 16)
	b = append(b, ':')
	b = strconv.AppendInt(b, id.ModNs, 16)
	b = append(b, ':')
	b = strconv.AppendInt(b, id.ChangeNs, 16)
	return string(b)
}

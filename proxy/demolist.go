package proxy

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// The demo page's directory listing: one directory level at a time, read
// lazily as the page opens folders, so a tree of a million images is never
// walked for one request. A directory is read up to demoScanMax entries
// (in the file system's order, then sorted): past that the listing says it
// is truncated instead of reading on, which bounds each request's memory
// and time whatever the directory holds.

const (
	demoScanMax      = 10000 // entries read from one directory per request
	demoPageDefault  = 100   // entries per page when the page does not say
	demoPageMax      = 1000
	demoReadDirChunk = 256
)

// demoEntry is one entry of a listing: an image file or a subdirectory.
type demoEntry struct {
	Name string `json:"name"`
	ID   string `json:"id"`            // the identifier (the path under TilePath), or the directory's path
	Dir  bool   `json:"dir,omitempty"` // a subdirectory, listed with ?dir=ID
}

// demoListing is the answer to GET /demo/api/ids.
type demoListing struct {
	Dir       string      `json:"dir"`
	Entries   []demoEntry `json:"entries"`
	Offset    int         `json:"offset"`
	Total     int         `json:"total"`     // entries read (images and directories)
	Truncated bool        `json:"truncated"` // the directory has more than demoScanMax entries
}

// demoImageExts are the extensions listed as images. The renderer sniffs
// content, not names; the listing goes by name so that it never opens a
// file.
var demoImageExts = []string{".jpg", ".jpeg", ".tif", ".tiff", ".png", ".webp", ".gif", ".jp2", ".j2k", ".jpx", ".jpf"}

var (
	errDemoDir    = errors.New("no such directory")
	errDemoDirBad = errors.New(`not a path under TilePath: use "/"-separated names, no "..", no leading "/"`)
)

// listDir lists directory dir (slash-separated, relative; "" is the root)
// under root: subdirectories and image files, hidden ones left out, those
// protected skipped, sorted by name, at most demoScanMax entries read.
// Nothing outside root is reached: os.Root refuses ".." and symlinks that
// lead out.
func listDir(root, dir string, protected func(string) bool) (entries []demoEntry, truncated bool, err error) {
	if dir == "" {
		dir = "."
	}
	if !fs.ValidPath(dir) {
		return nil, false, errDemoDirBad
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, false, errDemoDir
	}
	defer r.Close()
	f, err := r.Open(dir)
	if err != nil {
		return nil, false, errDemoDir
	}
	defer f.Close()
	read := 0
	for read < demoScanMax {
		des, err := f.ReadDir(min(demoReadDirChunk, demoScanMax-read))
		read += len(des)
		for _, de := range des {
			if e, ok := demoEntryOf(r, dir, de, protected); ok {
				entries = append(entries, e)
			}
		}
		if err != nil && !errors.Is(err, io.EOF) && read == 0 {
			return nil, false, errDemoDir // not a directory
		}
		if err != nil || len(des) == 0 {
			break
		}
	}
	if read >= demoScanMax {
		more, _ := f.ReadDir(1)
		truncated = len(more) > 0
	}
	slices.SortFunc(entries, func(a, b demoEntry) int { return strings.Compare(a.Name, b.Name) })
	return entries, truncated, nil
}

// demoEntryOf describes de, found in dir, or returns false to leave it out.
func demoEntryOf(r *os.Root, dir string, de fs.DirEntry, protected func(string) bool) (demoEntry, bool) {
	name := de.Name()
	if strings.HasPrefix(name, ".") {
		return demoEntry{}, false
	}
	id := path.Join(dir, name)
	isDir := de.IsDir()
	if de.Type()&fs.ModeSymlink != 0 {
		// Followed only within the root: one that leads out fails here
		// (and would be 404 to the renderer too).
		fi, err := r.Stat(id)
		if err != nil {
			return demoEntry{}, false
		}
		isDir = fi.IsDir()
	} else if !isDir && !de.Type().IsRegular() {
		return demoEntry{}, false
	}
	if isDir {
		return demoEntry{Name: name, ID: id, Dir: true}, !protected(id + "/")
	}
	if !slices.Contains(demoImageExts, strings.ToLower(path.Ext(name))) || protected(id) {
		return demoEntry{}, false
	}
	return demoEntry{Name: name, ID: id}, true
}

package vips

// #include <stdlib.h>
// #include "shim.h"
import "C"

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// A pyramid is built in a child process: the running binary itself
// (/proc/self/exe), started with builderEnv set, which MaybeBuildPyramid
// turns into one build. Three reasons, each found the hard way or by
// measurement:
//   - libvips 8.14's tiffsave crashes (a call through a NULL seek function
//     in TIFFClose) when the pipeline it writes fails: a truncated source, a
//     full disk, a kill. In process that would take the server down; in a
//     child it is one failed build, counted and retried later.
//   - Priority: the child runs at nice 19, so the scheduler gives
//     interactive renders the CPU first whatever libvips' thread pool does
//     (a build's libvips threads cannot be told apart from a render's in
//     process).
//   - Cancelling is SIGKILL, and a build's memory goes back to the kernel
//     when it exits.
//
// The source is handed over as an open file (fd 3), the one the parent
// checked, so the bytes built are the bytes whose identity was verified.
// The child reports its progress on a pipe (fd 4): a line per percentage
// of the full-resolution pass, from libvips' eval signal, which the parent
// shows in the stats and metrics.
const builderEnv = "IIIF_PROXY_PYRAMID_BUILD"

// builderParentEnv carries the server's PID to the child, which exits at
// once if its parent is already another process.
const builderParentEnv = "IIIF_PROXY_PYRAMID_PARENT"

// builderNice is the child's nice value: the lowest priority.
const builderNice = 19

// builderTimeout bounds one build: a 1-gigapixel PNG at nice 19 on a busy
// machine takes minutes, not an hour.
const builderTimeout = time.Hour

// MaybeBuildPyramid runs a pyramid build and exits when this process was
// started as a pyramid builder (see builder.go); otherwise it returns at
// once. Call it first thing in main (and in TestMain of packages whose tests
// build pyramids), before libvips is started.
func MaybeBuildPyramid() {
	spec := os.Getenv(builderEnv)
	if spec == "" {
		return
	}
	// The parent died before the death signal was armed (runBuilder):
	// nobody would read the pyramid.
	if ppid := os.Getenv(builderParentEnv); ppid != strconv.Itoa(os.Getppid()) {
		fmt.Fprintln(os.Stderr, "pyramid builder: the server that started it is gone")
		os.Exit(1)
	}
	if err := buildChild(spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// buildChild does the build: spec is
// "page,subifd,strict,quality,tile,progressfd,out" (progressfd -1: none).
func buildChild(spec string) error {
	parts := strings.SplitN(spec, ",", 7)
	if len(parts) != 7 {
		return fmt.Errorf("pyramid builder: bad %s %q", builderEnv, spec)
	}
	var n [6]int
	for i := range n {
		v, err := strconv.Atoi(parts[i])
		if err != nil {
			return fmt.Errorf("pyramid builder: bad %s %q", builderEnv, spec)
		}
		n[i] = v
	}
	// libvips directly, not through govips: govips routes libvips'
	// messages to a Go callback, and a message from a libvips worker
	// thread during the build deadlocked the child (seen on a
	// 236-megapixel JPEG).
	argv0 := C.CString("iiif-proxy-pyramid")
	defer C.free(unsafe.Pointer(argv0))
	if C.iiif_builder_init(argv0) != 0 {
		return errors.New("pyramid builder: libvips did not start")
	}
	restrictLoaders()
	cin, cout := C.CString("/proc/self/fd/3"), C.CString(parts[6])
	defer C.free(unsafe.Pointer(cin))
	defer C.free(unsafe.Pointer(cout))
	var cerr *C.char
	if C.iiif_build_pyramid(cin, C.int(n[0]), C.int(n[1]), C.int(n[2]), cout, C.int(n[3]), C.int(n[4]), C.int(n[5]), nil, &cerr) != 0 {
		msg := strings.TrimSpace(C.GoString(cerr))
		C.iiif_free(unsafe.Pointer(cerr))
		return errors.New(strings.ReplaceAll(msg, "/proc/self/fd/3", "the source"))
	}
	return syncFile(parts[6])
}

// runBuilder builds src's pyramid, read from f, into out in a child process,
// killed when the renderer closes or builderTimeout passes. progress is
// called with each percentage the child reports, from another goroutine.
func (p *pyramids) runBuilder(f *os.File, src *source, out string, progress func(percent int)) error {
	lv := src.Levels[0]
	strict := 0
	if src.Format == "jpegload" {
		strict = 1
	}
	exe := p.v.cfg.PyramidBuilder
	if exe == "" {
		exe = "/proc/self/exe"
	}
	// libvips keeps the lower levels in temporary files until it writes
	// them out: in a directory of the build's own, on the pyramids' file
	// system, removed whatever becomes of the child.
	tmpdir := out + "dir"
	if err := os.Mkdir(tmpdir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	defer os.RemoveAll(tmpdir)
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pr.Close()
	cmd := exec.CommandContext(p.ctx, exe)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmpdir,
		fmt.Sprintf("%s=%d,%d,%d,%d,%d,4,%s", builderEnv, lv.page, lv.subifd, strict, p.v.cfg.JPGQuality, pyramidTile, out),
		fmt.Sprintf("%s=%d", builderParentEnv, os.Getpid()))
	// A server killed (SIGKILL, the OOM killer) takes its build with it:
	// otherwise the child, re-parented to init, went on for minutes at nice
	// 19 with a deleted file open. The death signal follows the thread that
	// forked the child, so this goroutine keeps its thread until Wait.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd.ExtraFiles = []*os.File{f, pw} // fd 3, fd 4
	var stderr bytes.Buffer
	cmd.Stderr = &limited{&stderr, 4 << 10}
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Start()
	pw.Close() // the child's copy stays open: EOF when it exits
	if err != nil {
		return fmt.Errorf("starting the pyramid builder: %w", err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		readProgress(pr, progress)
	}()
	defer func() { <-read }() // no progress reported after the build ends
	syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, builderNice)
	timer := time.AfterFunc(builderTimeout, func() { cmd.Process.Kill() })
	defer timer.Stop()
	if err := cmd.Wait(); err != nil {
		// The first line says what failed (a libvips message, or the
		// signal of a crash); the rest is a Go crash dump.
		msg, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
		if msg == "" {
			msg = err.Error()
		} else {
			msg += " (" + err.Error() + ")"
		}
		return errors.New(msg)
	}
	return nil
}

// readProgress calls progress with each line of r that is a percentage,
// until r ends. Anything else is ignored: progress is only shown.
func readProgress(r io.Reader, progress func(int)) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if pc, err := strconv.Atoi(sc.Text()); err == nil && pc >= 0 && pc <= 100 {
			progress(pc)
		}
	}
}

// limited keeps the first n bytes written to it.
type limited struct {
	b *bytes.Buffer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

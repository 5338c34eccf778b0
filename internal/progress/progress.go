// Package progress prints how far a batch of known size has got, for the
// operator tools (iiif-proxy check, warm): on a terminal, one bar rewritten
// in place a few times a second; otherwise (a log file, a pipe, CI) one
// plain line every interval, so a long run leaves a readable trace rather
// than a megabyte of carriage returns.
//
//	check [=========>          ]  120/250  48%  35.1/s  ETA 4s  2 failed
//
// The rate and the ETA come from the items done since the start; the ETA is
// unknown ("ETA ?") until the first item is done.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Bar counts a batch's items and prints its progress.
type Bar struct {
	w     io.Writer
	label string
	total int64
	tty   bool
	every time.Duration
	now   func() time.Time
	start time.Time

	done, failed atomic.Int64

	mu      sync.Mutex // protects writes to w and stopped
	stopped bool
}

// Options configure a Bar. The zero value detects the terminal and prints
// plain lines every 10 s.
type Options struct {
	// TTY forces the in-place bar (true) or plain lines (false); nil
	// detects a terminal on the writer.
	TTY *bool
	// Every is the interval of plain lines. Zero means 10 s; a terminal's
	// bar is redrawn every 200 ms whatever it says.
	Every time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// New returns a bar for total items, labelled label, printing to w.
func New(w io.Writer, label string, total int, o Options) *Bar {
	b := &Bar{w: w, label: label, total: int64(total), every: o.Every, now: o.Now}
	if b.now == nil {
		b.now = time.Now
	}
	if b.every <= 0 {
		b.every = 10 * time.Second
	}
	if o.TTY != nil {
		b.tty = *o.TTY
	} else {
		b.tty = IsTerminal(w)
	}
	if b.tty {
		b.every = 200 * time.Millisecond
	}
	b.start = b.now()
	return b
}

// IsTerminal reports whether w is a terminal (not merely a character
// device: /dev/null is one too).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Done counts one item finished, failed or not.
func (b *Bar) Done(failed bool) {
	b.done.Add(1)
	if failed {
		b.failed.Add(1)
	}
}

// Line is the progress now, without a line end.
func (b *Bar) Line() string {
	done, failed := b.done.Load(), b.failed.Load()
	elapsed := b.now().Sub(b.start)
	var sb strings.Builder
	sb.WriteString(b.label)
	pct := 100.0
	if b.total > 0 {
		pct = 100 * float64(done) / float64(b.total)
	}
	if b.tty {
		const width = 24
		n := int(pct / 100 * width)
		sb.WriteString(" [")
		sb.WriteString(strings.Repeat("=", n))
		if n < width {
			sb.WriteByte('>')
			sb.WriteString(strings.Repeat(" ", width-n-1))
		}
		sb.WriteByte(']')
	}
	fmt.Fprintf(&sb, " %d/%d %3.0f%%", done, b.total, pct)
	if elapsed > 0 && done > 0 {
		rate := float64(done) / elapsed.Seconds()
		fmt.Fprintf(&sb, " %.1f/s", rate)
		if left := b.total - done; left > 0 {
			eta := time.Duration(float64(left) / rate * float64(time.Second))
			fmt.Fprintf(&sb, " ETA %s", round(eta))
		} else {
			fmt.Fprintf(&sb, " in %s", round(elapsed))
		}
	} else if done < b.total {
		sb.WriteString(" ETA ?")
	}
	if failed > 0 {
		fmt.Fprintf(&sb, " %d failed", failed)
	}
	return sb.String()
}

// round keeps a duration readable: whole seconds, tenths below 10 s,
// milliseconds below 1 s.
func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// print writes the line now.
func (b *Bar) print() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return
	}
	if b.tty {
		fmt.Fprintf(b.w, "\r%s\x1b[K", b.Line()) // rewrite the line, erase what the last one left
		return
	}
	fmt.Fprintln(b.w, b.Line())
}

// Run prints the progress every interval until stop is called; stop prints
// the final line (and ends the terminal's line) and returns when the
// printing goroutine has ended.
func (b *Bar) Run() (stop func()) {
	quit, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(b.every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.print()
			case <-quit:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-ended
			b.print()
			b.mu.Lock()
			if b.tty {
				fmt.Fprintln(b.w)
			}
			b.stopped = true
			b.mu.Unlock()
		})
	}
}

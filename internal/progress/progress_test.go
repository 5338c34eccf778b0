package progress

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// clock is a test clock moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestLine(t *testing.T) {
	yes, no := true, false
	c := &clock{t: time.Unix(1000, 0)}
	tty := New(&bytes.Buffer{}, "check", 100, Options{TTY: &yes, Now: c.now})
	plain := New(&bytes.Buffer{}, "check", 100, Options{TTY: &no, Now: c.now})
	if got, want := plain.Line(), "check 0/100   0% ETA ?"; got != want {
		t.Errorf("at the start: %q, want %q", got, want)
	}
	for i := range 25 {
		tty.Done(i%10 == 0)
		plain.Done(i%10 == 0)
	}
	c.t = c.t.Add(5 * time.Second) // 25 in 5 s: 5/s, 75 left: 15 s
	if got, want := plain.Line(), "check 25/100  25% 5.0/s ETA 15s 3 failed"; got != want {
		t.Errorf("plain: %q, want %q", got, want)
	}
	if got, want := tty.Line(), "check [======>                 ] 25/100  25% 5.0/s ETA 15s 3 failed"; got != want {
		t.Errorf("tty: %q, want %q", got, want)
	}
	for range 75 {
		plain.Done(false)
	}
	c.t = c.t.Add(15 * time.Second)
	if got, want := plain.Line(), "check 100/100 100% 5.0/s in 20s 3 failed"; got != want {
		t.Errorf("done: %q, want %q", got, want)
	}
}

// TestRunPrintsPlainLinesAndAFinalOne: without a terminal, no carriage
// returns or escapes; stop prints the final count.
func TestRunPrintsPlainLinesAndAFinalOne(t *testing.T) {
	no := false
	var out bytes.Buffer
	b := New(&out, "warm", 2, Options{TTY: &no, Every: time.Millisecond})
	stop := b.Run()
	b.Done(false)
	b.Done(true)
	stop()
	stop() // twice is harmless
	s := out.String()
	if strings.ContainsAny(s, "\r\x1b") {
		t.Errorf("plain output has terminal controls: %q", s)
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "warm 2/2 100%") || !strings.HasSuffix(last, "1 failed") {
		t.Errorf("last line %q", last)
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("/dev/null is a character device, not a terminal")
	}
	if IsTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is not a terminal")
	}
}

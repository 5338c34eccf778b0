package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// crashEnv names the directory a re-executed test binary writes to; set, it
// makes TestCrashChild the writer that TestCrashRecovery kills.
const crashEnv = "STORE_CRASH_CHILD_DIR"

const (
	crashKeys     = 600
	crashMaxPuts  = 200000 // the child stops by itself after this many
	crashMaxBytes = 1 << 20
)

// crashBody is the body of put number i for key: it names both, so a reader
// can regenerate it and tell a wrong body from a right one.
func crashBody(key string, i int) []byte {
	head := fmt.Sprintf("%s|%d|", key, i)
	b := append([]byte(head), jpeg(500+i%4000, byte(i)).Body...)
	return b
}

func crashKey(i int) string { return fmt.Sprintf("img%d\x00tile%d", i%crashKeys%37, i%crashKeys) }

// TestCrashChild is not a test on its own: run by TestCrashRecovery with
// crashEnv set, it writes until killed, reporting progress on stdout.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashRecovery")
	}
	start, _ := strconv.Atoi(os.Getenv(crashEnv + "_START"))
	tier, err := Open(Config{Dir: dir, MaxBytes: crashMaxBytes, SweepEvery: 5 * time.Millisecond, Logger: quiet})
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(2)
	}
	for i := start; i < start+crashMaxPuts; i++ {
		key := crashKey(i)
		if _, err := tier.Put([]byte(key), Entry{ContentType: "image/jpeg", Body: crashBody(key, i)}); err != nil {
			fmt.Println("put failed:", err)
			os.Exit(2)
		}
		switch i % 97 {
		case 0:
			_, _ = tier.PurgePrefix([]byte(fmt.Sprintf("img%d\x00", i%37)))
		case 1:
			_, _ = tier.Get([]byte(crashKey(i / 2)))
		}
		if i%50 == 0 {
			fmt.Println(i)
		}
	}
	os.Exit(0)
}

// TestCrashRecovery SIGKILLs a writer mid-Puts (several times, on one
// directory), then checks that the store opens, that every entry Get returns
// has exactly the bytes that were Put, and that the persisted counters and
// index agree with the entries.
func TestCrashRecovery(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in the child")
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	next := 0
	for round, killAfter := range []int{300, 1500, 4000} {
		last := runAndKill(t, dir, next, next+killAfter)
		next = last + 1
		opened := time.Now()
		tier, err := Open(Config{Dir: dir, MaxBytes: crashMaxBytes, Logger: quiet, noSweeper: true})
		took := time.Since(opened)
		if err != nil {
			t.Fatalf("round %d: Open after SIGKILL: %v", round, err)
		}
		found := 0
		for k := range crashKeys {
			key := crashKey(k)
			e, err := tier.Get([]byte(key))
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatalf("round %d: Get(%q): %v", round, key, err)
			}
			parts := bytes.SplitN(e.Body, []byte("|"), 3)
			i, perr := strconv.Atoi(string(parts[1]))
			if len(parts) != 3 || perr != nil || string(parts[0]) != key || !bytes.Equal(e.Body, crashBody(key, i)) {
				t.Fatalf("round %d: Get(%q) returned wrong bytes (%d bytes, head %q)", round, key, len(e.Body), e.Body[:min(40, len(e.Body))])
			}
			found++
		}
		checkAccounting(t, tier.eng.Load())
		st := tier.Stats()
		t.Logf("round %d: killed after put %d; Open took %v; %d entries readable, Stats Entries %d Bytes %d Corrupt %d",
			round, last, took, found, st.Entries, st.Bytes, st.Corrupt)
		if st.Corrupt != 0 || st.Entries != int64(found) {
			t.Errorf("round %d: Corrupt %d, Entries %d, readable %d", round, st.Corrupt, st.Entries, found)
		}
		if err := tier.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runAndKill starts the child writing from put number start, waits until it
// reports put number killAt or more, kills it with SIGKILL and returns the
// last put number it reported.
func runAndKill(t *testing.T, dir string, start, killAt int) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir, crashEnv+"_START="+strconv.Itoa(start))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	last := -1
	timeout := time.After(30 * time.Second)
	for last < killAt {
		select {
		case line, ok := <-lines:
			if !ok {
				_ = cmd.Wait()
				t.Fatalf("child exited before put %d (last %d)", killAt, last)
			}
			n, err := strconv.Atoi(strings.TrimSpace(line))
			if err != nil {
				_ = cmd.Process.Kill()
				t.Fatalf("child: %s", line)
			}
			last = n
		case <-timeout:
			_ = cmd.Process.Kill()
			t.Fatalf("child reached only put %d of %d in 30s", last, killAt)
		}
	}
	// Kill by PID, mid-write: the child keeps writing between its reports.
	if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
		t.Fatal(err)
	}
	for range lines { // drain whatever it printed before dying
	}
	_ = cmd.Wait()
	if cmd.ProcessState.Success() {
		t.Fatal("child finished instead of being killed")
	}
	return last
}

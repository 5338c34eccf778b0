package harness

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress prints a live status line while a run goes: on a terminal one
// line rewritten in place with a carriage return, otherwise one plain line
// per interval. It shows each target's progress, request rate and
// bandwidth over its measured time so far. All methods do nothing on a nil
// *Progress.
type Progress struct {
	// W receives the lines.
	W io.Writer
	// TTY rewrites one line in place instead of printing one per interval.
	TTY bool
	// Every is the interval. Zero means 1 s.
	Every time.Duration

	mu         sync.Mutex // protects the fields below and writes to W
	workload   string
	warmup     time.Duration
	total      time.Duration // measured time per target, or
	count      int64         // measured requests per target
	targets    []*ptarget
	cur        *ptarget // running, nil between phases
	measuring  bool
	phaseStart time.Time
}

// ptarget is one target's progress.
type ptarget struct {
	name                string
	l                   *live
	measured            time.Duration // in finished measured phases
	baseReq, baseBytes  int64         // counters when measurement began
	started             bool
	lastAt              time.Time // for the warm-up's rate
	lastReq, lastErrors int64
}

func (p *Progress) start(cfg Config, states []*tstate) (stop func()) {
	if p == nil {
		return func() {}
	}
	p.mu.Lock()
	p.workload, p.warmup, p.total, p.count = cfg.Workload.Name, cfg.Warmup, cfg.Duration, cfg.Requests
	p.targets, p.cur = nil, nil
	for _, st := range states {
		p.targets = append(p.targets, &ptarget{name: st.t.Name, l: &st.live})
	}
	p.mu.Unlock()
	every := p.Every
	if every <= 0 {
		every = time.Second
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.print()
			case <-done:
				return
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.TTY {
			fmt.Fprint(p.W, "\r\x1b[K")
		}
	}
}

func (p *Progress) begin(i int, measure bool) {
	if p == nil {
		return
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.targets[i]
	if measure && !t.started {
		t.started = true
		t.baseReq, t.baseBytes = t.l.requests.Load()+t.l.errors.Load(), t.l.bytes.Load()
	}
	t.lastAt, t.lastReq = now, t.l.requests.Load()+t.l.errors.Load()
	p.cur, p.measuring, p.phaseStart = t, measure, now
}

func (p *Progress) end() {
	if p == nil {
		return
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil && p.measuring {
		p.cur.measured += now.Sub(p.phaseStart)
	}
	p.cur = nil
}

// Status writes a line of its own (a stampede round, say), moving the live
// line out of the way on a terminal.
func (p *Progress) Status(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.TTY {
		fmt.Fprint(p.W, "\r\x1b[K")
	}
	fmt.Fprintf(p.W, format+"\n", args...)
}

func (p *Progress) print() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil && !p.anyStarted() {
		return
	}
	now := time.Now()
	var b strings.Builder
	b.WriteString(p.workload)
	if c := p.cur; c != nil && !p.measuring {
		reqs := c.l.requests.Load() + c.l.errors.Load()
		rate := float64(reqs-c.lastReq) / now.Sub(c.lastAt).Seconds()
		c.lastAt, c.lastReq = now, reqs
		fmt.Fprintf(&b, " warm-up %s %.1f/%.1fs  %.0f req/s", c.name, now.Sub(p.phaseStart).Seconds(), p.warmup.Seconds(), rate)
	} else {
		b.WriteString(" measure")
		var errs, non2xx int64
		for _, t := range p.targets {
			errs += t.l.errors.Load()
			non2xx += t.l.non2xx.Load()
			if !t.started {
				continue
			}
			d := t.measured
			if t == p.cur {
				d += now.Sub(p.phaseStart)
			}
			reqs, bytes := t.l.requests.Load()+t.l.errors.Load()-t.baseReq, t.l.bytes.Load()-t.baseBytes
			if p.count > 0 {
				fmt.Fprintf(&b, "  %s %d/%d req", t.name, reqs, p.count)
			} else {
				fmt.Fprintf(&b, "  %s %.1f/%.0fs", t.name, d.Seconds(), p.total.Seconds())
			}
			if s := d.Seconds(); s > 0 {
				fmt.Fprintf(&b, " %.0f req/s %.1f MB/s", float64(reqs)/s, float64(bytes)/s/1e6)
			}
		}
		fmt.Fprintf(&b, "  errors %d, non-2xx %d", errs, non2xx)
	}
	if p.TTY {
		fmt.Fprint(p.W, "\r\x1b[K"+b.String())
	} else {
		fmt.Fprintln(p.W, b.String())
	}
}

func (p *Progress) anyStarted() bool {
	for _, t := range p.targets {
		if t.started {
			return true
		}
	}
	return false
}

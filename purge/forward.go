// Package purge passes the proxy's purges on to the caches in front of it
// (Varnish, nginx, a CDN), so that a purged or changed image is not served
// from there for the rest of their TTL.
//
// A purge (the admin API, iiif-proxy purge, or a source change found by
// revalidation) becomes, for each configured target:
//
//   - ban: one BAN request, the regex of every URL of the identifier in
//     X-Ban-Url (idRegex: each version form, signed URLs, any
//     percent-encoding). This is the mechanism that works: a proxy cannot
//     enumerate the URLs a cache in front holds (every region, size and
//     rotation a client asked for), a regex names them all.
//   - purge: one PURGE request per URL it can name: each version form's
//     info.json and base (/iiif/3/{id}/info.json, /iiif/3/{id}, /2/ and the
//     unversioned form). Tiles cached downstream stay until their TTL: use
//     ban where the cache can (nginx's purge is a commercial or
//     third-party module; plain PURGE to a URL is what both speak).
//   - webhook: one POST of the Event as JSON (identifier, URLs, prefixes,
//     regex), for a relay to a CDN's invalidation API.
//
// Forwarding never blocks the purge: requests go into a bounded queue per
// target (full: dropped and counted), one worker per target sends them in
// order, retrying a failure with exponential backoff up to a bounded
// number of attempts (then dropped and counted). A dead target therefore
// costs its own queue, never a request or another target. Counters per
// target: sent, failed (attempts), retried, dropped, queued.
package purge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Forwarder passes purges on to the targets of its Config. A nil
// *Forwarder forwards nothing, so callers need not check.
type Forwarder struct {
	cfg     Config
	host    string // Config.BaseURL's host[:port], "" without one
	log     *slog.Logger
	targets []*target
	ctx     context.Context // ends at Close: workers stop, waits end
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the workers
}

// target is one cache in front, its queue and counters.
type target struct {
	Target
	name  string
	queue chan job
	// counters since start
	sent, failed, retried, dropped atomic.Uint64
	logged                         atomic.Int64 // unix seconds of the last line logged
}

// job is one HTTP request to send.
type job struct {
	method string
	url    string
	header http.Header
	body   []byte
	what   string // for logs: the identifier, or the scope
}

// New returns a Forwarder running one worker per target; nil when cfg has
// no targets. Close stops it.
func New(cfg Config) (*Forwarder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Targets) == 0 {
		return nil, nil
	}
	cfg = cfg.withDefaults()
	f := &Forwarder{cfg: cfg, log: cfg.Logger}
	if u, err := url.Parse(cfg.BaseURL); err == nil {
		f.host = u.Host
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	for _, s := range cfg.Targets {
		t, _ := ParseTarget(s) // validated
		tt := &target{Target: t, name: t.String(), queue: make(chan job, cfg.QueueLen)}
		f.targets = append(f.targets, tt)
		f.wg.Add(1)
		go f.work(tt)
	}
	return f, nil
}

// Close stops the workers: a request being sent is cut off, those still
// queued, and any forwarded after, are dropped (and counted).
func (f *Forwarder) Close() {
	if f == nil {
		return
	}
	f.cancel()
	f.wg.Wait()
}

// ID forwards the purge of every derivative of identifier id (reason:
// ReasonAdmin, ReasonSourceChanged, …).
func (f *Forwarder) ID(id, reason string) { f.forward(ScopeID, id, "", reason) }

// Tier forwards the purge of one tier, by name. A cache in front cannot
// tell tiers apart by URL, except info (every info.json): a ban target
// drops every URL under the web path, or every info.json; a PURGE target
// gets nothing, having no URL to name; a webhook gets the event.
func (f *Forwarder) Tier(tier, reason string) { f.forward(ScopeTier, "", tier, reason) }

// All forwards the purge of everything: as Tier, for every URL.
func (f *Forwarder) All(reason string) { f.forward(ScopeAll, "", "", reason) }

func (f *Forwarder) forward(scope Scope, id, tier, reason string) {
	if f == nil {
		return
	}
	what := id
	if scope != ScopeID {
		what = string(scope) + " " + tier
	}
	for _, t := range f.targets {
		path := f.cfg.WebPath
		if p := strings.TrimRight(t.URL.EscapedPath(), "/"); p != "" && t.Kind != Webhook {
			path = p // the cache in front serves the images under its own path
		}
		switch t.Kind {
		case Ban:
			ev := f.cfg.event(scope, id, tier, reason, path, "")
			h := http.Header{"X-Ban-Url": {ev.BanRegex}}
			f.enqueue(t, job{method: "BAN", url: t.URL.Scheme + "://" + t.URL.Host + path + "/", header: h, what: what})
		case Purge:
			if scope != ScopeID {
				continue // no URL to name: see Tier
			}
			for _, u := range f.cfg.event(scope, id, tier, reason, path, "").URLs {
				var h http.Header
				if f.host != "" {
					// Varnish's default hash includes Host: purge the
					// object clients fetched, under the public host.
					h = http.Header{"Host": {f.host}}
				}
				f.enqueue(t, job{method: "PURGE", url: t.URL.Scheme + "://" + t.URL.Host + u, header: h, what: what})
			}
		case Webhook:
			ev := f.cfg.event(scope, id, tier, reason, path, f.cfg.BaseURL)
			body, err := json.Marshal(ev)
			if err != nil {
				continue // an Event always marshals
			}
			h := http.Header{"Content-Type": {"application/json"}}
			if f.cfg.WebhookToken != "" {
				h.Set("Authorization", "Bearer "+f.cfg.WebhookToken)
			}
			f.enqueue(t, job{method: http.MethodPost, url: t.URL.String(), header: h, body: body, what: what})
		}
	}
}

// enqueue adds j to t's queue, or drops it when the queue is full: the
// purge that asked must not wait for a cache in front.
func (f *Forwarder) enqueue(t *target, j job) {
	if f.ctx.Err() != nil {
		t.dropped.Add(1) // closed: no worker would send it
		return
	}
	select {
	case t.queue <- j:
	default:
		t.dropped.Add(1)
		f.warn(t, "purge forwarding: queue full, dropped", "method", j.method, "purged", j.what, "queueLen", cap(t.queue))
	}
}

// work sends t's queued requests in order until Close.
func (f *Forwarder) work(t *target) {
	defer f.wg.Done()
	for {
		select {
		case <-f.ctx.Done():
			for {
				select {
				case <-t.queue:
					t.dropped.Add(1)
				default:
					return
				}
			}
		case j := <-t.queue:
			f.send(t, j)
		}
	}
}

// send tries j up to Attempts times, waiting Backoff, 2×Backoff, … (at most
// MaxBackoff) between tries.
func (f *Forwarder) send(t *target, j job) {
	wait := f.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := f.do(t, j)
		if err == nil {
			t.sent.Add(1)
			return
		}
		t.failed.Add(1)
		if attempt >= f.cfg.Attempts || f.ctx.Err() != nil {
			t.dropped.Add(1)
			f.warn(t, "purge forwarding: gave up", "method", j.method, "url", redact(j.url), "purged", j.what,
				"attempts", attempt, "error", err)
			return
		}
		f.log.Debug("purge forwarding: retrying", "target", t.name, "purged", j.what, "attempt", attempt, "error", err)
		select {
		case <-f.ctx.Done():
			t.dropped.Add(1)
			return
		case <-time.After(wait):
		}
		t.retried.Add(1)
		wait = min(2*wait, f.cfg.MaxBackoff)
	}
}

// do sends j once. A 2xx is success; so is a 404 to PURGE (nginx's purge
// modules say so when the URL is not cached: nothing to remove).
func (f *Forwarder) do(t *target, j job) error {
	ctx, cancel := context.WithTimeout(f.ctx, f.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if j.body != nil {
		body = bytes.NewReader(j.body)
	}
	req, err := http.NewRequestWithContext(ctx, j.method, j.url, body)
	if err != nil {
		return err
	}
	for k, v := range j.header {
		if k == "Host" {
			req.Host = v[0]
			continue
		}
		req.Header[k] = v
	}
	resp, err := f.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
	resp.Body.Close()
	if resp.StatusCode/100 == 2 || (j.method == "PURGE" && resp.StatusCode == http.StatusNotFound) {
		return nil
	}
	return errors.New(resp.Status)
}

// warn logs for t at most once a minute: a dead target fails every
// request, and its log must not grow with the purges.
func (f *Forwarder) warn(t *target, msg string, args ...any) {
	now := time.Now().Unix()
	if last := t.logged.Load(); now >= last+60 && t.logged.CompareAndSwap(last, now) {
		f.log.Warn(msg, append([]any{"target", t.name, "dropped", t.dropped.Load()}, args...)...)
	}
}

// TargetStats are one target's counters since start.
type TargetStats struct {
	Target  string `json:"target"`  // "ban http://127.0.0.1:6081"
	Sent    uint64 `json:"sent"`    // requests the target accepted
	Failed  uint64 `json:"failed"`  // attempts that failed (refused, timed out, not 2xx)
	Retried uint64 `json:"retried"` // attempts after a failure
	Dropped uint64 `json:"dropped"` // requests given up: queue full, out of attempts, or shut down
	Queued  int    `json:"queued"`  // requests waiting now
}

// Stats returns each target's counters, in configuration order; nil for a
// nil Forwarder.
func (f *Forwarder) Stats() []TargetStats {
	if f == nil {
		return nil
	}
	out := make([]TargetStats, 0, len(f.targets))
	for _, t := range f.targets {
		out = append(out, TargetStats{Target: t.name, Sent: t.sent.Load(), Failed: t.failed.Load(),
			Retried: t.retried.Load(), Dropped: t.dropped.Load(), Queued: len(t.queue)})
	}
	return out
}

// redact drops a URL's query (a webhook's may hold a key) for logs.
func redact(u string) string {
	if base, _, ok := strings.Cut(u, "?"); ok {
		return base + "?…"
	}
	return u
}

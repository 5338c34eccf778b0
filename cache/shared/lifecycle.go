package shared

import (
	"context"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/lifecycle"
)

// The layer's entries expire by the bucket's lifecycle rule, not by a sweep
// of the proxy's own: the store deletes what was not written or refreshed
// (copied onto itself, see Layer.refresh) within Retention, whichever
// nodes are up, without listing the bucket. Two rules, named after the
// prefix so that several layers (or other applications) can share a bucket:
//
//	iiif-proxy-{hash}-entries  Prefix {prefix}o/  Expiration Days = Retention in days, rounded up, at least 1
//	iiif-proxy-{hash}-leases   Prefix {prefix}l/  Expiration Days = 1 (leases of nodes that died)
//
// Generation objects ({prefix}g/) never expire: a node's local entries may
// outlive the shared ones (a local tier's retention is its own), and a
// purge must still hold for them. They are a few bytes per purged
// identifier. With Lifecycle off, an operator sets the same rules.

// lifecycleRules are the rules this layer wants.
func (l *Layer) lifecycleRules() []lifecycle.Rule {
	days := int((l.cfg.Retention + 24*time.Hour - 1) / (24 * time.Hour))
	base := "iiif-proxy-" + hash(l.bucket + "/" + l.keys.prefix)[:12]
	rule := func(suffix, space string, days int) lifecycle.Rule {
		return lifecycle.Rule{ID: base + suffix, Status: "Enabled",
			RuleFilter: lifecycle.Filter{Prefix: l.keys.prefix + space},
			Expiration: lifecycle.Expiration{Days: lifecycle.ExpirationDays(max(days, 1))}}
	}
	return []lifecycle.Rule{rule("-entries", "o/", days), rule("-leases", "l/", 1)}
}

// ensureLifecycle puts the layer's rules into the bucket's lifecycle
// configuration, keeping every other rule, and retries until it succeeds
// (the store may be down at start) or is refused (then says so once).
func (l *Layer) ensureLifecycle() {
	for wait := time.Second; ; wait = min(2*wait, 5*time.Minute) {
		err := l.putLifecycle()
		if err == nil {
			l.lifecycle.Store(true)
			return
		}
		if code := minio.ToErrorResponse(err).Code; code == "AccessDenied" || code == "NotImplemented" {
			l.log.Warn("shared cache: cannot set the bucket's lifecycle rule: set it yourself (README: shared tier), or entries never expire",
				"bucket", l.bucket, "error", err)
			return
		}
		select {
		case <-time.After(wait):
		case <-l.done:
			return
		}
	}
}

func (l *Layer) putLifecycle() error {
	ctx, cancel := context.WithTimeout(context.Background(), 4*l.cfg.Timeout)
	defer cancel()
	cfg, err := l.c.GetBucketLifecycle(ctx, l.bucket)
	if err != nil && minio.ToErrorResponse(err).Code != "NoSuchLifecycleConfiguration" {
		return err
	}
	if cfg == nil {
		cfg = lifecycle.NewConfiguration()
	}
	want := l.lifecycleRules()
	changed := false
	for _, w := range want {
		found := false
		for i, r := range cfg.Rules {
			if r.ID != w.ID {
				continue
			}
			found = true
			if r.RuleFilter.Prefix != w.RuleFilter.Prefix || r.Expiration.Days != w.Expiration.Days || r.Status != w.Status {
				cfg.Rules[i], changed = w, true
			}
		}
		if !found {
			cfg.Rules, changed = append(cfg.Rules, w), true
		}
	}
	if !changed {
		return nil
	}
	return l.c.SetBucketLifecycle(ctx, l.bucket, cfg)
}

// checkLifecycle (Lifecycle off) only records whether the rules are in
// place, for the stats.
func (l *Layer) checkLifecycle() {
	ctx, cancel := context.WithTimeout(context.Background(), 4*l.cfg.Timeout)
	defer cancel()
	cfg, err := l.c.GetBucketLifecycle(ctx, l.bucket)
	if err != nil || cfg == nil {
		return
	}
	n := 0
	for _, w := range l.lifecycleRules() {
		for _, r := range cfg.Rules {
			if r.ID == w.ID && r.Status == "Enabled" {
				n++
			}
		}
	}
	l.lifecycle.Store(n == len(l.lifecycleRules()))
}

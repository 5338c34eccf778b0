package proxy

import (
	"fmt"

	"github.com/iiif-proxy/iiif-proxy/proxy/proxyconf"
	"github.com/iiif-proxy/iiif-proxy/purge"
	"github.com/iiif-proxy/iiif-proxy/rules"
)

// Settings that may change while serving (SIGHUP) are read through atomic
// pointers, never from Config, so a reload races with no request: a request
// sees either the old or the new value of each, whole.

// Reload applies what cfg changes among the settings that can change live:
// RenderTimeout, RenderWait, MaxInFlightBytes and, per tier, Revalidate,
// CacheControl and MaxEntryBytes. It returns a line per change, for the log.
// Everything else in cfg is ignored: the caller reports what needs a restart.
func (p *Proxy) Reload(cfg Config) (applied []string) {
	if cfg.RenderTimeout == 0 {
		cfg.RenderTimeout = proxyconf.DefaultRenderTimeout
	}
	if cfg.RenderWait == 0 {
		cfg.RenderWait = proxyconf.DefaultRenderWait
	}
	if render, wait := p.cache.Timeouts(); render != cfg.RenderTimeout || wait != cfg.RenderWait {
		p.cache.SetTimeouts(cfg.RenderTimeout, cfg.RenderWait)
		applied = append(applied, fmt.Sprintf("RenderTimeout=%s RenderWait=%s", cfg.RenderTimeout, cfg.RenderWait))
	}
	if old := p.budget.limit.Swap(cfg.MaxInFlightBytes); old != cfg.MaxInFlightBytes {
		applied = append(applied, fmt.Sprintf("MaxInFlightBytes=%d", cfg.MaxInFlightBytes))
	}
	for i, t := range p.cache.Tiers() {
		nc, oc := cfg.Tiers[i], t.Conf()
		if nc.Policy == oc.Policy {
			continue
		}
		p.cache.SetTierConfig(rules.Tier(i), nc)
		applied = append(applied, fmt.Sprintf("Tiers.%s: Revalidate=%s CacheControl=%q MaxEntryBytes=%d",
			rules.Tier(i), nc.Revalidate, nc.CacheControl, nc.MaxEntryBytes))
	}
	return applied
}

// SetSigner replaces the signer of protected images (keys rotate on
// SIGHUP); nil protects nothing.
func (p *Proxy) SetSigner(s *Signer) { p.signer.Store(s) }

// PurgeTier drops every entry of tier t, in memory and on disk, for a
// reload that changed what they say (info.json advertises the limits), and
// forwards the purge to the caches in front.
func (p *Proxy) PurgeTier(t rules.Tier) {
	p.cache.PurgeTier(t)
	p.cfg.Forward.Tier(t.String(), purge.ReasonReload)
}

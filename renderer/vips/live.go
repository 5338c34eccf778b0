package vips

import (
	"fmt"

	"github.com/iiif-proxy/iiif-proxy/rules"
)

// SetLimits changes the output limits while the renderer serves (SIGHUP).
// They live behind an atomic pointer: Config is read without a lock by
// every request, so changing cfg.Limits in place would be a data race.
func (v *Vips) SetLimits(l rules.Limits) error {
	if l.MaxArea < 0 || l.MaxWidth < 0 || l.MaxHeight < 0 {
		return fmt.Errorf("renderer: limits must be >= 0: %+v", l)
	}
	v.live.Store(&l)
	return nil
}

// limits are the output limits in force: the last SetLimits, else cfg's.
func (v *Vips) limits() rules.Limits {
	if l := v.live.Load(); l != nil {
		return *l
	}
	return v.cfg.Limits
}

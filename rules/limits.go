package rules

import (
	"errors"
	"fmt"
)

// DefaultLimits are the output limits a site gets unless it says otherwise
// (RAIS's ImageMaxArea, ImageMaxWidth, ImageMaxHeight): 100 megapixels,
// 20480 pixels a side. The zero Limits means no limit at all.
var DefaultLimits = Limits{MaxArea: 104857600, MaxWidth: 20480, MaxHeight: 20480}

// Validate reports every negative limit at once, by its RAIS key (zero
// means no limit).
func (l Limits) Validate() error {
	var errs []error
	for _, f := range []struct {
		key string
		n   int64
	}{{"ImageMaxArea", l.MaxArea}, {"ImageMaxWidth", int64(l.MaxWidth)}, {"ImageMaxHeight", int64(l.MaxHeight)}} {
		if f.n < 0 {
			errs = append(errs, fmt.Errorf("%s: %d must be >= 0 (0: no limit)", f.key, f.n))
		}
	}
	return errors.Join(errs...)
}

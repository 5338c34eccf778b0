package cacheconf

import (
	"strings"
	"testing"

	"github.com/iiif-proxy/iiif-proxy/rules"
)

func TestDefaultsAreValid(t *testing.T) {
	for tr := range rules.NumTiers {
		d := DefaultTier(tr)
		if err := d.Validate(tr); err != nil {
			t.Errorf("%s: %v", tr, err)
		}
		if !d.Enabled || d.MaxBytes <= 0 || d.MaxEntryBytes <= 0 || d.MaxEntryBytes >= d.MaxBytes {
			t.Errorf("%s: %+v", tr, d)
		}
	}
	if DefaultTier(rules.TierTile) == DefaultTier(rules.TierOther) {
		t.Error("every tier has other's defaults")
	}
}

func TestEveryProblemOnceUnderItsKey(t *testing.T) {
	c := Tier{MaxBytes: -1, Retention: -1, Policy: Policy{Revalidate: -1, CacheControl: "a\r\nb", MaxEntryBytes: -1}}
	err := c.Validate(rules.TierThumbnail)
	if err == nil {
		t.Fatal("accepted")
	}
	got := strings.Split(err.Error(), "\n")
	want := []string{"Tiers.Thumbnail.MaxBytes: must be >= 0", "Tiers.Thumbnail.Retention: must be >= 0",
		"Tiers.Thumbnail.Revalidate: must be >= 0", "Tiers.Thumbnail.MaxEntryBytes: must be >= 0",
		"Tiers.Thumbnail.CacheControl: must be one line"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", err, strings.Join(want, "\n"))
	}
}

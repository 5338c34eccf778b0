package config

import (
	"reflect"
	"strings"
)

// Diff returns the keys ("LogLevel", "Tiers.Tile.MaxBytes") whose values
// differ between a and b, in declaration order. It names keys only, never
// values: some are secrets.
func Diff(a, b Config) []string {
	var fa, fb []field
	leaves(reflect.ValueOf(&a).Elem(), nil, &fa)
	leaves(reflect.ValueOf(&b).Elem(), nil, &fb)
	var out []string
	for i := range fa {
		if !reflect.DeepEqual(fa[i].v.Interface(), fb[i].v.Interface()) {
			out = append(out, strings.Join(fa[i].path, "."))
		}
	}
	return out
}

// Live reports whether a change of key can be applied to a running server
// (on SIGHUP); every other key needs a restart.
func Live(key string) bool {
	if tier, ok := strings.CutPrefix(key, "Tiers."); ok {
		_, k, _ := strings.Cut(tier, ".")
		switch k {
		case "MaxBytes", "Retention", "Revalidate", "CacheControl", "MaxEntryBytes":
			return true
		}
		return false
	}
	switch key {
	case "LogLevel", "RenderTimeout", "RenderWait", "ImageMaxArea", "ImageMaxWidth", "ImageMaxHeight",
		"AdminToken", "AdminTokenFile", "MaxInFlightBytes", "SignedPrefixes", "SigningKeys", "SigningKeyFile":
		return true
	}
	return false
}

// CopyLive copies the keys that Live accepts from from into to, leaving
// the rest (those that need a restart) as they are.
func CopyLive(to *Config, from Config) {
	var ft, ff []field
	leaves(reflect.ValueOf(to).Elem(), nil, &ft)
	leaves(reflect.ValueOf(&from).Elem(), nil, &ff)
	for i := range ft {
		if Live(strings.Join(ft[i].path, ".")) {
			ft[i].v.Set(ff[i].v)
		}
	}
}

package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// decodeFile reads the TOML file into cfg one key at a time, so that every
// bad value (a string where a number belongs, "soon" for a duration, "lots"
// for a size) is reported, not only the first, and so that keys match
// case-insensitively, as RAIS's (viper's) did. Only a syntax error, after
// which nothing in the file can be trusted, stops it early.
// read is false when nothing of the file could be read.
func decodeFile(file string, cfg *Config, src Sources) (warnings []string, errs []error, read bool) {
	var top map[string]toml.Primitive
	md, err := toml.DecodeFile(file, &top)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", file, err)}, false
	}
	var lines map[string]int
	if src != nil {
		lines = keyLines(file)
	}
	decodeTable(md, file, top, reflect.ValueOf(cfg).Elem(), nil, &warnings, &errs, src, lines)
	return warnings, errs, true
}

// decodeTable decodes the members of one table into the struct v, whose
// path from Config is prefix.
// src, when not nil, records each key set, at its line in lines (by
// lower-case path, from keyLines).
func decodeTable(md toml.MetaData, file string, table map[string]toml.Primitive, v reflect.Value, prefix []string,
	warnings *[]string, errs *[]error, src Sources, lines map[string]int) {
	keys := make([]string, 0, len(table))
	for k := range table {
		keys = append(keys, k)
	}
	sort.Strings(keys) // problems listed in a stable order
	t := v.Type()
	for _, k := range keys {
		i := slices.IndexFunc(reflect.VisibleFields(t), func(f reflect.StructField) bool {
			return f.IsExported() && strings.EqualFold(f.Name, k)
		})
		if i < 0 {
			if len(prefix) == 0 && slices.ContainsFunc(raisOnly, func(r string) bool { return strings.EqualFold(r, k) }) {
				// RAIS's sample rais.toml lists its plugin keys empty
				// (Plugins = "", S3Cache = ""): set to nothing, they
				// ask for nothing, and a warning would only be noise.
				var raw any
				if md.PrimitiveDecode(table[k], &raw) != nil || !isEmptyValue(raw) {
					*warnings = append(*warnings, raisOnlyWarning(file, k))
				}
				continue
			}
			*errs = append(*errs, fmt.Errorf("%s: unknown key %s", file, strings.Join(append(slices.Clone(prefix), k), ".")))
			continue
		}
		f := t.Field(i)
		fv := v.Field(i)
		path := append(slices.Clone(prefix), f.Name)
		if fv.Kind() == reflect.Struct && !isText(fv) {
			// A number or string here must not decode into an empty table
			// (the library allows it), which would drop the setting in silence.
			var raw any
			_ = md.PrimitiveDecode(table[k], &raw)
			var sub map[string]toml.Primitive
			if _, isTable := raw.(map[string]any); !isTable {
				*errs = append(*errs, fmt.Errorf("%s: %s: must be a table ([%s])", file, strings.Join(path, "."), strings.Join(path, ".")))
				continue
			}
			if err := md.PrimitiveDecode(table[k], &sub); err != nil {
				*errs = append(*errs, fmt.Errorf("%s: %s: must be a table ([%s])", file, strings.Join(path, "."), strings.Join(path, ".")))
				continue
			}
			decodeTable(md, file, sub, fv, path, warnings, errs, src, lines)
			continue
		}
		// Into a copy: a value that fails leaves the default in place.
		tmp := reflect.New(fv.Type())
		tmp.Elem().Set(fv)
		if err := md.PrimitiveDecode(table[k], tmp.Interface()); err != nil {
			var raw any
			_ = md.PrimitiveDecode(table[k], &raw)
			*errs = append(*errs, fmt.Errorf("%s: %s: %s", file, strings.Join(path, "."), tomlReason(err, raw, fv.Type())))
			continue
		}
		fv.Set(tmp.Elem())
		where := file
		if n, ok := lines[strings.ToLower(strings.Join(path, "."))]; ok {
			where = fmt.Sprintf("%s:%d", file, n)
		}
		src.set(path, Source{Kind: FromFile, Where: where})
	}
}

// tomlReason trims what the caller already says (the library's prefix, the
// key) off a decoding error, keeping the line and the reason. The library's
// "incompatible types: TOML value has type float64; destination has type
// integer" is said as the environment's and flags' errors say it: the value
// and what was wanted (`1.5 is not a whole number`).
func tomlReason(err error, raw any, want reflect.Type) string {
	s := lastKey.ReplaceAllString(strings.TrimPrefix(err.Error(), "toml: "), "")
	if i := strings.Index(s, "incompatible types: "); i >= 0 {
		if w := wanted(want); w != "" {
			v := fmt.Sprint(raw)
			if str, ok := raw.(string); ok {
				v = strconv.Quote(str)
			}
			s = s[:i] + v + " is not " + w
		}
	}
	return s
}

// wanted says what a value of type t is, as a correction ("" if unknown).
func wanted(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string (in quotes)"
	case reflect.Slice:
		return `a list, e.g. ["a", "b"]`
	}
	return ""
}

var lastKey = regexp.MustCompile(` \(last key "[^"]*"\)`)

// isEmptyValue reports whether a decoded TOML value asks for nothing: an
// empty string, false, zero, an empty array or table.
func isEmptyValue(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x) == ""
	case bool:
		return !x
	case int64:
		return x == 0
	case float64:
		return x == 0
	case []any:
		return len(x) == 0
	case []map[string]any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// Package config loads iiif-proxy's configuration in RAIS's style: built-in
// defaults, then a TOML file (conf/rais.toml), then RAIS_* environment
// variables, then command-line flags. A site's existing rais.toml starts as
// it is: RAIS keys we do not implement are accepted with a warning naming
// each; keys nobody knows and bad values fail, all listed in one error.
//
// Every key's environment name is RAIS_ and the key upper-cased, nested
// tables joined by "_" (Tiers.Tile.MaxBytes → RAIS_TIERS_TILE_MAXBYTES).
package config

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration. Field names are the TOML keys.
type Config struct {
	// Address is where the IIIF service listens (RAIS). Default ":12415".
	Address string
	// AdminAddress is where the admin endpoints listen (RAIS). Default
	// "127.0.0.1:12416" (RAIS listens on all interfaces; we keep admin on
	// loopback unless told otherwise).
	AdminAddress string
	// LogLevel is DEBUG, INFO, WARN, ERROR or CRIT (RAIS). Default "INFO".
	LogLevel string
	// TilePath is the directory of source images (RAIS). Required; the
	// shipped conf/rais.toml points it at ./samples.
	TilePath string
	// IIIFWebPath is the path prefix of the IIIF service (RAIS). Default
	// "/iiif": 3.0 at /iiif/3/{id}/…, 2.1 at /iiif/2/{id}/….
	IIIFWebPath string
	// IIIFBaseURL is the public scheme://host[:port] for ids in info.json
	// and Link headers (RAIS). Empty: taken from each request.
	IIIFBaseURL string
	// InfoCacheLen is how many sources' info stay in memory (RAIS).
	// Default 10000; 0 turns it off.
	InfoCacheLen int
	// TileCacheLen is how many tiles stay in memory (RAIS). Default 0 (off).
	TileCacheLen int
	// JPGQuality is the JPEG and WebP quality, 1–100 (RAIS). Default 75.
	JPGQuality int
	// ImageMaxArea is the most pixels one response may have (RAIS).
	// Default 104857600 (100 megapixels); 0 means no limit.
	ImageMaxArea int64
	// ImageMaxWidth is the widest response (RAIS). Default 20480; 0 = no limit.
	ImageMaxWidth int
	// ImageMaxHeight is the tallest response (RAIS). Default 20480; 0 = no limit.
	ImageMaxHeight int

	// RenderConcurrency is how many renders run at once. Default 0 = one per core.
	RenderConcurrency int
	// RenderQueueLen is how many renders may wait; more get 503 with
	// Retry-After. Default 0 = 8 per worker; -1 = no queue.
	RenderQueueLen int
	// RenderTimeout bounds a request's wait for its render. Default "60s".
	RenderTimeout Duration
	// VipsConcurrency is libvips' threads per render. Default 1.
	VipsConcurrency int
	// UntiledTileSize is the tile size advertised for sources without
	// internal tiles (plain JPEG, PNG). Default 1024.
	UntiledTileSize int
	// TilePassthrough serves a request for exactly one stored JPEG tile of a
	// pyramidal TIFF as stored, without decoding. Default true.
	TilePassthrough bool
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		Address:         ":12415",
		AdminAddress:    "127.0.0.1:12416",
		LogLevel:        "INFO",
		IIIFWebPath:     "/iiif",
		InfoCacheLen:    10000,
		JPGQuality:      75,
		ImageMaxArea:    104857600,
		ImageMaxWidth:   20480,
		ImageMaxHeight:  20480,
		RenderTimeout:   Duration(60 * time.Second),
		VipsConcurrency: 1,
		UntiledTileSize: 1024,
		TilePassthrough: true,
	}
}

// raisOnly are RAIS keys that iiif-proxy accepts but does not implement.
var raisOnly = []string{"CapabilitiesFile", "Plugins", "SchemeMap", "S3Cache", "S3Zone", "S3Endpoint",
	"S3DisableSSL", "S3ForcePathStyle", "DatabaseURL"}

// Duration is a time.Duration written in Go's notation ("90s", "24h").
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like \"90s\" or \"24h\"", b)
	}
	if v < 0 {
		return fmt.Errorf("%q must not be negative", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Load builds the configuration. file is the TOML file to read ("" = none);
// environ is os.Environ() (or a test's); args are the command-line flags
// after the program name. Warnings are things the operator should know that
// do not stop start-up.
func Load(file string, environ []string, args []string) (cfg Config, warnings []string, err error) {
	cfg = Default()
	var errs []error
	if file != "" {
		md, err := toml.DecodeFile(file, &cfg)
		if err != nil {
			return cfg, nil, fmt.Errorf("%s: %w", file, err)
		}
		for _, k := range md.Undecoded() {
			key := k.String()
			if slices.Contains(raisOnly, k[0]) {
				warnings = append(warnings, fmt.Sprintf("%s: RAIS key %s is not implemented by iiif-proxy and is ignored", file, key))
				continue
			}
			errs = append(errs, fmt.Errorf("%s: unknown key %s", file, key))
		}
	}
	w, envErrs := applyEnv(&cfg, environ)
	warnings = append(warnings, w...)
	errs = append(errs, envErrs...)
	if err := applyFlags(&cfg, args); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, cfg.validate()...)
	return cfg, warnings, errors.Join(errs...)
}

// Find returns the configuration file to use when -config is not given:
// conf/rais.toml, then rais.toml, then /etc/rais.toml; "" if none exists.
func Find() string {
	for _, f := range []string{"conf/rais.toml", "rais.toml", "/etc/rais.toml"} {
		if _, err := os.Stat(f); err == nil {
			return f
		}
	}
	return ""
}

// ConfigFlag picks -config FILE (or --config=FILE) out of args; it reports
// whether the flag was present and returns the remaining args.
func ConfigFlag(args []string) (file string, given bool, rest []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			rest = append(rest, a)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return "", true, nil, errors.New("-config needs a file name")
			}
			i++
			val = args[i]
		}
		if _, err := os.Stat(val); err != nil {
			return "", true, nil, fmt.Errorf("-config: %w", err)
		}
		file, given = val, true
	}
	return file, given, rest, nil
}

// envName is the environment variable for a key path.
func envName(path []string) string { return "RAIS_" + strings.ToUpper(strings.Join(path, "_")) }

// field is one settable leaf of Config.
type field struct {
	path []string
	v    reflect.Value
}

func leaves(v reflect.Value, prefix []string, out *[]field) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		path := append(slices.Clone(prefix), f.Name)
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && !isText(fv) {
			leaves(fv, path, out)
			continue
		}
		*out = append(*out, field{path, fv})
	}
}

func isText(v reflect.Value) bool {
	_, ok := v.Addr().Interface().(interface{ UnmarshalText([]byte) error })
	return ok
}

// set parses s into v by v's type.
func set(v reflect.Value, s string) error {
	if u, ok := v.Addr().Interface().(interface{ UnmarshalText([]byte) error }); ok {
		return u.UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		v.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		v.SetBool(b)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

func applyEnv(cfg *Config, environ []string) (warnings []string, errs []error) {
	var fs []field
	leaves(reflect.ValueOf(cfg).Elem(), nil, &fs)
	known := map[string]field{}
	for _, f := range fs {
		known[envName(f.path)] = f
	}
	for _, kv := range environ {
		name, val, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "RAIS_") {
			continue
		}
		f, ok := known[name]
		if !ok {
			warnings = append(warnings, fmt.Sprintf("environment: %s is not an iiif-proxy setting and is ignored", name))
			continue
		}
		if err := set(f.v, val); err != nil {
			errs = append(errs, fmt.Errorf("environment %s: %w", name, err))
		}
	}
	return warnings, errs
}

// flagNames are RAIS's command-line flags and ours, by key.
var flagNames = map[string]string{
	"Address": "address", "AdminAddress": "admin-address", "LogLevel": "log-level", "TilePath": "tile-path",
	"IIIFWebPath": "iiif-web-path", "IIIFBaseURL": "iiif-base-url", "InfoCacheLen": "iiif-info-cache-size",
	"TileCacheLen": "tile-cache-size", "JPGQuality": "jpg-quality", "ImageMaxArea": "image-max-area",
	"ImageMaxWidth": "image-max-width", "ImageMaxHeight": "image-max-height",
	"RenderConcurrency": "render-concurrency", "RenderQueueLen": "render-queue-len",
	"RenderTimeout": "render-timeout", "VipsConcurrency": "vips-concurrency",
	"UntiledTileSize": "untiled-tile-size", "TilePassthrough": "tile-passthrough",
}

// Flags returns a FlagSet describing every flag, for -help.
func Flags() *flag.FlagSet {
	fset := flag.NewFlagSet("iiif-proxy", flag.ContinueOnError)
	var fs []field
	cfg := Default()
	leaves(reflect.ValueOf(&cfg).Elem(), nil, &fs)
	fset.String("config", "", "TOML configuration file (default: conf/rais.toml, rais.toml or /etc/rais.toml, whichever exists)")
	for _, f := range fs {
		name, ok := flagNames[strings.Join(f.path, ".")]
		if !ok {
			name = strings.ToLower(strings.Join(f.path, "-"))
		}
		fset.Var(flagValue{f.v}, name, fmt.Sprintf("%s (env %s)", strings.Join(f.path, "."), envName(f.path)))
	}
	return fset
}

type flagValue struct{ v reflect.Value }

func (f flagValue) String() string {
	if !f.v.IsValid() {
		return ""
	}
	if m, ok := f.v.Interface().(interface{ MarshalText() ([]byte, error) }); ok {
		b, _ := m.MarshalText()
		return string(b)
	}
	return fmt.Sprint(f.v.Interface())
}

func (f flagValue) Set(s string) error { return set(f.v, s) }

// IsBoolFlag lets "-tile-passthrough" mean true, as flag does for bools.
func (f flagValue) IsBoolFlag() bool { return f.v.IsValid() && f.v.Kind() == reflect.Bool }

func applyFlags(cfg *Config, args []string) error {
	fset := flag.NewFlagSet("iiif-proxy", flag.ContinueOnError)
	fset.SetOutput(discard{})
	var fs []field
	leaves(reflect.ValueOf(cfg).Elem(), nil, &fs)
	for _, f := range fs {
		name, ok := flagNames[strings.Join(f.path, ".")]
		if !ok {
			name = strings.ToLower(strings.Join(f.path, "-"))
		}
		fset.Var(flagValue{f.v}, name, "")
	}
	if err := fset.Parse(args); err != nil {
		return fmt.Errorf("flags: %w", err)
	}
	if fset.NArg() > 0 {
		return fmt.Errorf("flags: unexpected argument %q", fset.Arg(0))
	}
	return nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// LogLevels are the accepted LogLevel values.
var LogLevels = []string{"DEBUG", "INFO", "WARN", "ERROR", "CRIT"}

func (c *Config) validate() []error {
	var errs []error
	c.LogLevel = strings.ToUpper(c.LogLevel)
	if !slices.Contains(LogLevels, c.LogLevel) {
		errs = append(errs, fmt.Errorf("LogLevel: %q is not one of %s", c.LogLevel, strings.Join(LogLevels, ", ")))
	}
	if c.Address == "" {
		errs = append(errs, errors.New("Address: must not be empty"))
	}
	if c.TilePath == "" {
		errs = append(errs, errors.New("TilePath: required: the directory of source images (env RAIS_TILEPATH, flag -tile-path)"))
	} else if fi, err := os.Stat(c.TilePath); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("TilePath: %q does not exist", c.TilePath))
		} else {
			errs = append(errs, fmt.Errorf("TilePath: %w", err))
		}
	} else if !fi.IsDir() {
		errs = append(errs, fmt.Errorf("TilePath: %q is not a directory", c.TilePath))
	}
	if !strings.HasPrefix(c.IIIFWebPath, "/") {
		errs = append(errs, fmt.Errorf("IIIFWebPath: %q must start with /", c.IIIFWebPath))
	}
	if c.IIIFBaseURL != "" && !strings.HasPrefix(c.IIIFBaseURL, "http://") && !strings.HasPrefix(c.IIIFBaseURL, "https://") {
		errs = append(errs, fmt.Errorf("IIIFBaseURL: %q must start with http:// or https://", c.IIIFBaseURL))
	}
	for name, n := range map[string]int64{"InfoCacheLen": int64(c.InfoCacheLen), "TileCacheLen": int64(c.TileCacheLen),
		"ImageMaxArea": c.ImageMaxArea, "ImageMaxWidth": int64(c.ImageMaxWidth), "ImageMaxHeight": int64(c.ImageMaxHeight),
		"RenderConcurrency": int64(c.RenderConcurrency), "VipsConcurrency": int64(c.VipsConcurrency)} {
		if n < 0 {
			errs = append(errs, fmt.Errorf("%s: %d must be >= 0", name, n))
		}
	}
	if c.JPGQuality < 1 || c.JPGQuality > 100 {
		errs = append(errs, fmt.Errorf("JPGQuality: %d must be between 1 and 100", c.JPGQuality))
	}
	if c.RenderQueueLen < -1 {
		errs = append(errs, fmt.Errorf("RenderQueueLen: %d must be -1 (no queue), 0 (default) or more", c.RenderQueueLen))
	}
	if c.RenderTimeout <= 0 {
		errs = append(errs, errors.New("RenderTimeout: must be > 0"))
	}
	if c.UntiledTileSize < 16 || c.UntiledTileSize > 4096 {
		errs = append(errs, fmt.Errorf("UntiledTileSize: %d must be between 16 and 4096", c.UntiledTileSize))
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

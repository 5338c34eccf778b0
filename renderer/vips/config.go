package vips

import "github.com/iiif-proxy/iiif-proxy/renderer/vipsconf"

// Config configures a Vips renderer. It is owned by package vipsconf
// (cgo-free, so the configuration package takes its defaults and checks
// from there): see vipsconf.Config for every field, vipsconf.Default for
// the defaults, and Validate for the checks.
type Config = vipsconf.Config

// DefaultConfig returns the renderer's defaults (vipsconf.Default).
func DefaultConfig() Config { return vipsconf.Default() }

// DefaultVipsConcurrency is what a zero Options.Concurrency means.
const DefaultVipsConcurrency = vipsconf.DefaultVipsConcurrency

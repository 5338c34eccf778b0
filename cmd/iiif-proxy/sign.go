package main

import (
	"fmt"
	"os"
	"time"

	"github.com/iiif-proxy/iiif-proxy/internal/config"
	"github.com/iiif-proxy/iiif-proxy/proxy"
)

// signCmd prints a signed URL for a protected image:
//
//	iiif-proxy sign /iiif/3/private%2Fscan.tif/info.json -expires 24h
//	/iiif/signed/1767225600.q1Qf…/3/private%2Fscan.tif/info.json
//
// The URL may be a path or a full URL; the keys and IIIFWebPath come from
// the configuration, as the server reads them.
func signCmd(args []string) int {
	fs := newFlagSet("sign", "sign [-config FILE] [-expires 24h] URL-PATH\n\n"+
		"Prints URL-PATH (a path or a full URL under IIIFWebPath) with a signature, for an image under SignedPrefixes.")
	file := fs.String("config", config.Find(), "Configuration file to read SigningKeys, SigningKeyFile and IIIFWebPath from.")
	expires := fs.Duration("expires", 24*time.Hour, "How long the signed URL stays valid.")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	// Flags may follow the URL too ("sign URL -expires 1h").
	var target string
	if fs.NArg() > 0 {
		target = fs.Arg(0)
		if code, done := parseFlags(fs, fs.Args()[1:]); done {
			return code
		}
	}
	if target == "" || fs.NArg() > 0 || *expires <= 0 {
		fs.Usage()
		return 2
	}
	cfg, _, err := config.Load(*file, os.Environ(), nil)
	if len(cfg.SigningKeys) == 0 {
		fmt.Fprintln(os.Stderr, "iiif-proxy sign: no signing key configured (SigningKeyFile, RAIS_SIGNINGKEYS or SigningKeys)")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		return 1
	}
	signer, err := proxy.NewSigner(cfg.SignedPrefixes, cfg.SigningKeys)
	if err != nil {
		fmt.Fprintln(os.Stderr, "iiif-proxy sign:", err)
		return 1
	}
	signed, id, err := signer.SignURL(cfg.IIIFWebPath, target, time.Now().Add(*expires))
	if err != nil {
		fmt.Fprintln(os.Stderr, "iiif-proxy sign:", err)
		return 2
	}
	if !signer.Protected(id) {
		fmt.Fprintf(os.Stderr, "iiif-proxy sign: note: %q is under none of SignedPrefixes %q; it is served unsigned too\n", id, cfg.SignedPrefixes)
	}
	fmt.Println(signed)
	return 0
}

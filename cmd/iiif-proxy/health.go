package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/iiif-proxy/iiif-proxy/internal/config"
)

// healthCmd asks a running server's IIIF listener for /healthz: exit 0 when
// it answers 200 "ok", 1 otherwise. It is the Docker image's HEALTHCHECK
// (which has no curl), and a probe for any supervisor.
func healthCmd(args []string) int {
	fs := newFlagSet("health", "health [-config FILE] [-address HOST:PORT] [-timeout D]\n\n"+
		"Asks the running server's IIIF listener for /healthz; exit status 0 when it answers, 1 when not.")
	file := fs.String("config", config.Find(), "Configuration file to read Address from.")
	addr := fs.String("address", "", "Address of the running server's IIIF listener (default: Address from the configuration).")
	timeout := fs.Duration("timeout", 2*time.Second, "Longest the probe may take.")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *addr == "" {
		// Only Address matters: a configuration with other problems is
		// used as far as it loaded.
		cfg, _, _ := config.Load(*file, os.Environ(), nil)
		*addr = cfg.Address
	}
	if err := probeHealth(*addr, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "iiif-proxy health:", err)
		return 1
	}
	fmt.Println("ok")
	return 0
}

// probeHealth GETs /healthz at addr (":12415" means this host's loopback).
func probeHealth(addr string, timeout time.Duration) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		return fmt.Errorf("%s/healthz answered %d %q", addr, resp.StatusCode, body)
	}
	return nil
}

package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/iiif-proxy/iiif-proxy/internal/config"
)

// adminCmd runs "purge" and "stats": calls to the admin API of a running
// iiif-proxy, found through the same configuration (AdminAddress,
// AdminToken) or the -admin and -token flags.
func adminCmd(name string, args []string) int {
	usage := "stats [-config FILE] [-admin HOST:PORT] [-token TOKEN]"
	if name == "purge" {
		usage = "purge [-config FILE] [-admin HOST:PORT] [-token TOKEN] (IDENTIFIER… | -tier TIER | -all)"
	}
	fs := newFlagSet(name, usage)
	file := fs.String("config", config.Find(), "configuration file to read AdminAddress and AdminToken from")
	admin := fs.String("admin", "", "admin address (default: AdminAddress from the configuration)")
	token := fs.String("token", "", "bearer token (default: AdminToken from the configuration)")
	tier := fs.String("tier", "", "purge: a whole tier (tile, thumbnail, info, other)")
	all := fs.Bool("all", false, "purge: everything")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, _, _ := config.Load(*file, os.Environ(), nil) // only the admin keys matter here
	if *admin == "" {
		*admin = cfg.AdminAddress
	}
	if *token == "" {
		*token = cfg.AdminToken
	}
	if strings.HasPrefix(*admin, ":") {
		*admin = "127.0.0.1" + *admin
	}
	base := "http://" + *admin
	var reqs []*http.Request
	switch {
	case name == "stats":
		r, _ := http.NewRequest(http.MethodGet, base+"/stats", nil)
		reqs = append(reqs, r)
	case *all:
		r, _ := http.NewRequest(http.MethodDelete, base+"/cache", nil)
		reqs = append(reqs, r)
	case *tier != "":
		r, _ := http.NewRequest(http.MethodDelete, base+"/cache/tiers/"+url.PathEscape(*tier), nil)
		reqs = append(reqs, r)
	case fs.NArg() > 0:
		for _, id := range fs.Args() {
			r, _ := http.NewRequest(http.MethodDelete, base+"/cache/ids/"+url.PathEscape(id), nil)
			reqs = append(reqs, r)
		}
	default:
		fs.Usage()
		return 2
	}
	client := &http.Client{Timeout: 5 * time.Minute}
	for _, r := range reqs {
		if *token != "" {
			r.Header.Set("Authorization", "Bearer "+*token)
		}
		resp, err := client.Do(r)
		if err != nil {
			fmt.Fprintf(os.Stderr, "iiif-proxy %s: %v (is iiif-proxy running, with AdminAddress %s?)\n", name, err, *admin)
			return 1
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		os.Stdout.Write(body)
		if resp.StatusCode != http.StatusOK {
			fmt.Fprintf(os.Stderr, "iiif-proxy %s: %s\n", name, resp.Status)
			return 1
		}
	}
	return 0
}

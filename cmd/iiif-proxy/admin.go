package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/iiif-proxy/iiif-proxy/internal/config"
	"github.com/iiif-proxy/iiif-proxy/proxy"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/store"
)

// adminCmd runs "purge" and "stats": calls to the admin API of a running
// iiif-proxy, found through the same configuration (AdminAddress,
// AdminToken) or the -admin and -token flags.
func adminCmd(name string, args []string) int {
	usage := "stats [-config FILE] [-admin HOST:PORT] [-json]\n\nPrints the running server's cache and renderer counters, with each tier's hit ratio, and each store's live bytes, bytes on disk, budget, fixed overhead and removals by cause."
	if name == "purge" {
		usage = "purge [-config FILE] [-admin HOST:PORT] (IDENTIFIER… | -tier TIER | -all)\n\n" +
			"Drops cached derivatives from the running server: every derivative of each IDENTIFIER, a whole tier, or everything."
	}
	fs := newFlagSet(name, usage)
	file := fs.String("config", config.Find(), "Configuration file to read AdminAddress and AdminToken from.")
	admin := fs.String("admin", "", "Admin address of the running server (default: AdminAddress from the configuration).")
	token := fs.String("token", "", "Bearer token (default: AdminToken, AdminTokenFile or RAIS_ADMINTOKEN from the configuration); a flag shows in ps.")
	// Each command has only its own flags, so its -h lists only those.
	var asJSON, all *bool
	var tier *string
	if name == "stats" {
		asJSON = fs.Bool("json", false, "Print the JSON of /stats as the server sends it, instead of a table.")
	} else {
		tier = fs.String("tier", "", "Purge a whole tier: tile, thumbnail, info or other.")
		all = fs.Bool("all", false, "Purge everything, in every tier.")
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if bad := adminArgsProblem(name, fs.NArg(), tier, all); bad != "" {
		fmt.Fprintf(os.Stderr, "iiif-proxy %s: %s\n\n", name, bad)
		fs.Usage()
		return 2
	}
	// Only the admin keys matter here, so a configuration with problems is
	// used as far as it loaded; its problems are shown if the server then
	// refuses us, as an unreadable AdminTokenFile is the likely cause.
	tokenGiven := *token != ""
	cfg, _, cfgErr := config.Load(*file, os.Environ(), nil)
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
	case all != nil && *all:
		r, _ := http.NewRequest(http.MethodDelete, base+"/cache", nil)
		reqs = append(reqs, r)
	case tier != nil && *tier != "":
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
		if name == "stats" && !(asJSON != nil && *asJSON) && resp.StatusCode == http.StatusOK {
			if err := printStats(os.Stdout, body); err != nil {
				fmt.Fprintf(os.Stderr, "iiif-proxy stats: %v\n", err)
				return 1
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			// The server's JSON error says what was wrong: say it once, on
			// stderr, with the status.
			var e struct{ Error string }
			if json.Unmarshal(body, &e) == nil && e.Error != "" {
				fmt.Fprintf(os.Stderr, "iiif-proxy %s: %s: %s\n", name, resp.Status, e.Error)
			} else {
				fmt.Fprintf(os.Stderr, "iiif-proxy %s: %s\n", name, resp.Status)
			}
			refused := resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden
			if refused && !tokenGiven && cfgErr != nil {
				fmt.Fprintf(os.Stderr, "iiif-proxy %s: the token comes from the configuration (%s), which has problems:\n  %s\n",
					name, orNone(*file), strings.ReplaceAll(cfgErr.Error(), "\n", "\n  "))
			}
			return 1
		}
		os.Stdout.Write(body)
	}
	return 0
}

// adminArgsProblem says what is wrong with a stats or purge command line
// (nargs identifiers, -tier, -all), or "".
func adminArgsProblem(name string, nargs int, tier *string, all *bool) string {
	if name == "stats" {
		if nargs > 0 {
			return "stats takes no arguments"
		}
		return ""
	}
	given := 0
	for _, b := range []bool{nargs > 0, *tier != "", *all} {
		if b {
			given++
		}
	}
	if given > 1 {
		return "give identifiers, -tier or -all: one of them"
	}
	if *tier != "" {
		if _, ok := rules.ParseTier(*tier); !ok {
			return fmt.Sprintf("no tier %q: tile, thumbnail, info or other", *tier)
		}
	}
	return ""
}

// printDisk prints the disk side of each tier that has a store: live bytes
// (as MaxBytes counts them), bytes on disk, the budget and the bound the
// directory is kept under (1.2 × budget + slack), the fixed overhead, the
// store's own hit ratio, the entries removed by cause and the Puts declined
// while the directory was over its bound.
func printDisk(w io.Writer, st *proxy.Stats) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tier	live bytes	on disk	budget	bound	fixed overhead	store hit ratio	evicted: budget	retention	purge	corrupt	declined	")
	rows := 0
	for _, name := range []string{"tile", "thumbnail", "info", "other"} {
		t, ok := st.Tiers[name]
		if !ok || t.Store == nil {
			continue
		}
		s := t.Store
		budget, bound := "none", "-"
		if s.MaxBytes > 0 {
			budget = strconv.FormatInt(s.MaxBytes, 10)
			bound = strconv.FormatInt(s.MaxBytes+s.MaxBytes/5+store.DiskSlack, 10)
		}
		ratio := "-"
		if s.Hits+s.Misses > 0 {
			ratio = fmt.Sprintf("%.2f%%", 100*s.HitRatio)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t\n", name, s.Bytes, s.DiskBytes, budget, bound,
			s.FixedOverhead, ratio, s.Evicted, s.Expired, s.Purged, s.Corrupt, s.Declined)
		rows++
	}
	if rows > 0 {
		fmt.Fprintln(w)
		_ = tw.Flush()
	}
}

// printStats prints /stats as a table: per tier, every request counts once
// as a memory hit, a disk hit, a miss (a render started) or a collapsed
// miss (it waited for another request's render), and the hit ratio is the
// hits over all four.
func printStats(w io.Writer, body []byte) error {
	var st proxy.Stats
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("reading /stats: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tier\tmemory hits\tdisk hits\tshared hits\tmisses\tcollapsed\thit ratio\tentries\tbytes\ttoo large\tfaults\t")
	for _, name := range []string{"tile", "thumbnail", "info", "other"} {
		t, ok := st.Tiers[name]
		if !ok {
			continue
		}
		entries, bytes := "-", "-"
		if t.Store != nil {
			entries, bytes = strconv.FormatInt(t.Store.Entries, 10), strconv.FormatInt(t.Store.Bytes, 10)
		}
		ratio := "-"
		if t.MemoryHits+t.DiskHits+t.SharedHits+t.Misses+t.Collapsed > 0 {
			ratio = fmt.Sprintf("%.2f%%", 100*t.HitRatio)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t%d\t\n", name, t.MemoryHits, t.DiskHits, t.SharedHits,
			t.Misses, t.Collapsed, ratio, entries, bytes, t.TooLarge, t.Faults)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	printDisk(w, &st)
	f := st.InFlight
	fmt.Fprintf(w, "in flight: %d bytes in %d responses (limit %d), %d refused\n", f.Bytes, f.Responses, f.Limit, f.Refused)
	if r := st.Renderer; r != nil {
		fmt.Fprintf(w, "renderer: %d renders, %d passthrough, %d failures, %d overloaded, %d running, %d queued\n",
			r.Renders, r.Passthrough, r.Failures, r.Overloaded, r.InFlight, r.Queued)
		if so := r.Sources; so != nil {
			fmt.Fprintf(w, "S3 sources s3://%s/%s: breaker %s, %d requests (%d not modified, %d errors, %d refused), %d bytes fetched; source cache %d of %d bytes, %d objects (%d whole), %d evicted\n",
				so.Bucket, so.Prefix, so.Breaker, so.Stats+so.Gets, so.NotModified, so.Errors, so.Refused, so.FetchedBytes,
				so.Bytes, so.MaxBytes, so.Objects, so.Whole, so.Evicted)
		}
		if p := r.Pyramids; p != nil {
			fmt.Fprintf(w, "automatic pyramids: %d ready, %d of %d bytes; builds %d started, %d succeeded, %d failed, %d running, %d queued\n",
				p.Files, p.Bytes, p.MaxBytes, p.Started, p.Succeeded, p.Failed, p.Building, p.Queued)
			for _, b := range p.InProgress {
				fmt.Fprintf(w, "  building %s: %d%% after %.0f s\n", b.ID, b.Percent, b.Seconds)
			}
		}
	}
	for _, f := range st.PurgeForward {
		fmt.Fprintf(w, "purge forwarding to %s: %d sent, %d failed, %d retried, %d dropped, %d queued\n",
			f.Target, f.Sent, f.Failed, f.Retried, f.Dropped, f.Queued)
	}
	if s := st.Shared; s != nil {
		fmt.Fprintf(w, "shared tier: breaker %s, %d hits, %d misses, %d writes, %d drops, %d errors, %d rejected, %d corrupt, %d lease waits, queue %d (%d bytes)\n",
			s.Breaker, s.Hits, s.Misses, s.Writes, s.Drops, s.Errors, s.Rejected, s.Corrupt, s.LeaseWaits, s.QueueLen, s.QueueBytes)
	}
	return nil
}

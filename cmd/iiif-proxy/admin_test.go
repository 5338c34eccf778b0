package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/iiif-proxy/iiif-proxy/store"
)

// printStats counts memory hits in the hit ratio and one miss per miss.
func TestPrintStatsHitRatio(t *testing.T) {
	body := `{"tiers": {
	  "tile": {"memoryHits": 6, "diskHits": 2, "sharedHits": 3, "misses": 1, "collapsed": 1, "hitRatio": 0.846,
	           "store": {"Hits": 4, "Misses": 2, "Entries": 3, "Bytes": 4096, "DiskBytes": 9000, "MaxBytes": 10000,
	                     "FixedOverhead": 2105344, "HitRatio": 0.6666, "Evicted": 7, "Expired": 5, "Purged": 3, "Corrupt": 1, "Declined": 2}},
	  "info": {"memoryHits": 0, "diskHits": 0, "misses": 0, "collapsed": 0}},
	 "inFlight": {"bytes": 10, "responses": 1, "limit": 512, "refused": 2},
	 "renderer": {"Renders": 5, "Pyramids": {"Files": 1, "Bytes": 2048, "MaxBytes": 4096, "Started": 3, "Succeeded": 1,
	              "Failed": 1, "Building": 1, "InProgress": [{"ID": "scan.jpg", "Seconds": 12.4, "Percent": 37}]}},
	 "purgeForward": [{"target": "ban http://127.0.0.1:6081", "sent": 3, "failed": 2, "retried": 1, "dropped": 1, "queued": 0}],
	 "shared": {"breaker": "open", "hits": 3, "errors": 4, "rejected": 9}}`
	var out strings.Builder
	if err := printStats(&out, []byte(body)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	var tile, info string
	for _, l := range lines {
		switch f := strings.Fields(l); {
		case len(f) > 0 && f[0] == "tile" && tile == "": // the first table's
			tile = strings.Join(f, " ")
		case len(f) > 0 && f[0] == "info":
			info = strings.Join(f, " ")
		}
	}
	if tile != "tile 6 2 3 1 1 84.60% 3 4096 0 0" {
		t.Errorf("tile row %q", tile)
	}
	if info != "info 0 0 0 0 0 - - - 0 0" {
		t.Errorf("info row %q", info)
	}
	if !strings.Contains(out.String(), "shared tier: breaker open, 3 hits, 0 misses, 0 writes, 0 drops, 4 errors, 9 rejected") {
		t.Errorf("no shared-tier line:\n%s", out.String())
	}
	// The disk table: the tile tier only (info has no store).
	var disk []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && (f[0] == "tile" || f[0] == "info") {
			disk = append(disk, strings.Join(f, " "))
		}
	}
	bound := 10000 + 2000 + store.DiskSlack
	if want := fmt.Sprintf("tile 4096 9000 10000 %d 2105344 66.66%% 7 5 3 1 2", bound); len(disk) != 3 || disk[2] != want {
		t.Errorf("disk rows %q, want the third to be %q", disk, want)
	}
	if !strings.Contains(out.String(), "in flight: 10 bytes in 1 responses (limit 512), 2 refused") {
		t.Errorf("no in-flight line:\n%s", out.String())
	}
	for _, want := range []string{
		"automatic pyramids: 1 ready, 2048 of 4096 bytes; builds 3 started, 1 succeeded, 1 failed, 1 running, 0 queued",
		"  building scan.jpg: 37% after 12 s",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no line %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(out.String(), "purge forwarding to ban http://127.0.0.1:6081: 3 sent, 2 failed, 1 retried, 1 dropped, 0 queued") {
		t.Errorf("no purge forwarding line:\n%s", out.String())
	}
}

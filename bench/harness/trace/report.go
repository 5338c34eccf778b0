package trace

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/iiif-proxy/iiif-proxy/bench/harness/cachesim"
)

// PrintSummary writes a replay's hit ratios by tier as a table.
func PrintSummary(w io.Writer, sum []TierSummary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tier\twith X-Cache\thits\thit ratio\tbyte hit ratio\tof which COLLAPSED\tnon-2xx\tno X-Cache\terrors\t")
	for _, s := range sum {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t\n", s.Tier, s.Requests, s.Hits, pct(s.HitRatio()),
			pct(s.ByteHitRatio()), s.Collapsed, s.Non2xx, s.NoCache, s.Errors)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "Hits: X-Cache HIT, REVALIDATED, STALE, UPDATING, SHARED and COLLAPSED (answered by a concurrent request's render, as the simulator would count it).")
	return err
}

// PrintSim writes one budget's simulation as a table: each policy's hits,
// hit ratio, ratio to LRU, byte hit ratio and evictions. measured, if not
// nil, is the replayed server's own line.
func PrintSim(w io.Writer, results []cachesim.Result, measured *TierSummary) error {
	var lru float64
	for _, r := range results {
		if r.Policy == cachesim.LRU {
			lru = r.HitRatio()
		}
	}
	vsLRU := func(x float64) string {
		if lru == 0 {
			return "-"
		}
		return fmt.Sprintf("%.3f", x/lru)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\trequests\thits\thit ratio\t× LRU\tbyte hit ratio\tevictions\t")
	if m := measured; m != nil {
		fmt.Fprintf(tw, "server (replay)\t%d\t%d\t%s\t%s\t%s\t-\t\n", m.Requests, m.Hits, pct(m.HitRatio()),
			vsLRU(m.HitRatio()), pct(m.ByteHitRatio()))
	}
	for _, r := range results {
		name := r.Policy
		switch name {
		case cachesim.OPT:
			name = "OPT (Belady)*"
		case cachesim.Bound:
			name = "compulsory bound"
		}
		ev := fmt.Sprint(r.Evictions)
		if r.Policy == cachesim.Bound {
			ev = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t\n", name, r.Requests, r.Hits, pct(r.HitRatio()),
			vsLRU(r.HitRatio()), pct(r.ByteHitRatio()), ev)
	}
	return tw.Flush()
}

// OPTNote explains the OPT line.
const OPTNote = "* OPT: Belady's rule for variable sizes, evict the entry whose next use is furthest (the incoming object competes, so it may bypass); a heuristic, since exact OPT with variable sizes is NP-hard."

func pct(x float64) string { return fmt.Sprintf("%.1f %%", 100*x) }

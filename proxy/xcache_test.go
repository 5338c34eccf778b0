package proxy

// X-Cache values, as tests expect them (cache.How's String).
const (
	xHit         = "HIT"
	xRevalidated = "REVALIDATED"
	xStale       = "STALE"
	xMiss        = "MISS"
	xCollapsed   = "COLLAPSED"
	xBypass      = "BYPASS"
)

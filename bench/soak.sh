#!/bin/bash
# A soak: the harness's mix workload against iiif-proxy for a long time at a
# fixed open-loop rate, sampling the server's RSS, goroutines, open files,
# the disk held by each cache tier and the cache filesystem's free space.
# Writes $DIR/soak.csv, $DIR/bench.json and the plot $DIR/soak.svg.
# Run by hand (docs/RELIABILITY.md has the figures); not part of make test.
#
# usage: bench/soak.sh
#
# Environment (defaults in brackets):
#   DURATION   how long the mix runs                                  [30m]
#   RATE       requests/s, open loop (pick the machine's sustainable rate:
#              a short closed-loop run of the same mix first)           [400]
#   INTERVAL   seconds between samples                                  [15]
#   SAMPLES    image directory; generated with `iiif-proxy samples` if missing
#                                                         [/tmp/soak/samples]
#   IDS        identifiers to request, comma-separated; empty = every image in
#              SAMPLES (the 236-megapixel plain JPEG's full-resolution tiles
#              cost seconds each: leave it out for a rate a 2-core machine
#              sustains)                                                    []
#   DIR        work directory: binary, cache, logs, results          [/tmp/soak]
#   ADDR       IIIF listen address (loopback only)               [127.0.0.1:12515]
#   ADMIN      admin listen address (loopback only)              [127.0.0.1:12516]
# Other RAIS_* variables pass through. By default the tile and thumbnail tiers
# get small budgets (64 MB, 16 MB) so that eviction runs all along.
set -euo pipefail
NAME=soak
# shellcheck source=peers/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/peers/lib.sh"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-30m}
RATE=${RATE:-400}
INTERVAL=${INTERVAL:-15}
DIR=${DIR:-/tmp/soak}
SAMPLES=${SAMPLES:-$DIR/samples}
ADDR=${ADDR:-127.0.0.1:12515}
ADMIN=${ADMIN:-127.0.0.1:12516}
require_loopback ADDR "$ADDR"
require_loopback ADMIN "$ADMIN"
export PATH=/usr/local/go/bin:$PATH

mkdir -p "$DIR"
cd "$REPO"
go build -o "$DIR/iiif-proxy" ./cmd/iiif-proxy
go build -o "$DIR/iiif-bench" ./bench/cmd/iiif-bench
go build -o "$DIR/soakplot" ./bench/cmd/soakplot
[ -d "$SAMPLES" ] || "$DIR/iiif-proxy" samples -dir "$SAMPLES"
rm -rf "$DIR/cache"

RAIS_TIERS_TILE_MAXBYTES=${RAIS_TIERS_TILE_MAXBYTES:-64MB} \
RAIS_TIERS_THUMBNAIL_MAXBYTES=${RAIS_TIERS_THUMBNAIL_MAXBYTES:-16MB} \
  "$DIR/iiif-proxy" -config /dev/null -tile-path "$SAMPLES" -cache-dir "$DIR/cache" \
  -address "$ADDR" -admin-address "$ADMIN" >"$DIR/server.log" 2>&1 &
SERVER=$!
BENCH=""
cleanup() {
  [ -n "$BENCH" ] && kill "$BENCH" 2>/dev/null || true
  kill -TERM "$SERVER" 2>/dev/null || true
  wait_gone "$SERVER" 300 || kill -KILL "$SERVER" 2>/dev/null || true
}
trap cleanup EXIT
wait_listen "$ADDR" 100 || die "server did not listen on $ADDR (see $DIR/server.log)"
log "server PID $SERVER on $ADDR; mix at $RATE req/s for $DURATION"

IDARGS=(-ids-dir "$SAMPLES")
[ -n "${IDS:-}" ] && IDARGS=(-ids "$IDS")
"$DIR/iiif-bench" -target "http://$ADDR/iiif/3" "${IDARGS[@]}" -workload mix \
  -rate "$RATE" -c 64 -d "$DURATION" -warmup 0s -progress 60s -json "$DIR/bench.json" \
  >"$DIR/bench.log" 2>&1 &
BENCH=$!

metric() { # metric NAME: sum of a metric's samples on /metrics (0 if absent)
  curl -s "http://$ADMIN/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%d", s }'
}
echo "seconds,rss_mb,goroutines,open_files,tile_mb,thumbnail_mb,info_mb,other_mb,cache_free_mb,responses_5xx" >"$DIR/soak.csv"
start=$(date +%s)
while kill -0 "$BENCH" 2>/dev/null; do
  now=$(( $(date +%s) - start ))
  rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER/status")
  fds=$(find "/proc/$SERVER/fd" -mindepth 1 -maxdepth 1 | wc -l)
  tiers=""
  for t in tile thumbnail info other; do
    tiers="$tiers,$(du -sk "$DIR/cache/$t" 2>/dev/null | awk '{ printf "%.1f", $1 / 1024 }')"
  done
  free=$(df -Pk "$DIR/cache" | awk 'NR == 2 { printf "%d", $4 / 1024 }')
  errs=$(curl -s "http://$ADMIN/metrics" | awk '/^iiif_responses_total\{code="5/ { s += $2 } END { printf "%d", s }')
  echo "$now,$rss,$(metric go_goroutines),$fds$tiers,$free,$errs" >>"$DIR/soak.csv"
  sleep "$INTERVAL"
done
wait "$BENCH" || die "iiif-bench failed (see $DIR/bench.log)"
BENCH=""
"$DIR/soakplot" -title "iiif-proxy soak: mix at $RATE req/s for $DURATION" "$DIR/soak.csv" >"$DIR/soak.svg"
kill -0 "$SERVER" || die "the server exited during the soak (see $DIR/server.log)"
log "done: $DIR/soak.csv, $DIR/soak.svg, $DIR/bench.json; bench summary:"
tail -n 30 "$DIR/bench.log" >&2

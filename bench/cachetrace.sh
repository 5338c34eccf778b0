#!/bin/bash
# Cache policy on request traces (issue 11): iiif-proxy's tile-tier hit ratio
# against offline FIFO, LRU, SIEVE, S3-FIFO, Belady's OPT and the
# compulsory-miss bound, on the same traces with the same byte budget.
#
#  1. a corpus of large pyramidal TIFFs (iiif-bench corpus);
#  2. two traces (iiif-bench trace gen): viewer sessions only, and the same
#     with a crawler sending CRAWL of the requests;
#  3. a sizing pass: each trace replayed as fast as it goes against a server
#     with no tile budget, for the size of every tile (the distinct payload);
#  4. per trace, a fresh server with a tile budget of SHARE % of that
#     payload and TileCacheLen 0 (every hit from the disk tier), the trace
#     replayed at RATE requests/s over one connection (so the server sees the
#     trace's order, as the simulator does);
#  5. iiif-bench trace sim on the replay records: the server's hit ratio
#     beside the policies' at the same budget. The tile directory's size
#     is sampled every EVERY s during the replay and IDLE s after it
#     (disk-TRACE-SHARE.csv), and /stats saved (stats-TRACE-SHARE.json).
# Writes everything under $DIR; prints the sim tables. Run by hand
# (bench/RESULTS.md has the figures); not part of make test.
#
# usage: bench/cachetrace.sh
#
# Environment (defaults in brackets):
#   DIR     work directory: binaries, corpus, traces, caches, results [/tmp/cachetrace]
#   N       requests per trace                                           [30000]
#   RATE    replay rate, requests/s                                        [250]
#   SHARE   tile budget, % of the trace's distinct tile payload             [20]
#   SHARES  several budgets, one server run each (e.g. "5 20 50")       [$SHARE]
#   IDLE    seconds the server stays up, idle, after each replay            [20]
#   EVERY   seconds between samples of the tile directory                    [2]
#   REUSE   0: generate and size the traces again even if DIR has them       [1]
#   CRAWL   crawler's share of requests in the second trace                [0.2]
#   COUNT   images in the corpus (8,000–16,000 px a side)                    [5]
#   SEED    trace seed                                                       [1]
#   ADDR    IIIF listen address (loopback only)               [127.0.0.1:12515]
#   ADMIN   admin listen address (loopback only)              [127.0.0.1:12516]
set -euo pipefail
NAME=cachetrace
# shellcheck source=peers/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/peers/lib.sh"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${DIR:-/tmp/cachetrace}
N=${N:-30000}
RATE=${RATE:-250}
SHARE=${SHARE:-20}
SHARES=${SHARES:-$SHARE}
IDLE=${IDLE:-20}
EVERY=${EVERY:-2}
CRAWL=${CRAWL:-0.2}
COUNT=${COUNT:-5}
SEED=${SEED:-1}
ADDR=${ADDR:-127.0.0.1:12515}
ADMIN=${ADMIN:-127.0.0.1:12516}
require_loopback ADDR "$ADDR"
require_loopback ADMIN "$ADMIN"
export PATH=/usr/local/go/bin:$PATH
BASE=http://$ADDR/iiif/3

mkdir -p "$DIR"
cd "$REPO"
go build -o "$DIR/iiif-proxy" ./cmd/iiif-proxy
go build -o "$DIR/iiif-bench" ./bench/cmd/iiif-bench
"$DIR/iiif-bench" corpus -count "$COUNT" -formats tif -min-side 8000 -max-side 16000 "$DIR/corpus" >&2

SERVER=""
# start NAME BUDGET: a server with an empty cache in $DIR/cache-NAME.
start() {
  rm -rf "$DIR/cache-$1"
  "$DIR/iiif-proxy" -config /dev/null -tile-path "$DIR/corpus" -cache-dir "$DIR/cache-$1" \
    -tile-cache-size 0 -tiers-tile-maxbytes "$2" -address "$ADDR" -admin-address "$ADMIN" \
    >"$DIR/server-$1.log" 2>&1 &
  SERVER=$!
  wait_listen "$ADDR" 100 || die "server did not listen on $ADDR (see $DIR/server-$1.log)"
  log "server PID $SERVER, tile budget $2 bytes"
}
stop() {
  [ -n "$SERVER" ] || return 0
  kill -TERM "$SERVER" 2>/dev/null || true
  wait_gone "$SERVER" 300 || kill -KILL "$SERVER" 2>/dev/null || true
  SERVER=""
}
SAMPLER=""
trap 'stop; [ -z "$SAMPLER" ] || kill "$SAMPLER" 2>/dev/null || true' EXIT

# The traces and their sizing pass are deterministic (corpus, N, SEED,
# CRAWL): kept from an earlier run in the same DIR unless REUSE=0.
if [ "${REUSE:-1}" = 1 ] && [ -s "$DIR/size-viewer.csv" ] && [ -s "$DIR/size-crawl.csv" ]; then
  log "reusing $DIR/{viewer,crawl}.trace and their sizes"
else
  start size 0
  "$DIR/iiif-bench" trace gen -target "$BASE" -ids-dir "$DIR/corpus" -n "$N" -seed "$SEED" -o "$DIR/viewer.trace"
  "$DIR/iiif-bench" trace gen -target "$BASE" -ids-dir "$DIR/corpus" -n "$N" -seed "$SEED" -crawl "$CRAWL" \
    -o "$DIR/crawl.trace"
  for t in viewer crawl; do
    "$DIR/iiif-bench" trace replay -target "$BASE" -trace "$DIR/$t.trace" -rate 0 -c 2 \
      -records "$DIR/size-$t.csv" -progress 0 >/dev/null
  done
  stop
fi

# sample NAME: every EVERY s, seconds since start and the tile directory's
# bytes (du -sb), into $DIR/disk-NAME.csv, until killed.
sample() {
  local t0 now
  t0=$(date +%s.%N)
  echo "seconds,tile_dir_bytes" >"$DIR/disk-$1.csv"
  while :; do
    now=$(date +%s.%N)
    echo "$(awk -v a="$now" -v b="$t0" 'BEGIN {printf "%.1f", a - b}'),$(du -sb "$DIR/cache-$1/tile" 2>/dev/null | cut -f1)" >>"$DIR/disk-$1.csv"
    sleep "$EVERY"
  done
}

for share in $SHARES; do
for t in viewer crawl; do
  run=$t-$share
  budget=$("$DIR/iiif-bench" trace sim -trace "$DIR/$t.trace" -records "$DIR/size-$t.csv" -budget "$share%" \
    -policies LRU | sed -n 's/^budget [0-9.]*% = \([0-9]*\) bytes.*/\1/p')
  [ -n "$budget" ] || die "no budget for $t"
  start "$run" "$budget"
  sample "$run" &
  SAMPLER=$!
  log "replaying $t.trace at $RATE/s, budget $share %"
  "$DIR/iiif-bench" trace replay -target "$BASE" -trace "$DIR/$t.trace" -rate "$RATE" -c 1 \
    -records "$DIR/rec-$run.csv" -progress 30s >"$DIR/replay-$run.txt"
  sleep "$IDLE" # the server idle after the replay: does the disk come down?
  kill "$SAMPLER"
  wait "$SAMPLER" 2>/dev/null || true
  curl -s "http://$ADMIN/stats" >"$DIR/stats-$run.json" || true
  du -sb "$DIR/cache-$run"/* >"$DIR/du-$run.txt"
  stop
  "$DIR/iiif-bench" trace sim -trace "$DIR/$t.trace" -records "$DIR/rec-$run.csv" -budget "$budget" \
    | tee "$DIR/sim-$run.txt"
  log "tile directory $IDLE s after the replay: $(awk '/\/tile$/ {print $1}' "$DIR/du-$run.txt") bytes for a budget of $budget"
done
done

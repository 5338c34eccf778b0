#!/bin/bash
# Shared render tier (issue 10): what a fleet of iiif-proxy nodes sharing one
# S3 bucket (SharedCache) renders, against the same nodes caching alone.
#
#  1. a corpus of pyramidal TIFFs (iiif-bench corpus) and a viewer trace
#     (iiif-bench trace gen: Zipf-popular images and details);
#  2. for K = 1, 2, 3 nodes, with the shared tier and (K > 1) without: K
#     fresh nodes, the trace dealt out request by request (a load balancer
#     without affinity), each node's part replayed at RATE/K requests/s,
#     all at once; the renders (renderer.Renders + Passthrough in /stats)
#     summed over the nodes, and the fleet's hit ratio from X-Cache (HIT,
#     REVALIDATED, SHARED, COLLAPSED);
#  3. latency: TILES distinct tiles rendered on node A (MISS), then asked of
#     node B (SHARED: from S3, then stored locally), then of B again (HIT,
#     from B's disk tier: TileCacheLen 0), one request at a time.
# The S3 store is a MinIO on loopback (make s3-deps builds it). Writes
# everything under $DIR and prints the tables. Run by hand (bench/RESULTS.md
# has the figures); not part of make test.
#
# usage: bench/fleet.sh
#
# Environment (defaults in brackets):
#   DIR    work directory                                    [/tmp/fleetbench]
#   N      requests in the trace                                       [4000]
#   RATE   replay rate of the whole fleet, requests/s                   [200]
#   COUNT  images in the corpus (6,000–10,000 px a side)                  [4]
#   TILES  tiles of the latency phase                                   [300]
#   SEED   trace seed                                                     [1]
set -euo pipefail
NAME=fleet
# shellcheck source=peers/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/peers/lib.sh"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${DIR:-/tmp/fleetbench}
N=${N:-4000}
RATE=${RATE:-200}
COUNT=${COUNT:-4}
TILES=${TILES:-300}
SEED=${SEED:-1}
MINIO=${MINIO_BIN:-$HOME/.cache/iiif-proxy/bin/minio}
S3=127.0.0.1:12590
KEY=fleetbench
SECRET=fleetbench-secret
BUCKET=fleet
export PATH=/usr/local/go/bin:$PATH
[ -x "$MINIO" ] || die "no MinIO at $MINIO: make s3-deps"

mkdir -p "$DIR"
cd "$REPO"
go build -o "$DIR/iiif-proxy" ./cmd/iiif-proxy
go build -o "$DIR/iiif-bench" ./bench/cmd/iiif-bench
"$DIR/iiif-bench" corpus -count "$COUNT" -formats tif -min-side 6000 -max-side 10000 "$DIR/corpus" >&2

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    wait_gone "$p" 100 || kill -KILL "$p" 2>/dev/null || true
  done
  PIDS=()
}
trap cleanup EXIT

rm -rf "$DIR/s3"
MINIO_ROOT_USER=$KEY MINIO_ROOT_PASSWORD=$SECRET MINIO_BROWSER=off MINIO_UPDATE=off \
  "$MINIO" server --quiet --address "$S3" --console-address 127.0.0.1:12591 "$DIR/s3" >"$DIR/minio.log" 2>&1 &
MINIO_PID=$!
wait_listen "$S3" 300 || die "MinIO did not listen on $S3"
for _ in $(seq 100); do curl -sf "http://$S3/minio/health/ready" >/dev/null && break; sleep 0.1; done
curl -sf -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$KEY:$SECRET" "http://$S3/$BUCKET" >/dev/null ||
  die "could not create the bucket"

# node I SHARED RUN: node I (1-based) of run RUN, with the shared tier at
# s3://$BUCKET/RUN when SHARED is 1; prints its PID.
node() {
  local i=$1 shared=$2 run=$3 extra=()
  [ "$shared" = 1 ] && extra=(-shared-cache "s3://$BUCKET/$run")
  rm -rf "$DIR/cache-$run-$i"
  RAIS_S3_ENDPOINT=$S3 RAIS_S3_DISABLESSL=true RAIS_S3_FORCEPATHSTYLE=true AWS_ACCESS_KEY_ID=$KEY \
    AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=us-east-1 \
    "$DIR/iiif-proxy" -config /dev/null -tile-path "$DIR/corpus" -cache-dir "$DIR/cache-$run-$i" \
    -tile-cache-size 0 -address "127.0.0.1:126$((i))0" -admin-address "127.0.0.1:126$((i))1" "${extra[@]}" \
    >"$DIR/server-$run-$i.log" 2>&1 &
  echo $!
}
addr() { echo "127.0.0.1:126$(($1))0"; }
admin() { echo "127.0.0.1:126$(($1))1"; }
renders() { curl -s "http://$(admin "$1")/stats" | tr ',{}' '\n\n\n' | awk -F: '/"Renders"|"Passthrough"/ {s += $2} END {print s + 0}'; }

# The trace, from one plain node's info.json documents.
PIDS+=("$(node 1 0 trace)")
wait_listen "$(addr 1)" 100 || die "node did not listen"
"$DIR/iiif-bench" trace gen -target "http://$(addr 1)/iiif/3" -ids-dir "$DIR/corpus" -n "$N" -seed "$SEED" \
  -o "$DIR/viewer.trace"
cleanup

printf '%-8s %-7s %9s %8s %9s  %s\n' nodes shared requests renders hitratio "X-Cache" | tee "$DIR/fleet.txt"
for run in 1-shared 2-alone 2-shared 3-alone 3-shared; do
  k=${run%%-*}
  shared=0
  [ "${run#*-}" = shared ] && shared=1
  for i in $(seq "$k"); do
    PIDS+=("$(node "$i" "$shared" "$run")")
    wait_listen "$(addr "$i")" 100 || die "node $i did not listen"
  done
  sleep 1
  # Deal the trace out request by request, keeping each part's order.
  for i in $(seq "$k"); do
    awk -v k="$k" -v i="$i" '/^#/ {print; next} (n++) % k == i - 1' "$DIR/viewer.trace" >"$DIR/part-$run-$i.trace"
  done
  rate=$(awk -v r="$RATE" -v k="$k" 'BEGIN {printf "%.3f", r / k}')
  RP=()
  for i in $(seq "$k"); do
    "$DIR/iiif-bench" trace replay -target "http://$(addr "$i")/iiif/3" -trace "$DIR/part-$run-$i.trace" \
      -rate "$rate" -c 2 -records "$DIR/rec-$run-$i.csv" -progress 0 >"$DIR/replay-$run-$i.txt" &
    RP+=($!)
  done
  wait "${RP[@]}"
  total=0
  for i in $(seq "$k"); do total=$((total + $(renders "$i"))); done
  for i in $(seq "$k"); do curl -s "http://$(admin "$i")/stats" >"$DIR/stats-$run-$i.json"; done
  cleanup
  # Records are CSV whose first field (the path) may hold quoted commas:
  # the fields are read from the right (status, x_cache, ..., error).
  cat "$DIR"/rec-"$run"-*.csv | awk -F, -v k="$k" -v s="$shared" -v r="$total" '
    $(NF-5) == 200 { n++; c[$(NF-4)]++; if ($(NF-4) ~ /^(HIT|REVALIDATED|SHARED|COLLAPSED)$/) h++ }
    END { x = ""; for (w in c) x = x w "=" c[w] " "; printf "%-8s %-7s %9d %8d %8.1f%%  %s\n", k, (s ? "yes" : "no"), n, r, 100 * h / n, x }' |
    tee -a "$DIR/fleet.txt"
done

# Latency: render on A, shared hit on B, local (disk) hit on B.
awk -F'\t' '/^#/ {print; next} $1 ~ /\/[0-9]+,[0-9]+,[0-9]+,[0-9]+\/.*default.jpg$/ && !seen[$1]++ && n++ < t' \
  t="$TILES" "$DIR/viewer.trace" >"$DIR/tiles.trace"
PIDS+=("$(node 1 1 latency)" "$(node 2 1 latency)")
wait_listen "$(addr 1)" 100 && wait_listen "$(addr 2)" 100 || die "latency nodes did not listen"
sleep 1
# lat NODE NAME: each tile once, one request at a time, its time from curl
# (the harness's replay measures from a schedule, which at -rate 0 is the
# start of the run).
lat() {
  grep -v '^#' "$DIR/tiles.trace" | cut -f1 | while read -r path; do
    curl -s -o /dev/null -w '%{http_code} %header{x-cache} %{time_total}\n' "http://$(addr "$1")/iiif/3/$path"
  done >"$DIR/lat-$2.txt"
}
lat 1 render
sleep 2 # the shared writes are queued behind the responses
lat 2 shared
lat 2 local
cleanup
printf '%-8s %6s %9s %9s %9s\n' phase n p50_ms p90_ms p99_ms | tee "$DIR/latency.txt"
for p in render shared local; do
  awk '$1 == 200 {print $2, $3}' "$DIR/lat-$p.txt" | sort -k2 -g | awk -v p="$p" '
    { w[NR] = $1; v[NR] = $2 } END {
      words = ""; for (i = 1; i <= NR; i++) cnt[w[i]]++; for (x in cnt) words = words x "=" cnt[x] " "
      printf "%-8s %6d %9.2f %9.2f %9.2f  %s\n", p, NR, v[int(NR*.5)+1]*1000, v[int(NR*.9)+1]*1000, v[int(NR*.99)+1]*1000, words }' |
    tee -a "$DIR/latency.txt"
done
kill -TERM "$MINIO_PID" 2>/dev/null || true
wait_gone "$MINIO_PID" 100 || kill -KILL "$MINIO_PID" 2>/dev/null || true

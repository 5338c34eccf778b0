#!/bin/bash
# Side-by-side tile rendering: IIPImage (bench/peers/iipimage.sh, FastCGI
# behind nginx, tile cache off) against iiif-proxy with its cache off, with
# and without TilePassthrough, in ONE session, runs interleaved so that both
# see the same machine. Every server is pinned to CPU $SRV_CPU, wrk to
# $BENCH_CPU. Distinct tile URLs (bench/wrk/tiles.lua over 1000 symlinked
# identifiers of the same 20480x11520 pyramidal JPEG TIFF), so no cache helps.
#
# usage: bench/peers/tilebench.sh [REPEAT]
#
# Environment: SRV_CPU [1], BENCH_CPU [0], DURATION [20s], OUT
# [/tmp/peers/tilebench-<time>], BIN (iiif-proxy binary; built if missing)
# [/tmp/peers/iiif-proxy], ONLY (regex of run names) [.].
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PEERS=/tmp/peers
IMAGES=$PEERS/images
SRV_CPU=${SRV_CPU:-1}
BENCH_CPU=${BENCH_CPU:-0}
DUR=${DURATION:-20s}
REPEAT=${1:-2}
OUT=${OUT:-$PEERS/tilebench-$(date +%Y%m%d-%H%M%S)}
BIN=${BIN:-$PEERS/iiif-proxy}
LUA=$HERE/../wrk/tiles.lua
IIP=http://127.0.0.1:18080
ON=127.0.0.1:18090  # iiif-proxy, TilePassthrough on
OFF=127.0.0.1:18091 # iiif-proxy, TilePassthrough off
ONLY=${ONLY:-.}

log() { printf '[tilebench] %s\n' "$*" >&2; }

mkdir -p "$OUT"
[ -x "$BIN" ] || (cd "$REPO" && go build -o "$BIN" ./cmd/iiif-proxy)
IIP_CPU=$SRV_CPU "$HERE/iipimage.sh" corpus >/dev/null
"$HERE/iipimage.sh" links 1000 >/dev/null
IIP_CPU=$SRV_CPU "$HERE/iipimage.sh" start >/dev/null

pids=()
stop_ours() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
}
trap stop_ours EXIT

start_ours() { # address passthrough
  RAIS_TILEPATH=$IMAGES RAIS_CACHEDIR= RAIS_ADDRESS=$1 RAIS_ADMINADDRESS= RAIS_TILECACHELEN=0 \
    RAIS_TILEPASSTHROUGH=$2 RAIS_LOGLEVEL=WARN taskset -c "$SRV_CPU" "$BIN" -config /dev/null \
    >"$OUT/iiif-proxy-$2.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://$1/healthz" && return 0; sleep 0.1; done
  log "iiif-proxy on $1 did not start"; exit 1
}
start_ours "$ON" true
start_ours "$OFF" false

read -r W H < <(vipsheader -f width "$IMAGES/big.tif" | tr '\n' ' '; vipsheader -f height "$IMAGES/big.tif")
cat "$IMAGES/big.tif" >/dev/null # page cache warm: not a disk benchmark
{
  echo "date: $(date -u +%FT%TZ)"
  echo "iipimage-server: $(dpkg-query -W -f '${Version}' iipimage-server) (nginx-light $(dpkg-query -W -f '${Version}' nginx-light), tile cache off)"
  echo "iiif-proxy: $(cd "$REPO" && git rev-parse --short HEAD) (cache off: CacheDir empty, TileCacheLen 0)"
  echo "libvips: $(pkg-config --modversion vips)  wrk: $(dpkg-query -W -f '${Version}' wrk)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc); servers on cpu $SRV_CPU, wrk on cpu $BENCH_CPU"
  echo "image: $(vipsheader "$IMAGES/big.tif")"
} >"$OUT/notes.txt"
printf 'run\tserver\trep\treq/s\tp50\tp99\tnon2xx\n' >"$OUT/summary.tsv"

# run NAME SERVER URL [ENV...] -- WRK_ARGS...
run() {
  local name=$1 server=$2 url=$3
  shift 3
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  [[ $name =~ $ONLY ]] || return 0
  for rep in $(seq 1 "$REPEAT"); do
    local f="$OUT/$name-$server-$rep.txt"
    env "${envs[@]}" taskset -c "$BENCH_CPU" wrk "$@" "$url" >"$f" 2>&1 || true
    local rps p50 p99 bad
    rps=$(awk '/^Requests\/sec/ {print $2}' "$f")
    p50=$(awk '$1=="50%" {print $2}' "$f")
    p99=$(awk '$1=="99%" {print $2}' "$f")
    bad=$(awk '/Non-2xx/ {print $NF} /^non-2xx/ {print $NF}' "$f" | tail -1)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$server" "$rep" "$rps" "$p50" "$p99" "${bad:-0}" | tee -a "$OUT/summary.tsv" >&2
  done
}

common=(WIDTH="$W" HEIGHT="$H" TILE=256 FORMAT=default.jpg SEED=1 STYLE=2)
for kind in scale1-c8 scale8-c8 scale1-c1 full1024-c1; do
  for server in iipimage passthrough reencode; do
    case $server in
      iipimage) base=/iiif/big-%04d.tif url=$IIP ;;
      passthrough) base=/iiif/2/big-%04d.tif url=http://$ON ;;
      reencode) base=/iiif/2/big-%04d.tif url=http://$OFF ;;
    esac
    case $kind in
      scale1-c8) run "$kind" "$server" "$url" "${common[@]}" BASE="$base" SCALES=1 COPIES=20 THREADS=2 -- -t2 -c8 -d"$DUR" --latency -s "$LUA" ;;
      scale8-c8) run "$kind" "$server" "$url" "${common[@]}" BASE="$base" SCALES=8 COPIES=1000 THREADS=2 -- -t2 -c8 -d"$DUR" --latency -s "$LUA" ;;
      scale1-c1) run "$kind" "$server" "$url" "${common[@]}" BASE="$base" SCALES=1 COPIES=20 THREADS=1 SEED=2 -- -t1 -c1 -d"$DUR" --latency -s "$LUA" ;;
      full1024-c1)
        full=${base/\%04d/0001}
        run "$kind" "$server" "$url$full/full/1024,/0/default.jpg" X=1 -- -t1 -c1 -d10s --latency ;;
    esac
  done
done
echo
cat "$OUT/notes.txt"
column -t -s $'\t' "$OUT/summary.tsv"

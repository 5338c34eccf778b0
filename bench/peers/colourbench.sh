#!/bin/bash
# Side by side on the realistic corpus (issue 8): IIPImage (iipimage.sh,
# FastCGI behind nginx, tile cache off) against iiif-proxy BEFORE (a build
# of main) and AFTER (this tree), each with pass-through on (the default)
# and off, cache off, every server pinned to CPU $SRV_CPU and wrk to
# $BENCH_CPU, runs interleaved server by server so that all see the same
# machine. Files: `iiif-bench corpus -realistic $IMAGES` (untagged,
# sRGB-tagged and Adobe RGB pyramids, JPEG 2000), each linked as
# NAME-0001 .. NAME-0020 in the same directory so that tile URLs are
# distinct (bench/wrk/tiles.lua).
#
# usage: bench/peers/colourbench.sh [REPEAT]
#
# Environment: IMAGES [/tmp/real], BEFORE (iiif-proxy binary of main)
# [/tmp/iiif-proxy-main], AFTER [/tmp/iiif-proxy-colour; built if missing],
# SRV_CPU [1], BENCH_CPU [0], DURATION [10s], OUT [/tmp/colourbench-<time>],
# FILES [real-plain.tif real-srgb.tif real-adobe.tif real-jp2.jp2],
# ONLY (regex of run names) [.], IIP_LISTEN [127.0.0.1:18180],
# IIP_RUN [/tmp/colourbench-iip].
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
IMAGES=${IMAGES:-/tmp/real}
BEFORE=${BEFORE:-/tmp/iiif-proxy-main}
AFTER=${AFTER:-/tmp/iiif-proxy-colour}
SRV_CPU=${SRV_CPU:-1}
BENCH_CPU=${BENCH_CPU:-0}
DUR=${DURATION:-10s}
REPEAT=${1:-1}
OUT=${OUT:-/tmp/colourbench-$(date +%Y%m%d-%H%M%S)}
FILES=${FILES:-real-plain.tif real-srgb.tif real-adobe.tif real-jp2.jp2}
ONLY=${ONLY:-.}
export IIP_LISTEN=${IIP_LISTEN:-127.0.0.1:18180}
export IIP_RUN=${IIP_RUN:-/tmp/colourbench-iip}
export IIP_FCGI=unix:$IIP_RUN/iipsrv.sock
LUA=$HERE/../wrk/tiles.lua
COPIES=20

log() { printf '[colourbench] %s\n' "$*" >&2; }

# cputicks PID...: user+system clock ticks used so far by the processes (all
# their threads). Requests per CPU-second of the server is the measure that
# other load on the machine disturbs least: req/s on a shared core falls
# with the core's share, the CPU a request costs much less.
cputicks() {
  local t=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo $t
}
HZ=$(getconf CLK_TCK)

mkdir -p "$OUT"
[ -x "$AFTER" ] || (cd "$REPO" && go build -o "$AFTER" ./cmd/iiif-proxy)
[ -x "$BEFORE" ] || { log "BEFORE=$BEFORE: build main's iiif-proxy there first"; exit 1; }
for f in $FILES; do
  [ -s "$IMAGES/$f" ] || { log "$IMAGES/$f missing: iiif-bench corpus -realistic $IMAGES"; exit 1; }
  ext=${f##*.} stem=${f%.*}
  for i in $(seq -f %04g 1 $COPIES); do ln -sf "$f" "$IMAGES/$stem-$i.$ext"; done
  cat "$IMAGES/$f" >/dev/null # page cache warm: not a disk benchmark
done

IIP_CPU=$SRV_CPU "$HERE/iipimage.sh" start "$IMAGES" >/dev/null
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  "$HERE/iipimage.sh" stop >/dev/null 2>&1 || true
}
trap stop_all EXIT

# start_ours NAME BINARY ADDRESS PASSTHROUGH
start_ours() {
  RAIS_TILEPATH=$IMAGES RAIS_CACHEDIR= RAIS_ADDRESS=$3 RAIS_ADMINADDRESS= RAIS_TILECACHELEN=0 \
    RAIS_TILEPASSTHROUGH=$4 RAIS_LOGLEVEL=WARN taskset -c "$SRV_CPU" "$2" -config /dev/null \
    >"$OUT/$1.log" 2>&1 &
  pids+=($!)
  PIDS[$1]=$!
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://$3/healthz" && return 0; sleep 0.1; done
  log "$1 on $3 did not start"; exit 1
}
declare -A PIDS=()
declare -A ADDR=([before]=127.0.0.1:18190 [after]=127.0.0.1:18191 [before-reenc]=127.0.0.1:18192 [after-reenc]=127.0.0.1:18193)
iipm=$(cat "$IIP_RUN/nginx.pid")
PIDS[iipimage]="$(cat "$IIP_RUN/iipsrv.pid") $iipm $(pgrep -P "$iipm" | tr '\n' ' ')"
start_ours before "$BEFORE" "${ADDR[before]}" true
start_ours after "$AFTER" "${ADDR[after]}" true
start_ours before-reenc "$BEFORE" "${ADDR[before-reenc]}" false
start_ours after-reenc "$AFTER" "${ADDR[after-reenc]}" false

{
  echo "date: $(date -u +%FT%TZ)"
  echo "iipimage-server: $(dpkg-query -W -f '${Version}' iipimage-server) (tile cache off)"
  echo "before: $BEFORE  after: $AFTER ($(cd "$REPO" && git rev-parse --short HEAD)), cache off"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc); servers on cpu $SRV_CPU, wrk on cpu $BENCH_CPU; load $(cut -d' ' -f1-3 /proc/loadavg)"
  for f in $FILES; do echo "image: $(vipsheader "$IMAGES/$f")"; done
} >"$OUT/notes.txt"
printf 'file\trun\tserver\trep\treq/s\treq/cpu-s\tp50\tp99\tnon2xx\n' >"$OUT/summary.tsv"

# run FILE NAME SERVER URL [ENV...] -- WRK_ARGS...
run() {
  local file=$1 name=$2 server=$3 url=$4
  shift 4
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  [[ $name =~ $ONLY ]] || return 0
  for rep in $(seq 1 "$REPEAT"); do
    local f="$OUT/$file-$name-$server-$rep.txt"
    local t0 t1
    # shellcheck disable=SC2086
    t0=$(cputicks ${PIDS[$server]})
    env "${envs[@]}" taskset -c "$BENCH_CPU" wrk "$@" "$url" >"$f" 2>&1 || true
    # shellcheck disable=SC2086
    t1=$(cputicks ${PIDS[$server]})
    local rps p50 p99 bad n rpc
    rps=$(awk '/^Requests\/sec/ {print $2}' "$f")
    n=$(awk '/requests in/ {print $1}' "$f")
    rpc=$(awk -v n="${n:-0}" -v d=$((t1 - t0)) -v hz="$HZ" 'BEGIN {if (d > 0) printf "%.0f", n / (d / hz); else print "-"}')
    p50=$(awk '$1=="50%" {print $2}' "$f")
    p99=$(awk '$1=="99%" {print $2}' "$f")
    bad=$(awk '/Non-2xx/ {print $NF} /^non-2xx/ {print $NF}' "$f" | tail -1)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$file" "$name" "$server" "$rep" "$rps" "$rpc" "$p50" "$p99" "${bad:-0}" | tee -a "$OUT/summary.tsv" >&2
  done
}

for f in $FILES; do
  ext=${f##*.} stem=${f%.*}
  read -r W H < <(vipsheader -f width "$IMAGES/$f" | tr '\n' ' '; vipsheader -f height "$IMAGES/$f")
  common=(WIDTH="$W" HEIGHT="$H" TILE=256 FORMAT=default.jpg SEED=1 STYLE=2 COPIES=$COPIES)
  for kind in scale1-c8 scale8-c8 full1024-c1 thumbs-c1; do
    for server in iipimage before after before-reenc after-reenc; do
      if [ "$server" = iipimage ]; then
        base=/iiif/$stem-%04d.$ext url=http://$IIP_LISTEN
      else
        base=/iiif/2/$stem-%04d.$ext url=http://${ADDR[$server]}
      fi
      case $kind in
        scale1-c8) run "$f" "$kind" "$server" "$url" "${common[@]}" BASE="$base" SCALES=1 THREADS=2 -- -t2 -c8 -d"$DUR" --latency -s "$LUA" ;;
        scale8-c8) run "$f" "$kind" "$server" "$url" "${common[@]}" BASE="$base" SCALES=8 THREADS=2 -- -t2 -c8 -d"$DUR" --latency -s "$LUA" ;;
        full1024-c1)
          [[ $server == *-reenc ]] && continue # no tile passes through at 1024 wide
          run "$f" "$kind" "$server" "$url${base/\%04d/0001}/full/1024,/0/default.jpg" X=1 -- -t1 -c1 -d"$DUR" --latency ;;
        thumbs-c1)
          # Whole-image thumbnails of 150-700 px (bench/wrk/thumbs.lua).
          [[ $server == *-reenc ]] && continue
          run "$f" "$kind" "$server" "$url" BASE="$base" COPIES=$COPIES -- -t1 -c1 -d"$DUR" --latency -s "$HERE/../wrk/thumbs.lua" ;;
      esac
    done
  done
done
echo
cat "$OUT/notes.txt"
column -t -s $'\t' "$OUT/summary.tsv"

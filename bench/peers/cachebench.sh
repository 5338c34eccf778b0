#!/bin/bash
# Warm-hit throughput of iiif-proxy's cache against nginx proxy_cache,
# Varnish and Apache mod_cache_disk, each pinned to CPU $SRV_CPU in front of
# the same origin (iiif-proxy itself, bench/peers/origin.sh), wrk on CPU
# $BENCH_CPU, over 200 real tiles (2-30 KB), runs interleaved in one session.
# iiif-proxy is measured as it ships (tiles from its Pebble tile tier) and
# with TileCacheLen=1000 (tiles from memory). Its /metrics are read before
# and after each run: an ordinary hit must cause no miss and no write (no
# access-time touch).
#
# usage: bench/peers/cachebench.sh [REPEAT]
# Environment: SRV_CPU [1], BENCH_CPU [0], DURATION [20s], CONNS [64],
#              OUT [/tmp/peers/cachebench-<time>], ONLY (regex of targets) [.]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SRV_CPU=${SRV_CPU:-1}
BENCH_CPU=${BENCH_CPU:-0}
DUR=${DURATION:-20s}
CONNS=${CONNS:-64}
REPEAT=${1:-2}
OUT=${OUT:-/tmp/peers/cachebench-$(date +%Y%m%d-%H%M%S)}
ONLY=${ONLY:-.}
BIN=/tmp/peers/iiif-proxy
ORIGIN=127.0.0.1:12415 ORIGIN_ADMIN=127.0.0.1:12416
MEM=127.0.0.1:12425 MEM_ADMIN=127.0.0.1:12426
URLS=/tmp/peers/origin/tiles.txt

log() { printf '[cachebench] %s\n' "$*" >&2; }
mkdir -p "$OUT"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for s in nginx-cache varnish apache-cache origin; do "$HERE/$s.sh" stop >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

[ -x "$BIN" ] || (cd "$REPO" && go build -o "$BIN" ./cmd/iiif-proxy)
ORIGIN=$ORIGIN ADMIN=$ORIGIN_ADMIN ORIGIN_CORE=$SRV_CPU "$HERE/origin.sh" start >/dev/null
"$HERE/origin.sh" urls "$URLS" >/dev/null
# A second iiif-proxy with tiles in memory (RAIS's TileCacheLen).
RAIS_TILEPATH=/tmp/peers/samples RAIS_CACHEDIR=$OUT/mem-cache RAIS_ADDRESS=$MEM RAIS_ADMINADDRESS=$MEM_ADMIN \
  RAIS_TILECACHELEN=1000 RAIS_LOGLEVEL=WARN taskset -c "$SRV_CPU" "$BIN" -config /dev/null >"$OUT/mem.log" 2>&1 &
pids+=($!)
for s in nginx-cache varnish apache-cache; do CORE=$SRV_CPU ORIGIN=$ORIGIN "$HERE/$s.sh" start >/dev/null; done
declare -A target=([iiif-proxy]=$ORIGIN [iiif-proxy-mem]=$MEM [nginx]=127.0.0.1:18081 [varnish]=127.0.0.1:18082 [apache]=127.0.0.1:18083)
declare -A admin=([iiif-proxy]=$ORIGIN_ADMIN [iiif-proxy-mem]=$MEM_ADMIN)
for _ in $(seq 1 100); do curl -sf -o /dev/null "http://$MEM/healthz" && break; sleep 0.1; done

# Warm every cache: two passes, then check the second pass is all hits.
for t in "${!target[@]}"; do
  for pass in 1 2; do
    while read -r u; do curl -s -o /dev/null "http://${target[$t]}$u"; done <"$URLS"
  done
  hits=$(while read -r u; do curl -s -o /dev/null -D - "http://${target[$t]}$u" | grep -ci '^x-cache: *hit' || true; done <"$URLS" | paste -sd+ | bc)
  log "$t: $hits of $(wc -l <"$URLS") URLs are hits after warming"
  echo "$t warm hits: $hits/$(wc -l <"$URLS")" >>"$OUT/notes.txt"
done
sizes=$(while read -r u; do curl -s -o /dev/null -w '%{size_download}\n' "http://$ORIGIN$u"; done <"$URLS" | sort -n)
{
  echo "date: $(date -u +%FT%TZ)"
  echo "iiif-proxy: $(cd "$REPO" && git rev-parse --short HEAD)"
  echo "nginx-light $(dpkg-query -W -f '${Version}' nginx-light), varnish $(dpkg-query -W -f '${Version}' varnish), apache2-bin $(dpkg-query -W -f '${Version}' apache2-bin), wrk $(dpkg-query -W -f '${Version}' wrk)"
  echo "tiles: $(wc -l <"$URLS") URLs, $(echo "$sizes" | head -1)-$(echo "$sizes" | tail -1) bytes, median $(echo "$sizes" | sed -n 100p)"
  echo "servers on cpu $SRV_CPU, wrk on cpu $BENCH_CPU: wrk -t1 -c$CONNS -d$DUR --latency -s bench/wrk/urls.lua"
} >>"$OUT/notes.txt"

metric() { # admin name
  curl -s "http://$1/metrics" | awk -v m="$2" '$1 ~ "^"m"(\\{|$)" && $1 ~ /tile/ {s+=$2} END {print s+0}'
}

printf 'target\trep\treq/s\tp50\tp90\tp99\tmax\tnon2xx\tmisses\ttouches\n' >"$OUT/summary.tsv"
for rep in $(seq 1 "$REPEAT"); do
  for t in iiif-proxy nginx varnish iiif-proxy-mem apache; do
    [[ $t =~ $ONLY ]] || continue
    f=$OUT/$t-$rep.txt
    m0=- t0=-
    if [ -n "${admin[$t]:-}" ]; then m0=$(metric "${admin[$t]}" iiif_cache_misses_total); t0=$(metric "${admin[$t]}" iiif_cache_touches_total); fi
    URLS=$URLS taskset -c "$BENCH_CPU" wrk -t1 -c"$CONNS" -d"$DUR" --latency -s "$HERE/../wrk/urls.lua" "http://${target[$t]}" >"$f" 2>&1 || true
    dm=- dt=-
    if [ -n "${admin[$t]:-}" ]; then
      dm=$(( $(metric "${admin[$t]}" iiif_cache_misses_total) - m0 )); dt=$(( $(metric "${admin[$t]}" iiif_cache_touches_total) - t0 ))
    fi
    rps=$(awk '/^Requests\/sec/ {print $2}' "$f")
    read -r p50 p90 p99 < <(awk '$1=="50%"{a=$2} $1=="90%"{b=$2} $1=="99%"{c=$2} END{print a, b, c}' "$f")
    max=$(awk '/Latency/ && NF>=4 {print $4; exit}' "$f")
    bad=$(awk '/Non-2xx/ {print $NF}' "$f")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$rep" "$rps" "$p50" "$p90" "$p99" "$max" "${bad:-0}" "$dm" "$dt" | tee -a "$OUT/summary.tsv" >&2
  done
done
echo
cat "$OUT/notes.txt"
column -t -s $'\t' "$OUT/summary.tsv"

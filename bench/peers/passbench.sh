#!/bin/bash
# passbench.sh: two iiif-proxy builds side by side on tile pass-through
# (cache off), interleaved: servers pinned to CPU 1, wrk to CPU 0, distinct
# seeds per run; prints req/s, p50 and requests per CPU-second of the server
# (from /proc/PID/stat), which other load on a shared machine disturbs less.
#
# usage: BEFORE=bin AFTER=bin IMAGES=dir bench/peers/passbench.sh
# IMAGES holds big-0001.tif..big-0020.tif (hard links of one 20480x11520
# pyramidal TIFF). Environment: SCALES [8], DUR [6s], ROUNDS ["0 1 2 3"].
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
declare -A BIN=([before]=$BEFORE [after]=$AFTER)
declare -A PID
start() { # name port
  RAIS_TILEPATH=$IMAGES RAIS_CACHEDIR= RAIS_ADDRESS=127.0.0.1:$2 RAIS_ADMINADDRESS= RAIS_TILECACHELEN=0 \
    RAIS_TILEPASSTHROUGH=true RAIS_LOGLEVEL=WARN taskset -c 1 ${BIN[$1]} -config /dev/null >/dev/null 2>&1 &
  PID[$1]=$!
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$2/healthz" && return 0; sleep 0.1; done
  echo "no start $1"; exit 1
}
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
start before 18501
start after 18502
trap 'kill ${PID[before]} ${PID[after]}' EXIT
seed=10
for round in ${ROUNDS:-0 1 2 3}; do
  for n in before after; do
    port=18501; [ $n = after ] && port=18502
    seed=$((seed+1))
    c0=$(cpu ${PID[$n]})
    out=$(WIDTH=20480 HEIGHT=11520 TILE=256 SEED=$seed STYLE=2 BASE=/iiif/2/big-%04d.tif SCALES=${SCALES:-8} COPIES=20 THREADS=2 \
      taskset -c 0 wrk -t2 -c8 -d${DUR:-6s} --latency -s bench/wrk/tiles.lua http://127.0.0.1:$port 2>&1)
    c1=$(cpu ${PID[$n]})
    rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
    reqs=$(echo "$out" | awk '/requests in/{print $1}')
    p50=$(echo "$out" | awk '$1=="50%"{print $2}')
    non=$(echo "$out" | grep -c "Non-2xx")
    echo "$round $n rps=$rps p50=$p50 req/cpu-s=$(echo "$reqs / (($c1-$c0)/100)" | bc) non2xx=$non load=$(cut -d' ' -f1 /proc/loadavg)"
  done
done

#!/bin/bash
# IIPImage (Debian iipimage-server, FastCGI) behind nginx: a side-by-side peer
# for the tile-rendering throughput benchmark. See bench/peers/README.md.
#
# usage: bench/peers/iipimage.sh start [IMAGES_DIR] | stop | status | restart [IMAGES_DIR]
#                                 | corpus [DIR] | links [N [DIR]] | install | bench
#
# Environment (defaults in brackets):
#   IIP_IMAGES     image directory = iipsrv FILESYSTEM_PREFIX [/tmp/peers/images]
#   IIP_LISTEN     nginx HTTP listen address (loopback)       [127.0.0.1:18080]
#   IIP_FCGI       iipsrv FastCGI address: unix:/path or 127.0.0.1:PORT
#                                                  [unix:$IIP_RUN/iipsrv.sock]
#   IIP_CPU        CPU list both servers are pinned to        [1]
#   IIP_RUN        pid files, rendered config, logs           [/tmp/peers/run]
#   IIP_VERBOSITY  iipsrv VERBOSITY (log: $IIP_RUN/iipsrv.log)[0]
#   IIP_CACHE_MB   iipsrv MAX_IMAGE_CACHE_SIZE (0 = tile cache off) [0]
#   IIP_MALLOC     fixed = glibc malloc thresholds pinned (steady state from
#                  the first request), default = glibc's dynamic ones [fixed]
#   CORPUS_W/CORPUS_H  size of the generated test image      [20480/11520]
#   BENCH_CPU, BENCH_DURATION, BENCH_REPEAT, BENCH_OUT, BENCH_ONLY (regex of
#   run names) for `bench`    [0, 20s, 3, /tmp/peers/results-<time>, all]
#
# Every process this script starts is recorded in $IIP_RUN/*.pid and `stop`
# kills exactly those PIDs (after checking /proc/PID/exe), nothing by name.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PEERS=/tmp/peers
RUN=${IIP_RUN:-$PEERS/run}
IMAGES=${IIP_IMAGES:-$PEERS/images}
LISTEN=${IIP_LISTEN:-127.0.0.1:18080}
# FastCGI over a unix socket: measured ~14% more tiles/s than 127.0.0.1:19000
FCGI=${IIP_FCGI:-unix:$RUN/iipsrv.sock}
CPU=${IIP_CPU:-1}
VERBOSITY=${IIP_VERBOSITY:-0}
# glibc malloc: by default a fresh iipsrv mmap()s/munmap()s and trims its
# per-request buffers, and only stops doing so after it has freed one big
# buffer (dynamic mmap/trim threshold), e.g. after its first full/1024 request:
# ~1000 -> ~1350 tiles/s. Fixed thresholds give the warm behaviour from the
# first request. IIP_MALLOC=default keeps glibc's dynamic behaviour.
if [ "${IIP_MALLOC:-fixed}" = fixed ]; then
  MALLOC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=134217728
else
  MALLOC_TUNABLES=
fi
CACHE_MB=${IIP_CACHE_MB:-0}
IIPSRV=/usr/lib/iipimage-server/iipsrv.fcgi
NGINX=/usr/sbin/nginx
TMPL=$HERE/nginx-iipimage.conf.tmpl
LUA=$HERE/../wrk/tiles.lua

log() { printf '[iipimage] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

require_loopback() {
  local what=$1 addr=$2
  case $addr in
    127.0.0.1:[0-9]*|unix:/*) ;;
    *) die "$what=$addr: only 127.0.0.1:PORT (or unix:/path for IIP_FCGI) is allowed" ;;
  esac
}

# ---------------------------------------------------------------- install
ensure_installed() {
  local missing=()
  [ -x "$IIPSRV" ] || missing+=(iipimage-server)
  [ -x "$NGINX" ] || missing+=(nginx-light)
  command -v wrk >/dev/null || missing+=(wrk)
  command -v vips >/dev/null || missing+=(libvips-tools)
  command -v curl >/dev/null || missing+=(curl)
  command -v taskset >/dev/null || missing+=(util-linux)
  command -v ss >/dev/null || missing+=(iproute2)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}) and not root"
  log "installing: ${missing[*]}"
  # policy-rc.d-less machines would auto-start the system nginx on :80; we never
  # use it, and our own instance has its own config/prefix/port.
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  fi
}



# stop_pid NAME FILE EXE
stop_pid() {
  local name=$1 file=$2 exe=$3 pid kids k
  pid=$(pid_alive "$file" "$exe")
  if [ -z "$pid" ]; then
    [ -e "$file" ] && log "$name: stale pid file removed"
    rm -f "$file"
    return 0
  fi
  # children (nginx workers) are recorded so they can be checked afterwards
  kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
  [ -n "$kids" ] && printf '%s\n' $kids >"$file.children"
  log "$name: stopping pid $pid${kids:+ (children: $(echo $kids))}"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" 100; then
    log "$name: pid $pid ignored TERM for 10s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 50 || die "$name: pid $pid will not die"
  fi
  for k in $kids; do
    if [ "$(readlink "/proc/$k/exe" 2>/dev/null)" = "$exe" ]; then
      wait_gone "$k" 50 || { log "$name: child $k still alive, KILL"; kill -KILL "$k" 2>/dev/null || true; }
    fi
  done
  rm -f "$file" "$file.children"
}

# wait_listen ADDR TENTHS
wait_listen() {
  local addr=$1 n=$2 i
  for ((i = 0; i < n; i++)); do
    if [[ $addr == unix:* ]]; then
      [ -S "${addr#unix:}" ] && return 0
    elif ss -Hltn "sport = :${addr##*:}" | grep -q .; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

port_busy() { [[ $1 == unix:* ]] && return 1; ss -Hltn "sport = :${1##*:}" | grep -q .; }

# ---------------------------------------------------------------- start/stop
cmd_status() {
  local ip np rc=0
  ip=$(pid_alive "$RUN/iipsrv.pid" "$IIPSRV")
  np=$(pid_alive "$RUN/nginx.pid" "$NGINX")
  if [ -n "$ip" ]; then
    echo "iipsrv: running pid $ip (fcgi $FCGI, cpus $(taskset -cp "$ip" 2>/dev/null | sed 's/.*: //'))"
  else echo "iipsrv: stopped"; fi
  if [ -n "$np" ]; then
    echo "nginx:  running pid $np (http $LISTEN, cpus $(taskset -cp "$np" 2>/dev/null | sed 's/.*: //'))"
  else echo "nginx:  stopped"; fi
  if [ -n "$ip" ] && [ -n "$np" ]; then
    # nginx alone, then one request through FastCGI to iipsrv
    local dir probe
    dir=$(cat "$RUN/images.path" 2>/dev/null || echo "$IMAGES")
    if [ -s "$dir/big.tif" ]; then probe=big.tif; else probe=$(cd "$dir" 2>/dev/null && ls -- *.tif 2>/dev/null | head -1 || true); fi
    if ! curl -fsS -m 5 -o /dev/null "http://$LISTEN/healthz"; then
      echo "http:   nginx not answering"; rc=1
    elif [ -n "$probe" ] && ! curl -fsS -m 10 -o /dev/null "http://$LISTEN/iiif/$probe/info.json"; then
      echo "http:   nginx ok, iipsrv failing (/iiif/$probe/info.json)"; rc=1
    else
      echo "http:   ok (images: $dir${probe:+, /iiif/$probe/info.json ok})"
    fi
  else
    rc=3
  fi
  return $rc
}

cmd_start() {
  [ $# -ge 1 ] && IMAGES=$1
  require_loopback IIP_LISTEN "$LISTEN"
  require_loopback IIP_FCGI "$FCGI"
  [[ $LISTEN == unix:* ]] && die "IIP_LISTEN must be 127.0.0.1:PORT"
  ensure_installed
  local ip np
  ip=$(pid_alive "$RUN/iipsrv.pid" "$IIPSRV")
  np=$(pid_alive "$RUN/nginx.pid" "$NGINX")
  if [ -n "$ip" ] && [ -n "$np" ]; then
    log "already running"; cmd_status; return 0
  fi
  if [ -n "$ip$np" ]; then log "half running, restarting"; cmd_stop; fi
  rm -f "$RUN/iipsrv.pid" "$RUN/nginx.pid"

  IMAGES=$(cd "$IMAGES" 2>/dev/null && pwd) || die "image directory $IMAGES does not exist (try: $0 corpus)"
  ls "$IMAGES"/*.tif >/dev/null 2>&1 || log "warning: no *.tif in $IMAGES"
  port_busy "$FCGI" && die "$FCGI is already in use by someone else"
  port_busy "$LISTEN" && die "$LISTEN is already in use by someone else"

  mkdir -p "$RUN"/nginx/{client_body,fastcgi,proxy,uwsgi,scgi}
  chown -R nobody:nogroup "$RUN/nginx" 2>/dev/null || true
  local fc=$FCGI
  sed -e "s#@RUN@#$RUN#g" -e "s#@LISTEN@#$LISTEN#g" -e "s#@FCGI@#$fc#g" "$TMPL" >"$RUN/nginx.conf"
  "$NGINX" -t -q -p "$RUN/nginx/" -c "$RUN/nginx.conf" -e "$RUN/nginx-error.log" \
    || die "nginx config test failed ($RUN/nginx.conf)"

  local bind=$FCGI
  [[ $bind == unix:* ]] && { bind=${bind#unix:}; rm -f "$bind"; }
  # iipsrv: tile cache off, one process, pinned. env -i + taskset both exec, so
  # $! is the iipsrv PID itself.
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    LOGFILE="$RUN/iipsrv.log" VERBOSITY="$VERBOSITY" \
    MAX_IMAGE_CACHE_SIZE="$CACHE_MB" FILESYSTEM_PREFIX="$IMAGES/" \
    JPEG_QUALITY=75 MAX_CVT=5000 OMP_NUM_THREADS=1 \
    ${MALLOC_TUNABLES:+GLIBC_TUNABLES=$MALLOC_TUNABLES} \
    taskset -c "$CPU" "$IIPSRV" --bind "$bind" --backlog 1024 \
    </dev/null >>"$RUN/iipsrv.out" 2>&1 9>&- &
  echo $! >"$RUN/iipsrv.pid"
  if ! wait_listen "$FCGI" 50 || [ -z "$(pid_alive "$RUN/iipsrv.pid" "$IIPSRV")" ]; then
    tail -5 "$RUN/iipsrv.out" >&2 || true
    cmd_stop; die "iipsrv did not come up on $FCGI"
  fi
  # a unix socket is created 0755 by root; nginx workers run as nobody
  [[ $FCGI == unix:* ]] && chmod 666 "$bind"
  echo "$IMAGES" >"$RUN/images.path"

  taskset -c "$CPU" "$NGINX" -p "$RUN/nginx/" -c "$RUN/nginx.conf" -e "$RUN/nginx-error.log" \
    </dev/null >>"$RUN/nginx.out" 2>&1 9>&- &
  echo $! >"$RUN/nginx.pid"
  if ! wait_listen "$LISTEN" 50 || [ -z "$(pid_alive "$RUN/nginx.pid" "$NGINX")" ]; then
    tail -5 "$RUN/nginx-error.log" >&2 || true
    cmd_stop; die "nginx did not come up on $LISTEN"
  fi
  log "started: http://$LISTEN/iiif/{file}/{region}/{size}/0/default.jpg  (images: $IMAGES)"
  cmd_status
}

cmd_stop() {
  stop_pid nginx "$RUN/nginx.pid" "$NGINX"
  stop_pid iipsrv "$RUN/iipsrv.pid" "$IIPSRV"
  [[ $FCGI == unix:* ]] && rm -f "${FCGI#unix:}"
  return 0
}

# ---------------------------------------------------------------- corpus
# Synthetic "scanned folio": multi-octave Perlin + Worley + Gaussian grain,
# per-channel tint, and rendered text tiled across the sheet; saved as a
# pyramidal, tiled (256 px), JPEG Q75 TIFF. Content is busy enough that a
# full-resolution 256 px tile is ~15 KB as JPEG.
cmd_corpus() {
  local dir=${1:-$IMAGES} W=${CORPUS_W:-20480} H=${CORPUS_H:-11520}
  local out=$dir/big.tif
  if [ -s "$out" ]; then log "corpus: $out exists, skipping"; return 0; fi
  command -v vips >/dev/null || ensure_installed
  mkdir -p "$dir" "$PEERS"
  local T t0=$SECONDS
  T=$(mktemp -d "$PEERS/corpus-tmp.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$T'" EXIT
  log "corpus: generating ${W}x${H} into $out (temp $T, ~8 GB)"
  vips perlin "$T/p1.v" "$W" "$H" --cell-size 2048 --uchar --seed 11   # large blotches
  vips perlin "$T/p2.v" "$W" "$H" --cell-size 256 --uchar --seed 22    # mid structure
  vips perlin "$T/p3.v" "$W" "$H" --cell-size 40 --uchar --seed 33     # small structure
  vips perlin "$T/p4.v" "$W" "$H" --cell-size 6 --uchar --seed 44      # fibre texture
  vips worley "$T/wf.v" "$W" "$H" --cell-size 384 --seed 55            # cells/creases
  vips cast "$T/wf.v" "$T/w.v" uchar && rm -f "$T/wf.v"
  vips gaussnoise "$T/gf.v" "$W" "$H" --mean 128 --sigma 40 --seed 66  # sensor grain
  vips cast "$T/gf.v" "$T/g.v" uchar && rm -f "$T/gf.v"
  # a 2560x1440 page of text (heading + 5 justified paragraphs), tiled over the sheet
  local BW=2560 BH=1440 P
  P="Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum. 0123456789 ÀÉÎÕÜ ß &amp; § ¶"
  vips text "$T/t1.v" "<b>MS. Benchmark 2048, fol. 17r</b>" --dpi 400 --font "DejaVu Serif"
  vips text "$T/t2.v" "$P

$P

$P

<i>$P</i>

$P" --width 2280 --dpi 200 --font "DejaVu Sans" --justify
  vips embed "$T/t1.v" "$T/e1.v" 140 90 "$BW" "$BH"
  vips embed "$T/t2.v" "$T/e2.v" 140 250 "$BW" "$BH"
  vips add "$T/e1.v" "$T/e2.v" "$T/eb.v"
  vips cast "$T/eb.v" "$T/e.v" uchar
  vips replicate "$T/e.v" "$T/tr.v" $(((W + BW - 1) / BW)) $(((H + BH - 1) / BH))
  vips crop "$T/tr.v" "$T/t.v" 0 0 "$W" "$H" && rm -f "$T/tr.v"
  vips black "$T/c0.v" "$W" "$H"
  vips linear "$T/c0.v" "$T/c.v" 1 255 --uchar && rm -f "$T/c0.v"
  vips bandjoin "$T/p1.v $T/p2.v $T/p3.v $T/p4.v $T/w.v $T/g.v $T/t.v $T/c.v" "$T/all.v"
  rm -f "$T"/p?.v "$T/w.v" "$T/g.v" "$T/t.v" "$T/c.v"
  # rows = R,G,B; columns = p1 p2 p3 p4 worley grain text const(255)
  cat >"$T/m.mat" <<'M'
8 3
0.60 0.30 0.30 0.30 0.25 0.22 -0.75 -0.36
0.45 0.35 0.30 0.30 0.25 0.22 -0.75 -0.32
0.25 0.45 0.25 0.30 0.25 0.22 -0.75 -0.30
M
  vips recomb "$T/all.v" "$T/rgb.v" "$T/m.mat" && rm -f "$T/all.v"
  # cast clamps to 0..255; pyramid levels go into successive IFDs (what iipsrv reads)
  vips cast "$T/rgb.v" "$T/big.tif[tile,tile-width=256,tile-height=256,pyramid,compression=jpeg,Q=75]" uchar
  mv "$T/big.tif" "$out"
  rm -rf "$T"; trap - EXIT
  log "corpus: done in $((SECONDS - t0)) s: $(vipsheader "$out"), $(du -h "$out" | cut -f1)"
  tile_stats "$out" || true
}

# tile_stats FILE: per-level JPEG tile byte counts (needs python3; optional)
tile_stats() {
  command -v python3 >/dev/null || return 0
  python3 - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
bo = '<' if d[:2] == b'II' else '>'
off, lvl = struct.unpack(bo + 'I', d[4:8])[0], 0
while off:
    n = struct.unpack(bo + 'H', d[off:off + 2])[0]
    tags = {}
    for i in range(n):
        t, ty, c, v = struct.unpack(bo + 'HHII', d[off + 2 + 12 * i:off + 14 + 12 * i])
        tags[t] = (ty, c, v)
    c, v = tags[325][1], tags[325][2]
    bc = struct.unpack(bo + '%dI' % c, d[v:v + 4 * c]) if c > 1 else [v]
    print('level %d  %6dx%-6d tiles %5d  bytes/tile avg %6.0f  min %6d  max %6d'
          % (lvl, tags[256][2], tags[257][2], c, sum(bc) / c, min(bc), max(bc)))
    off = struct.unpack(bo + 'I', d[off + 2 + 12 * n:off + 6 + 12 * n])[0]
    lvl += 1
PY
}

# links N [DIR]: big-0001.tif .. big-NNNN.tif -> big.tif, so a run can use
# N x (tiles per scale) distinct URLs (tiles.lua BASE=/iiif/big-%04d.tif COPIES=N).
# Symlinks share one inode/page cache: they defeat URL/identifier-keyed caches
# only. iipsrv (tile cache off) has no such cache anyway.
cmd_links() {
  local n=${1:-1000} dir=${2:-$IMAGES} i
  [[ $n =~ ^[0-9]+$ ]] && [ "$n" -le 9999 ] || die "links: N must be 0..9999"
  [ -s "$dir/big.tif" ] || die "links: $dir/big.tif missing (run corpus first)"
  for ((i = 1; i <= n; i++)); do
    [ -L "$dir/$(printf 'big-%04d.tif' "$i")" ] || ln -s big.tif "$dir/$(printf 'big-%04d.tif' "$i")"
  done
  log "links: $dir/big-0001.tif .. $(printf 'big-%04d.tif' "$n") -> big.tif"
}

# ---------------------------------------------------------------- bench
# cpu_busy: percent of all CPUs busy over the next second (from /proc/stat)
cpu_busy() {
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9; exit}' /proc/stat)
  sleep 1
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9; exit}' /proc/stat)
  echo "$a $b" | awk '{d = $4 - $2; print (d > 0 ? int(100 * ($3 - $1) / d) : 0)}'
}

# quiet_wait: other workloads on this 2-core box wreck the figures; wait up to
# BENCH_QUIET_MAX (300) s for 5 consecutive idle (<10% busy) seconds, else
# record a warning.
quiet_wait() {
  local i busy=100 ok=0
  for ((i = 0; i < ${BENCH_QUIET_MAX:-300}; i++)); do
    busy=$(cpu_busy)
    if [ "$busy" -lt 10 ]; then ok=$((ok + 1)); else ok=0; fi
    [ "$ok" -ge 5 ] && return 0
  done
  log "warning: machine not idle for 5 s (last ${busy}% busy) before this run"
  echo "WARNING: machine not idle for 5 s (last ${busy}% busy) before run $1" >>"$BENCH_DIR/notes.txt"
}

# wrk_summary FILE -> "req/s p50 p99 non2xx repeats" from wrk --latency output
wrk_summary() {
  awk '
    /Requests\/sec:/ {rps = $2}
    /^ +50%/ {p50 = $2} /^ +99%/ {p99 = $2}
    /Non-2xx or 3xx responses:/ {bad = $NF}
    /tiles.lua: URL repeats:/ {rep = $4}
    END {printf "%s\t%s\t%s\t%s\t%s\n", rps, p50, p99, (bad == "" ? 0 : bad), (rep == "" ? "n/a" : rep)}' "$1"
}

# server_ticks: CPU ticks (utime+stime) used so far by our iipsrv and nginx
server_ticks() {
  local p pids sum=0 t
  pids="$(pid_alive "$RUN/iipsrv.pid" "$IIPSRV") $(pid_alive "$RUN/nginx.pid" "$NGINX")"
  for p in $pids; do pids="$pids $(cat /proc/"$p"/task/*/children 2>/dev/null || true)"; done
  for p in $pids; do
    t=$(awk '{sub(/.*\) /, ""); print $12 + $13}' /proc/"$p"/stat 2>/dev/null || echo 0)
    sum=$((sum + t))
  done
  echo "$sum"
}

# busy_ticks [N]: CPU ticks spent on anything but idle/iowait/steal, by all
# CPUs or by CPU N
busy_ticks() { awk -v c="cpu${1:-}" '$1 == c {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }

# run NAME [VAR=value ...] -- wrk args...   (wrk runs on BENCH_CPU)
# Besides wrk's figures it records "foreign" CPU, in % of one core: busy time
# of the server core (IIP_CPU) not used by iipsrv/nginx ("srv"), and busy time
# of the whole machine not used by iipsrv/nginx/wrk ("all"). Other workloads on
# this 2-core box distort results: runs with srv > 5% are marked DISTURBED
# (throughput suspect), with all > 20% client-busy (wrk was starved, so latency
# tails are suspect), else clean.
bench_run() {
  local name=$1 r f hz p0 p1 b0 b1 c0 c1 times wall wu ws foreign fsrv scpu=; shift
  [[ $CPU =~ ^[0-9]+$ ]] && scpu=$CPU
  local vars=()
  hz=$(getconf CLK_TCK)
  while [ "$1" != "--" ]; do vars+=("$1"); shift; done
  shift
  [[ $name =~ ${BENCH_ONLY:-.} ]] || return 0
  for ((r = 1; r <= BENCH_REPEAT; r++)); do
    quiet_wait "$name.$r"
    f=$BENCH_DIR/$name.$r.txt
    echo "+ ${vars[*]} taskset -c $BENCH_CPU wrk $*" | tee "$f"
    p0=$(server_ticks); b0=$(busy_ticks); c0=$(busy_ticks "$scpu")
    times=$( { TIMEFORMAT='%R %U %S'; time env "${vars[@]}" taskset -c "$BENCH_CPU" wrk "$@" >>"$f" 2>&1; } 2>&1 )
    p1=$(server_ticks); b1=$(busy_ticks); c1=$(busy_ticks "$scpu")
    read -r wall wu ws <<<"$times"
    foreign=$(awk -v b=$((b1 - b0)) -v p=$((p1 - p0)) -v hz="$hz" -v wall="$wall" -v wu="$wu" -v ws="$ws" \
      'BEGIN {printf "%.0f", 100 * ((b - p) / hz - wu - ws) / wall}')
    fsrv=$(awk -v c=$((c1 - c0)) -v p=$((p1 - p0)) -v hz="$hz" -v wall="$wall" \
      'BEGIN {printf "%.0f", 100 * ((c - p) / hz) / wall}')
    [ -z "$scpu" ] && fsrv=$foreign
    echo "cpu: server $(awk -v p=$((p1 - p0)) -v hz="$hz" -v w="$wall" 'BEGIN{printf "%.0f", 100*p/hz/w}')% of a core, wrk $(awk -v a="$wu" -v b="$ws" -v w="$wall" 'BEGIN{printf "%.0f", 100*(a+b)/w}')%, foreign on server core ${fsrv}%, on machine ${foreign}%" >>"$f"
    grep -v '^+ ' "$f"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$r" "$(wrk_summary "$f")" "$fsrv%" "$foreign%" \
      "$(if [ "$fsrv" -gt 5 ]; then echo DISTURBED; elif [ "$foreign" -gt 20 ]; then echo client-busy; else echo clean; fi)" \
      >>"$BENCH_DIR/summary.tsv"
  done
}

# The measurements recorded in README.md. Server must be running (start).
cmd_bench() {
  BENCH_CPU=${BENCH_CPU:-0}
  BENCH_REPEAT=${BENCH_REPEAT:-3}
  BENCH_DIR=${BENCH_OUT:-$PEERS/results-$(date +%Y%m%d-%H%M%S)}
  local dur=${BENCH_DURATION:-20s} url=http://$LISTEN img=big.tif W H i
  cmd_status >/dev/null || die "server not running (start it first)"
  read -r W H < <(vipsheader -f width "$IMAGES/$img" | tr '\n' ' '; vipsheader -f height "$IMAGES/$img")
  mkdir -p "$BENCH_DIR"
  printf 'run\trep\treq/s\tp50\tp99\tnon2xx\trepeats\tforeign-srv\tforeign-all\tstate\n' >"$BENCH_DIR/summary.tsv"
  log "bench: results in $BENCH_DIR (wrk on cpu $BENCH_CPU, server on cpu $CPU, $BENCH_REPEAT x $dur)"
  {
    echo "date: $(date -u +%FT%TZ)"
    echo "iipimage-server: $(dpkg-query -W -f '${Version}' iipimage-server 2>/dev/null)"
    echo "nginx: $(dpkg-query -W -f '${Version}' nginx-light 2>/dev/null)  wrk: $(dpkg-query -W -f '${Version}' wrk 2>/dev/null)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)"
    echo "image: $(vipsheader "$IMAGES/$img")"
  } >"$BENCH_DIR/notes.txt"
  # Distinct URLs: a 20480x11520 image has 3600 tiles at scale 1 and only 60 at
  # scale 8, so the walk spreads over symlinked identifiers big-0001.tif...
  cmd_links 1000 >/dev/null
  local common=(WIDTH="$W" HEIGHT="$H" TILE=256 FORMAT=default.jpg SEED=1 BASE=/iiif/big-%04d.tif)
  # warm the OS page cache for the file so no run is a disk benchmark
  cat "$IMAGES/$img" >/dev/null
  # (a) distinct full-resolution tiles, (b) distinct scale-8 tiles, 8 connections
  bench_run a-scale1-c8 "${common[@]}" STYLE=2 SCALES=1 COPIES=20 THREADS=2 -- \
    -t2 -c8 -d"$dur" --latency -s "$LUA" "$url"
  bench_run b-scale8-c8 "${common[@]}" STYLE=2 SCALES=8 COPIES=1000 THREADS=2 -- \
    -t2 -c8 -d"$dur" --latency -s "$LUA" "$url"
  # (c) single-tile latency: one connection, distinct full-resolution tiles
  bench_run c-scale1-c1 "${common[@]}" STYLE=2 SCALES=1 COPIES=20 THREADS=1 SEED=2 -- \
    -t1 -c1 -d"$dur" --latency -s "$LUA" "$url"
  # (d) whole scan at 1024 wide, one connection
  bench_run d-full1024-c1 X=1 -- -t1 -c1 -d10s --latency "$url/iiif/$img/full/1024,/0/default.jpg"
  # extra: IIIF 3 canonical "w,h" sizes, which iipsrv 1.1 routes to CVT, not JTL
  bench_run e-scale1-c8-style3 "${common[@]}" STYLE=3 SCALES=1 COPIES=20 THREADS=2 -- \
    -t2 -c8 -d"$dur" --latency -s "$LUA" "$url"
  bench_run f-scale8-c8-style3 "${common[@]}" STYLE=3 SCALES=8 COPIES=1000 THREADS=2 -- \
    -t2 -c8 -d"$dur" --latency -s "$LUA" "$url"
  if [[ d-curl =~ ${BENCH_ONLY:-.} ]]; then
    quiet_wait d-curl
    for i in $(seq 1 10); do
      taskset -c "$BENCH_CPU" curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}\n' \
        "$url/iiif/$img/full/1024,/0/default.jpg"
    done | tee "$BENCH_DIR/d-full1024-curl.txt"
  fi
  echo
  cat "$BENCH_DIR/notes.txt"
  column -t -s $'\t' "$BENCH_DIR/summary.tsv" 2>/dev/null || cat "$BENCH_DIR/summary.tsv"
}

# start/stop/restart of one $RUN are serialised: two concurrent invocations
# (e.g. a harness's `start` during someone's `restart`) would race on the pid
# files and could leave an unrecorded nginx behind.
lock_run() {
  mkdir -p "$RUN"
  exec 9>"$RUN/.lock"
  flock -w 120 9 || die "another iipimage.sh has held $RUN/.lock for 120 s"
}

case ${1:-} in
  start) shift; lock_run; cmd_start "$@" ;;
  stop) lock_run; cmd_stop ;;
  restart) shift; lock_run; cmd_stop; cmd_start "$@" ;;
  status) cmd_status ;;
  corpus) shift; cmd_corpus "$@" ;;
  install) ensure_installed ;;
  links) shift; cmd_links "$@" ;;
  bench) cmd_bench ;;
  *) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

#!/bin/bash
# The iiif-proxy itself as the origin behind the cache peers (nginx-cache.sh,
# varnish.sh, apache-cache.sh). See bench/peers/README.md.
#
# usage: bench/peers/origin.sh start | stop | status | restart | build | samples
#                              | urls [FILE]
#
#   build    go build ./cmd/iiif-proxy into $BIN (also done by start if missing)
#   samples  iiif-proxy samples -small -dir $SAMPLES (also done by start)
#   urls     write 200 distinct tile paths of the small samples to FILE
#            [$PEER_DIR/tiles.txt]: 165 full-resolution 256 px tiles of
#            page.tif and 35 half-resolution tiles of page-plain.jpg, all
#            inside the 3000x4000 images (no clipped edge tiles)
#
# Environment (defaults in brackets):
#   ORIGIN       listen address (loopback only), RAIS_ADDRESS    [127.0.0.1:12415]
#   ADMIN        admin listen address, RAIS_ADMINADDRESS          [127.0.0.1:12416]
#   ORIGIN_CORE  CPU list to pin the origin to; empty = not pinned   []
#   SAMPLES      image directory, RAIS_TILEPATH           [/tmp/peers/samples]
#   CACHEDIR     RAIS_CACHEDIR                          [/tmp/peers/iiif-cache]
#   KEEP_CACHE   1 = start keeps CACHEDIR; by default it is emptied     [0]
#   BIN          binary                                [/tmp/peers/iiif-proxy]
#   PEER_DIR     pid file, log, url list               [/tmp/peers/origin]
# Other RAIS_* variables in the environment are passed on; the config file
# is /dev/null, so everything else is the built-in default.
set -euo pipefail

NAME=origin
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DIR=${PEER_DIR:-/tmp/peers/$NAME}
ORIGIN=${ORIGIN:-127.0.0.1:12415}
ADMIN=${ADMIN:-127.0.0.1:12416}
ORIGIN_CORE=${ORIGIN_CORE:-}
SAMPLES=${SAMPLES:-/tmp/peers/samples}
CACHEDIR=${CACHEDIR:-/tmp/peers/iiif-cache}
KEEP_CACHE=${KEEP_CACHE:-0}
BIN=${BIN:-/tmp/peers/iiif-proxy}
PIDF=$DIR/iiif-proxy.pid


# pid_alive FILE: prints the PID if FILE names a live process running $BIN
# (also after a rebuild replaced the file: "... (deleted)"), else nothing.
pid_alive() {
  local file=$1 pid exe
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 0
  [ "${exe% (deleted)}" = "$(readlink -f "$BIN")" ] || return 0
  echo "$pid"
}



port_busy() { ss -Hltn "sport = :${1##*:}" | grep -q .; }

cmd_build() {
  command -v go >/dev/null || die "go not found"
  mkdir -p "$(dirname "$BIN")"
  log "building $BIN"
  (cd "$REPO" && go build -o "$BIN" ./cmd/iiif-proxy)
}

cmd_samples() {
  [ -x "$BIN" ] || cmd_build
  "$BIN" samples -small -dir "$SAMPLES" >&2
}

cmd_urls() {
  local file=${1:-$DIR/tiles.txt} x y
  mkdir -p "$(dirname "$file")"
  {
    # page.tif, 3000x4000: full-resolution 256 px tiles wholly inside (11 x 15)
    for ((y = 0; y + 256 <= 4000; y += 256)); do
      for ((x = 0; x + 256 <= 3000; x += 256)); do
        echo "/iiif/3/page.tif/$x,$y,256,256/256,/0/default.jpg"
      done
    done
    # page-plain.jpg, 3000x4000: 512 px regions at half size (5 x 7)
    for ((y = 0; y + 512 <= 4000; y += 512)); do
      for ((x = 0; x + 512 <= 3000; x += 512)); do
        echo "/iiif/3/page-plain.jpg/$x,$y,512,512/256,/0/default.jpg"
      done
    done
  } >"$file"
  log "urls: $(wc -l <"$file") paths in $file"
  echo "$file"
}

cmd_status() {
  local pid rc=0
  pid=$(pid_alive "$PIDF")
  if [ -z "$pid" ]; then echo "origin: stopped"; return 3; fi
  echo "origin: iiif-proxy pid $pid (http $(cat "$DIR/listen" 2>/dev/null), cpus $(taskset -cp "$pid" 2>/dev/null | sed 's/.*: //'))"
  if curl -fsS -m 5 -o /dev/null "http://$(cat "$DIR/listen")/iiif/3/page.tif/info.json"; then
    echo "http:   ok"
  else
    echo "http:   not answering (GET /iiif/3/page.tif/info.json)"; rc=1
  fi
  return $rc
}

cmd_start() {
  require_loopback ORIGIN "$ORIGIN"
  require_loopback ADMIN "$ADMIN"
  local pid
  pid=$(pid_alive "$PIDF")
  if [ -n "$pid" ]; then log "already running"; cmd_status; return 0; fi
  rm -f "$PIDF"
  port_busy "$ORIGIN" && die "$ORIGIN is already in use by someone else"
  port_busy "$ADMIN" && die "$ADMIN is already in use by someone else"
  [ -x "$BIN" ] || cmd_build
  [ -e "$SAMPLES/page.tif" ] && [ -e "$SAMPLES/page-plain.jpg" ] || cmd_samples
  mkdir -p "$DIR" "$CACHEDIR"
  [ "$KEEP_CACHE" = 1 ] || find "$CACHEDIR" -mindepth 1 -delete
  echo "$ORIGIN" >"$DIR/listen"
  local pin=()
  [ -n "$ORIGIN_CORE" ] && pin=(taskset -c "$ORIGIN_CORE")
  # exec chain (env, taskset): $! is the iiif-proxy PID itself
  env RAIS_TILEPATH="$SAMPLES" RAIS_CACHEDIR="$CACHEDIR" RAIS_ADDRESS="$ORIGIN" \
    RAIS_ADMINADDRESS="$ADMIN" "${pin[@]}" "$BIN" -config /dev/null \
    </dev/null >>"$DIR/iiif-proxy.log" 2>&1 &
  echo $! >"$PIDF"
  if ! wait_listen "$ORIGIN" 100 || [ -z "$(pid_alive "$PIDF")" ]; then
    tail -20 "$DIR/iiif-proxy.log" >&2 || true
    cmd_stop; die "iiif-proxy did not come up on $ORIGIN"
  fi
  log "started: http://$ORIGIN/iiif/3/{id}/... (images $SAMPLES, cache $CACHEDIR)"
  cmd_status
}

cmd_stop() {
  local pid
  pid=$(pid_alive "$PIDF")
  if [ -z "$pid" ]; then
    [ -e "$PIDF" ] && log "stale pid file removed"
    rm -f "$PIDF"; return 0
  fi
  log "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" 150; then
    log "pid $pid ignored TERM for 15s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 50 || die "pid $pid will not die"
  fi
  rm -f "$PIDF"
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  build) cmd_build ;;
  samples) cmd_samples ;;
  urls) shift; cmd_urls "$@" ;;
  *) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

#!/bin/bash
# Varnish Cache (Debian varnish) in front of an IIIF origin: a peer for
# comparing iiif-proxy's cache with the usual caches. See bench/peers/README.md.
#
# usage: bench/peers/varnish.sh start | stop | status | restart | stats | install
#
# Environment (defaults in brackets):
#   LISTEN       HTTP listen address (loopback only)            [127.0.0.1:18082]
#   ORIGIN       origin host:port (loopback only)               [127.0.0.1:12415]
#   CORE         CPU list varnishd (manager and cache child) is pinned to [1]
#   STORAGE      malloc = in memory; file = mmap'ed file $PEER_DIR/storage.bin
#                (not persistent: emptied on every start)        [malloc]
#   SIZE         storage size                                    [1G]
#   TTL_MODE     force  = cache every 200 for TTL whatever the origin says
#                         (Cache-Control, Set-Cookie, Vary are ignored)
#                origin = honour the origin's Cache-Control/Expires (builtin
#                         VCL); TTL only when the origin says nothing  [force]
#   TTL          lifetime of a cached 200 (VCL duration)          [1d]
#   THREADS_MIN, THREADS_MAX  worker threads of the single pool   [32, 512]
#   PEER_DIR     VCL, -n working dir, pid file, logs  [/tmp/peers/varnish]
#
# Responses carry X-Cache: HIT or MISS (from obj.hits; requests that waited
# for a concurrent fetch of the same URL count as HIT). `stats` prints
# varnishstat's hit/miss counters. The cache key is the URL only (not Host).
# The one process this script starts (varnishd -F, the manager) is recorded
# in $PEER_DIR/varnishd.pid; `stop` kills exactly that PID (after checking
# /proc/PID/exe) and waits for its cache child, nothing by name.
set -euo pipefail

NAME=varnish
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DIR=${PEER_DIR:-/tmp/peers/$NAME}
LISTEN=${LISTEN:-127.0.0.1:18082}
ORIGIN=${ORIGIN:-127.0.0.1:12415}
CORE=${CORE:-1}
STORAGE=${STORAGE:-malloc}
SIZE=${SIZE:-1G}
TTL_MODE=${TTL_MODE:-force}
TTL=${TTL:-1d}
THREADS_MIN=${THREADS_MIN:-32}
THREADS_MAX=${THREADS_MAX:-512}
VARNISHD=/usr/sbin/varnishd
PIDF=$DIR/varnishd.pid
WORK=$DIR/work
HEALTH=/_peer/health


# ---------------------------------------------------------------- install
ensure_installed() {
  local missing=()
  [ -x "$VARNISHD" ] || missing+=(varnish)
  command -v cc >/dev/null || missing+=(gcc) # varnishd compiles VCL with cc
  command -v curl >/dev/null || missing+=(curl)
  command -v taskset >/dev/null || missing+=(util-linux)
  command -v ss >/dev/null || missing+=(iproute2)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}) and not root"
  log "installing: ${missing[*]}"
  # The package's varnish.service is not used (and not started where
  # policy-rc.d forbids it); our instance has its own -n dir and port.
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  fi
}



children() { cat /proc/"$1"/task/*/children 2>/dev/null || true; }

# stop_pid NAME FILE EXE: TERM the recorded PID (the manager stops its cache
# child itself), bounded wait, KILL if need be; then wait for the children.
stop_pid() {
  local name=$1 file=$2 exe=$3 pid kids k
  pid=$(pid_alive "$file" "$exe")
  if [ -z "$pid" ]; then
    [ -e "$file" ] && log "$name: stale pid file removed"
    rm -f "$file"
    return 0
  fi
  kids=$(children "$pid")
  log "$name: stopping pid $pid${kids:+ (children: $(echo $kids))}"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" 150; then
    log "$name: pid $pid ignored TERM for 15s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 50 || die "$name: pid $pid will not die"
  fi
  for k in $kids; do
    if [ "$(readlink "/proc/$k/exe" 2>/dev/null)" = "$exe" ]; then
      wait_gone "$k" 50 || { log "$name: child $k still alive, KILL"; kill -KILL "$k" 2>/dev/null || true; }
    fi
  done
  rm -f "$file"
}


port_busy() { ss -Hltn "sport = :${1##*:}" | grep -q .; }

cpus_of() { taskset -cp "$1" 2>/dev/null | sed 's/.*: //'; }

# ---------------------------------------------------------------- VCL
write_vcl() {
  local beresp
  case $TTL_MODE in
    force)
      beresp="
    if (beresp.status == 200) {
        # Whatever the origin says: cache 200s for $TTL. Skipping the builtin
        # vcl_backend_response also skips its hit-for-miss on Set-Cookie,
        # Cache-Control: private/no-store and Vary: *.
        set beresp.ttl = $TTL;
        unset beresp.http.Set-Cookie;
        unset beresp.http.Vary;
        return (deliver);
    }
    # Errors (404, 503 with Retry-After, ...) are not cached; a short
    # hit-for-miss keeps later requests for the URL off the waiting list.
    set beresp.ttl = 10s;
    set beresp.uncacheable = true;
    return (deliver);"
      ;;
    origin)
      beresp="
    # Honour the origin (builtin VCL follows); default_ttl is $TTL for
    # responses without Cache-Control/Expires. Only 200s are kept.
    if (beresp.status != 200) {
        set beresp.ttl = 10s;
        set beresp.uncacheable = true;
        return (deliver);
    }"
      ;;
    *) die "TTL_MODE=$TTL_MODE: force or origin" ;;
  esac
  cat >"$DIR/default.vcl" <<EOF
# Rendered by bench/peers/varnish.sh; edits are overwritten on start.
vcl 4.1;

backend origin {
    .host = "${ORIGIN%:*}";
    .port = "${ORIGIN##*:}";
    .connect_timeout = 5s;
    .first_byte_timeout = 120s;
    .between_bytes_timeout = 60s;
}

sub vcl_recv {
    if (req.url == "$HEALTH") {
        return (synth(200, "ok"));
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    if (req.http.Authorization) {
        return (pass);
    }
    # The builtin vcl_recv passes every request with a Cookie header.
    unset req.http.Cookie;
    return (hash);
}

sub vcl_hash {
    # Key on the URL only (the builtin also hashes Host), like the nginx peer.
    hash_data(req.url);
    return (lookup);
}

sub vcl_backend_response {$beresp
}

sub vcl_deliver {
    # Replaces the origin's own X-Cache (stored with the object).
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}

sub vcl_synth {
    set resp.http.X-Cache = "PEER";
}
EOF
}

# ---------------------------------------------------------------- commands
cmd_status() {
  local pid listen origin rc=0 kids k
  pid=$(pid_alive "$PIDF" "$VARNISHD")
  listen=$(cat "$DIR/listen" 2>/dev/null || echo "$LISTEN")
  origin=$(cat "$DIR/origin" 2>/dev/null || echo "$ORIGIN")
  if [ -z "$pid" ]; then echo "varnish: stopped"; return 3; fi
  echo "varnish: manager pid $pid (http $listen -> origin $origin, cpus $(cpus_of "$pid"))"
  kids=$(children "$pid")
  for k in $kids; do
    echo "  child $k: $(cat /proc/"$k"/comm 2>/dev/null) user $(stat -c %U /proc/"$k" 2>/dev/null)," \
      "$(ls /proc/"$k"/task 2>/dev/null | wc -l) threads, cpus $(cpus_of "$k")" \
      "(threads on other cpus: $(for t in /proc/"$k"/task/*; do taskset -cp "${t##*/}" 2>/dev/null; done | grep -vc ": $(cpus_of "$k")\$" || true))"
  done
  if curl -fsS -m 5 -o /dev/null "http://$listen$HEALTH"; then echo "http:   ok"; else echo "http:   not answering"; rc=1; fi
  cmd_stats 2>/dev/null || true
  return $rc
}

cmd_stats() {
  command -v varnishstat >/dev/null || return 0
  varnishstat -n "$WORK" -1 -f MAIN.client_req -f MAIN.cache_hit -f MAIN.cache_miss \
    -f MAIN.cache_hitmiss -f MAIN.cache_hitpass -f MAIN.busy_sleep -f MAIN.backend_req \
    -f MAIN.threads -f MAIN.n_object -f 'SM?.*.g_bytes' 2>/dev/null | awk '{printf "  %-28s %s\n", $1, $2}'
}

cmd_start() {
  require_loopback LISTEN "$LISTEN"
  require_loopback ORIGIN "$ORIGIN"
  ensure_installed
  local pid storage
  pid=$(pid_alive "$PIDF" "$VARNISHD")
  if [ -n "$pid" ]; then
    [ "$(cat "$DIR/listen" 2>/dev/null)" = "$LISTEN" ] && [ "$(cat "$DIR/origin" 2>/dev/null)" = "$ORIGIN" ] \
      || log "warning: running with $(cat "$DIR/listen" 2>/dev/null) -> $(cat "$DIR/origin" 2>/dev/null); use restart to change"
    log "already running"; cmd_status; return 0
  fi
  rm -f "$PIDF"
  port_busy "$LISTEN" && die "$LISTEN is already in use by someone else"
  curl -s -m 3 -o /dev/null "http://$ORIGIN/" || log "warning: origin $ORIGIN does not answer (yet)"
  case $STORAGE in
    malloc) storage=malloc,$SIZE; rm -f "$DIR/storage.bin" ;;
    file) storage=file,$DIR/storage.bin,$SIZE ;;
    *) die "STORAGE=$STORAGE: malloc or file" ;;
  esac

  mkdir -p "$DIR"
  write_vcl
  echo "$LISTEN" >"$DIR/listen"
  echo "$ORIGIN" >"$DIR/origin"
  local args=(-n "$WORK" -a "$LISTEN,HTTP" -T 127.0.0.1:0 -f "$DIR/default.vcl" -s "$storage"
    -p thread_pools=1 -p thread_pool_min="$THREADS_MIN" -p thread_pool_max="$THREADS_MAX"
    -p syslog_cli_traffic=off)
  [ "$TTL_MODE" = origin ] && args+=(-p default_ttl="$(ttl_seconds "$TTL")")
  # compile the VCL first, so errors show here rather than in varnishd.out
  # (-C writes the generated C, or the compiler's complaint, to stderr)
  if ! "$VARNISHD" -C "${args[@]}" >/dev/null 2>"$DIR/vcl-check.err"; then
    tail -30 "$DIR/vcl-check.err" >&2; die "VCL does not compile ($DIR/default.vcl)"
  fi
  rm -f "$DIR/vcl-check.err"

  # -F: the manager stays in the foreground, so $! is its PID; it forks the
  # cache child (which serves) and both inherit the affinity.
  taskset -c "$CORE" "$VARNISHD" -F -P "$DIR/varnishd.mgr.pid" "${args[@]}" \
    </dev/null >>"$DIR/varnishd.out" 2>&1 &
  echo $! >"$PIDF"
  if ! wait_listen "$LISTEN" 150 || [ -z "$(pid_alive "$PIDF" "$VARNISHD")" ]; then
    tail -20 "$DIR/varnishd.out" >&2 || true
    cmd_stop; die "varnishd did not come up on $LISTEN"
  fi
  log "started: http://$LISTEN/... -> http://$ORIGIN/... (storage $storage, TTL_MODE=$TTL_MODE TTL=$TTL)"
  cmd_status
}

# ttl_seconds 1d -> 86400 (s m h d w y suffixes, as in VCL)
ttl_seconds() {
  local v=$1 n u
  n=${v%%[smhdwy]}; u=${v#"$n"}
  [[ $n =~ ^[0-9]+$ ]] || die "TTL=$v: number with s/m/h/d/w/y suffix"
  case $u in
    s|'') echo "$n" ;; m) echo $((n * 60)) ;; h) echo $((n * 3600)) ;;
    d) echo $((n * 86400)) ;; w) echo $((n * 604800)) ;; y) echo $((n * 31536000)) ;;
  esac
}

cmd_stop() {
  stop_pid varnishd "$PIDF" "$VARNISHD"
  rm -f "$DIR/storage.bin"
  return 0
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  stats) cmd_stats ;;
  install) ensure_installed ;;
  *) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

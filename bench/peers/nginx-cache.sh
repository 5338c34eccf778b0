#!/bin/bash
# nginx as a caching reverse proxy (proxy_cache, on disk) in front of an IIIF
# origin: a peer for comparing iiif-proxy's cache with the usual caches.
# See bench/peers/README.md.
#
# usage: bench/peers/nginx-cache.sh start | stop | status | restart | purge | install
#
# Environment (defaults in brackets):
#   LISTEN       HTTP listen address (loopback only)            [127.0.0.1:18081]
#   ORIGIN       origin host:port (loopback only)               [127.0.0.1:12415]
#   CORE         CPU list nginx is pinned to (taskset -c)       [1]
#   TTL_MODE     force  = cache every 200 for TTL, ignoring the origin's
#                         Cache-Control/Expires/Set-Cookie/Vary
#                origin = honour the origin's Cache-Control/Expires; TTL only
#                         when the origin says nothing               [force]
#   TTL          lifetime of a cached 200 (nginx time syntax)    [1d]
#   CACHE_MAX    proxy_cache_path max_size                       [10g]
#   KEEP_CACHE   1 = start keeps what is in the cache directory; by default
#                start empties it so every run begins cold       [0]
#   PEER_DIR     config, pid files, logs, cache  [/tmp/peers/nginx-cache]
#
# Responses carry X-Cache: $upstream_cache_status (HIT, MISS, EXPIRED, ...);
# the origin's own X-Cache is hidden. Cache files: $PEER_DIR/cache.
# The one process this script starts (the nginx master, daemon off) is
# recorded in $PEER_DIR/nginx.pid; `stop` kills exactly that PID (after
# checking /proc/PID/exe) and waits for its workers, nothing by name.
set -euo pipefail

NAME=nginx-cache
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DIR=${PEER_DIR:-/tmp/peers/$NAME}
LISTEN=${LISTEN:-127.0.0.1:18081}
ORIGIN=${ORIGIN:-127.0.0.1:12415}
CORE=${CORE:-1}
TTL_MODE=${TTL_MODE:-force}
TTL=${TTL:-1d}
CACHE_MAX=${CACHE_MAX:-10g}
KEEP_CACHE=${KEEP_CACHE:-0}
NGINX=/usr/sbin/nginx
PIDF=$DIR/nginx.pid
HEALTH=/_peer/health


# ---------------------------------------------------------------- install
ensure_installed() {
  local missing=()
  [ -x "$NGINX" ] || missing+=(nginx-light)
  command -v curl >/dev/null || missing+=(curl)
  command -v taskset >/dev/null || missing+=(util-linux)
  command -v ss >/dev/null || missing+=(iproute2)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}) and not root"
  log "installing: ${missing[*]}"
  # Our instance has its own prefix/config/port; the system nginx is not used.
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  fi
}



children() { cat /proc/"$1"/task/*/children 2>/dev/null || true; }

# stop_pid NAME FILE EXE: TERM the recorded PID, bounded wait, KILL if need be;
# then wait for its children (nginx workers, cache manager/loader).
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
  rm -f "$file"
}


port_busy() { ss -Hltn "sport = :${1##*:}" | grep -q .; }

cpus_of() { taskset -cp "$1" 2>/dev/null | sed 's/.*: //'; }

# ---------------------------------------------------------------- config
write_config() {
  local ignore="" valid
  case $TTL_MODE in
    force)
      # Cache-Control/Expires/X-Accel-Expires from the origin would override
      # proxy_cache_valid; Set-Cookie and Vary: * would make nginx skip caching.
      ignore="proxy_ignore_headers Cache-Control Expires X-Accel-Expires Set-Cookie Vary;
            proxy_hide_header Set-Cookie;"
      ;;
    origin) ;;
    *) die "TTL_MODE=$TTL_MODE: force or origin" ;;
  esac
  valid="proxy_cache_valid 200 $TTL;"
  cat >"$DIR/nginx.conf" <<EOF
# Rendered by bench/peers/nginx-cache.sh; edits are overwritten on start.
worker_processes 1;
daemon off;
user nobody nogroup;
pid $DIR/nginx.master.pid;
error_log $DIR/error.log warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 60s;
    keepalive_requests 1000000;

    client_body_temp_path $DIR/tmp/client_body;
    proxy_temp_path       $DIR/tmp/proxy;
    fastcgi_temp_path     $DIR/tmp/fastcgi;
    uwsgi_temp_path       $DIR/tmp/uwsgi;
    scgi_temp_path        $DIR/tmp/scgi;

    # use_temp_path=off: responses are written to a temporary file inside
    # the cache directory and renamed into place, no copy across paths.
    proxy_cache_path $DIR/cache levels=1:2 keys_zone=iiif:64m
                     max_size=$CACHE_MAX inactive=$TTL use_temp_path=off;

    upstream origin {
        server $ORIGIN;
        keepalive 64;
    }

    server {
        listen $LISTEN backlog=4096;
        server_name localhost;

        location = $HEALTH {
            add_header X-Cache PEER always;
            return 200 "ok\n";
        }

        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;

            # Caching needs proxy_buffering on (off disables proxy_cache).
            proxy_buffering on;
            proxy_buffer_size 32k;
            proxy_buffers 64 16k;

            proxy_cache iiif;
            proxy_cache_key \$request_uri;
            proxy_cache_methods GET HEAD;
            $valid
            $ignore
            # Collapse concurrent misses: one request goes to the origin, the
            # others wait for the cache entry (up to 60 s, then go uncached).
            proxy_cache_lock on;
            proxy_cache_lock_timeout 60s;
            proxy_cache_lock_age 60s;

            proxy_hide_header X-Cache;
            add_header X-Cache \$upstream_cache_status always;
        }
    }
}
EOF
}

# ---------------------------------------------------------------- commands
cmd_status() {
  local pid listen origin rc=0 kids k
  pid=$(pid_alive "$PIDF" "$NGINX")
  listen=$(cat "$DIR/listen" 2>/dev/null || echo "$LISTEN")
  origin=$(cat "$DIR/origin" 2>/dev/null || echo "$ORIGIN")
  if [ -z "$pid" ]; then echo "nginx-cache: stopped"; return 3; fi
  echo "nginx-cache: running pid $pid (http $listen -> origin $origin, cpus $(cpus_of "$pid"))"
  kids=$(children "$pid")
  for k in $kids; do
    echo "  child $k: $(tr '\0' ' ' </proc/"$k"/cmdline 2>/dev/null | sed 's/ *$//') (cpus $(cpus_of "$k"))"
  done
  if curl -fsS -m 5 -o /dev/null "http://$listen$HEALTH"; then echo "http:   ok"; else echo "http:   not answering"; rc=1; fi
  echo "cache:  $(find "$DIR/cache" -type f 2>/dev/null | wc -l) files, $(du -sh "$DIR/cache" 2>/dev/null | cut -f1)"
  return $rc
}

cmd_start() {
  require_loopback LISTEN "$LISTEN"
  require_loopback ORIGIN "$ORIGIN"
  ensure_installed
  local pid
  pid=$(pid_alive "$PIDF" "$NGINX")
  if [ -n "$pid" ]; then
    [ "$(cat "$DIR/listen" 2>/dev/null)" = "$LISTEN" ] && [ "$(cat "$DIR/origin" 2>/dev/null)" = "$ORIGIN" ] \
      || log "warning: running with $(cat "$DIR/listen" 2>/dev/null) -> $(cat "$DIR/origin" 2>/dev/null); use restart to change"
    log "already running"; cmd_status; return 0
  fi
  rm -f "$PIDF"
  port_busy "$LISTEN" && die "$LISTEN is already in use by someone else"
  curl -s -m 3 -o /dev/null "http://$ORIGIN/" || log "warning: origin $ORIGIN does not answer (yet)"

  mkdir -p "$DIR"/tmp/{client_body,proxy,fastcgi,uwsgi,scgi} "$DIR/cache"
  if [ "$KEEP_CACHE" != 1 ]; then
    find "$DIR/cache" -mindepth 1 -delete
  fi
  chown -R nobody:nogroup "$DIR/tmp" "$DIR/cache" 2>/dev/null || true
  write_config
  echo "$LISTEN" >"$DIR/listen"
  echo "$ORIGIN" >"$DIR/origin"
  "$NGINX" -t -q -p "$DIR/" -c "$DIR/nginx.conf" -e "$DIR/error.log" \
    || die "nginx config test failed ($DIR/nginx.conf)"

  # daemon off: $! is the master; workers inherit the affinity.
  taskset -c "$CORE" "$NGINX" -p "$DIR/" -c "$DIR/nginx.conf" -e "$DIR/error.log" \
    </dev/null >>"$DIR/nginx.out" 2>&1 &
  echo $! >"$PIDF"
  if ! wait_listen "$LISTEN" 50 || [ -z "$(pid_alive "$PIDF" "$NGINX")" ]; then
    tail -5 "$DIR/error.log" >&2 || true
    cmd_stop; die "nginx did not come up on $LISTEN"
  fi
  log "started: http://$LISTEN/... -> http://$ORIGIN/... (TTL_MODE=$TTL_MODE TTL=$TTL)"
  sleep 0.3 # let the workers retitle themselves before status lists them
  cmd_status
}

cmd_stop() {
  stop_pid nginx "$PIDF" "$NGINX"
  return 0
}

cmd_purge() {
  [ -n "$(pid_alive "$PIDF" "$NGINX")" ] && die "stop first (nginx keeps the cache index in shared memory)"
  find "$DIR/cache" -mindepth 1 -delete 2>/dev/null || true
  log "cache emptied"
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  purge) cmd_purge ;;
  install) ensure_installed ;;
  *) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

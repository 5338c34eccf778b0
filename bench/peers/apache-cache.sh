#!/bin/bash
# Apache httpd (Debian apache2-bin: mod_cache + mod_cache_disk +
# mod_proxy_http, mpm_event) as a caching reverse proxy in front of an IIIF
# origin: a peer for comparing iiif-proxy's cache with the usual caches.
# See bench/peers/README.md.
#
# usage: bench/peers/apache-cache.sh start | stop | status | restart | purge | install
#
# Environment (defaults in brackets):
#   LISTEN       HTTP listen address (loopback only)            [127.0.0.1:18083]
#   ORIGIN       origin host:port (loopback only)               [127.0.0.1:12415]
#   CORE         CPU list httpd (parent and child) is pinned to [1]
#   TTL_MODE     force  = store every 200 with max-age=TTL: the origin's
#                         Cache-Control/Expires/Set-Cookie/Vary are replaced
#                         or dropped before mod_cache sees them
#                origin = honour the origin's Cache-Control/Expires, capped
#                         at TTL; TTL when the origin says nothing  [force]
#   TTL          lifetime of a cached 200, in seconds            [86400]
#   THREADS      ThreadsPerChild = MaxRequestWorkers (one child) [64]
#   DETAIL       1 = also send X-Cache-Detail (why stored or not) [0]
#   KEEP_CACHE   1 = start keeps what is in the cache directory; by default
#                start empties it so every run begins cold       [0]
#   PEER_DIR     ServerRoot: config, pid, logs, cache  [/tmp/peers/apache-cache]
#
# Never touches the system apache2 (service, /etc/apache2): its own -d/-f
# config LoadModule's from /usr/lib/apache2/modules. Responses carry
# X-Cache: "HIT from ...", "MISS from ..." or "REVALIDATE from ..."
# (CacheHeader on); the origin's own X-Cache is dropped.
# The one process this script starts (httpd -DFOREGROUND, the parent) is
# recorded in $PEER_DIR/httpd.pid; `stop` kills exactly that PID (after
# checking /proc/PID/exe) and waits for its child, nothing by name.
set -euo pipefail

NAME=apache-cache
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DIR=${PEER_DIR:-/tmp/peers/$NAME}
LISTEN=${LISTEN:-127.0.0.1:18083}
ORIGIN=${ORIGIN:-127.0.0.1:12415}
CORE=${CORE:-1}
TTL_MODE=${TTL_MODE:-force}
TTL=${TTL:-86400}
THREADS=${THREADS:-64}
DETAIL=${DETAIL:-0}
KEEP_CACHE=${KEEP_CACHE:-0}
HTTPD=/usr/sbin/apache2
MODS=/usr/lib/apache2/modules
PIDF=$DIR/httpd.pid
HEALTH=/_peer/health


# ---------------------------------------------------------------- install
ensure_installed() {
  local missing=()
  # apache2-bin has the binary and every module, without the apache2
  # package's service, /etc/apache2 sites and :80 listener.
  [ -x "$HTTPD" ] && [ -e "$MODS/mod_cache_disk.so" ] || missing+=(apache2-bin)
  command -v curl >/dev/null || missing+=(curl)
  command -v taskset >/dev/null || missing+=(util-linux)
  command -v ss >/dev/null || missing+=(iproute2)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}) and not root"
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  fi
}



children() { cat /proc/"$1"/task/*/children 2>/dev/null || true; }

# stop_pid NAME FILE EXE: TERM the recorded PID (httpd's parent stops its
# children), bounded wait, KILL if need be; then wait for the children.
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
  local force="" store=""
  [[ $TTL =~ ^[0-9]+$ ]] || die "TTL=$TTL: seconds"
  [[ $THREADS =~ ^[0-9]+$ ]] && [ "$THREADS" -ge 1 ] || die "THREADS=$THREADS: a positive number"
  case $TTL_MODE in
    force)
      # mod_headers' output filter (AP_FTYPE_CONTENT_SET) runs before
      # mod_cache's CACHE_SAVE (CONTENT_SET+1), so these edits are what
      # mod_cache judges and stores. "expr" limits them to 200s.
      # (Not "Header always": that edits err_headers_out, and the origin's
      # Cache-Control in headers_out would stay, giving two.)
      force="Header set Cache-Control \"public, max-age=$TTL\" \"expr=%{REQUEST_STATUS} == 200\"
    Header unset Expires \"expr=%{REQUEST_STATUS} == 200\"
    Header unset Set-Cookie \"expr=%{REQUEST_STATUS} == 200\"
    Header unset Vary \"expr=%{REQUEST_STATUS} == 200\""
      store="CacheStoreNoStore On
CacheStorePrivate On"
      ;;
    origin) ;;
    *) die "TTL_MODE=$TTL_MODE: force or origin" ;;
  esac
  cat >"$DIR/httpd.conf" <<EOF
# Rendered by bench/peers/apache-cache.sh; edits are overwritten on start.
ServerRoot "$DIR"
ServerName ${LISTEN%:*}
Listen $LISTEN
PidFile $DIR/run/httpd.pid
DefaultRuntimeDir $DIR/run
Mutex file:$DIR/run default
ErrorLog $DIR/error.log
LogLevel warn
User nobody
Group nogroup

LoadModule mpm_event_module   $MODS/mod_mpm_event.so
LoadModule authz_core_module  $MODS/mod_authz_core.so
LoadModule headers_module     $MODS/mod_headers.so
LoadModule proxy_module       $MODS/mod_proxy.so
LoadModule proxy_http_module  $MODS/mod_proxy_http.so
LoadModule cache_module       $MODS/mod_cache.so
LoadModule cache_disk_module  $MODS/mod_cache_disk.so

# One child process with a fixed set of threads (pinned with its parent).
StartServers 1
ServerLimit 1
ThreadLimit $THREADS
ThreadsPerChild $THREADS
MaxRequestWorkers $THREADS
MinSpareThreads 1
MaxSpareThreads $THREADS
MaxConnectionsPerChild 0

KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 60
Timeout 120
EnableSendfile On
EnableMMAP On
# no access log (no mod_log_config CustomLog / TransferLog)

DocumentRoot "$DIR/htdocs"
<Directory />
    Require all granted
</Directory>

ProxyRequests Off
ProxyPreserveHost On
ProxyPass $HEALTH !
ProxyPass / http://$ORIGIN/
ProxyPassReverse / http://$ORIGIN/

# ---- cache
CacheRoot $DIR/cache
CacheEnable disk /
CacheDisable $HEALTH
CacheDirLevels 2
CacheDirLength 1
CacheMinFileSize 1
CacheMaxFileSize 100000000
# The default quick handler serves hits before any other phase (mod_headers,
# access control, ... never run for a hit); CacheHeader still works.
CacheQuickHandler On
CacheHeader On
CacheDetailHeader $([ "$DETAIL" = 1 ] && echo On || echo Off)
CacheIgnoreNoLastMod On
CacheDefaultExpire $TTL
CacheMaxExpire $TTL
CacheIgnoreHeaders Set-Cookie X-Cache
$store
# Thundering-herd lock: only protects a STALE entry being refreshed; cold
# misses for the same URL all go to the origin.
CacheLock On
CacheLockPath $DIR/run/cache-lock
CacheLockMaxAge 5

<Location />
    # Replaces the origin's own X-Cache. mod_cache's CacheHeader overwrites
    # it (MISS/HIT/REVALIDATE from ...) whenever the cache handles the
    # request; it stays BYPASS when mod_cache stepped aside, e.g. a cold miss
    # while another request for the URL holds the CacheLock.
    Header set X-Cache BYPASS
    $force
</Location>
EOF
}

# ---------------------------------------------------------------- commands
cmd_status() {
  local pid listen origin rc=0 kids k
  pid=$(pid_alive "$PIDF" "$HTTPD")
  listen=$(cat "$DIR/listen" 2>/dev/null || echo "$LISTEN")
  origin=$(cat "$DIR/origin" 2>/dev/null || echo "$ORIGIN")
  if [ -z "$pid" ]; then echo "apache-cache: stopped"; return 3; fi
  echo "apache-cache: parent pid $pid (http $listen -> origin $origin, cpus $(cpus_of "$pid"))"
  kids=$(children "$pid")
  for k in $kids; do
    echo "  child $k: user $(stat -c %U /proc/"$k" 2>/dev/null), $(ls /proc/"$k"/task 2>/dev/null | wc -l) threads, cpus $(cpus_of "$k")"
  done
  if curl -fsS -m 5 -o /dev/null "http://$listen$HEALTH"; then echo "http:   ok"; else echo "http:   not answering"; rc=1; fi
  echo "cache:  $(find "$DIR/cache" -name '*.data' 2>/dev/null | wc -l) bodies, $(du -sh "$DIR/cache" 2>/dev/null | cut -f1)"
  return $rc
}

cmd_start() {
  require_loopback LISTEN "$LISTEN"
  require_loopback ORIGIN "$ORIGIN"
  ensure_installed
  local pid
  pid=$(pid_alive "$PIDF" "$HTTPD")
  if [ -n "$pid" ]; then
    [ "$(cat "$DIR/listen" 2>/dev/null)" = "$LISTEN" ] && [ "$(cat "$DIR/origin" 2>/dev/null)" = "$ORIGIN" ] \
      || log "warning: running with $(cat "$DIR/listen" 2>/dev/null) -> $(cat "$DIR/origin" 2>/dev/null); use restart to change"
    log "already running"; cmd_status; return 0
  fi
  rm -f "$PIDF"
  port_busy "$LISTEN" && die "$LISTEN is already in use by someone else"
  curl -s -m 3 -o /dev/null "http://$ORIGIN/" || log "warning: origin $ORIGIN does not answer (yet)"

  mkdir -p "$DIR"/{run,cache,htdocs/_peer}
  echo ok >"$DIR/htdocs/_peer/health"
  if [ "$KEEP_CACHE" != 1 ]; then
    find "$DIR/cache" -mindepth 1 -delete
  fi
  rm -rf "$DIR/run"/*
  chown -R nobody:nogroup "$DIR/cache" "$DIR/run" 2>/dev/null || true
  write_config
  echo "$LISTEN" >"$DIR/listen"
  echo "$ORIGIN" >"$DIR/origin"
  "$HTTPD" -d "$DIR" -f "$DIR/httpd.conf" -t >"$DIR/configtest.out" 2>&1 \
    || { cat "$DIR/configtest.out" >&2; die "httpd config test failed ($DIR/httpd.conf)"; }

  # -DFOREGROUND: the parent does not detach, so $! is its PID; the child
  # (the one that serves) inherits the affinity.
  taskset -c "$CORE" "$HTTPD" -d "$DIR" -f "$DIR/httpd.conf" -DFOREGROUND \
    </dev/null >>"$DIR/httpd.out" 2>&1 &
  echo $! >"$PIDF"
  if ! wait_listen "$LISTEN" 50 || [ -z "$(pid_alive "$PIDF" "$HTTPD")" ]; then
    tail -5 "$DIR/error.log" >&2 || true
    cmd_stop; die "httpd did not come up on $LISTEN"
  fi
  log "started: http://$LISTEN/... -> http://$ORIGIN/... (TTL_MODE=$TTL_MODE TTL=${TTL}s, $THREADS threads)"
  cmd_status
}

cmd_stop() {
  stop_pid httpd "$PIDF" "$HTTPD"
  return 0
}

cmd_purge() {
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
  *) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

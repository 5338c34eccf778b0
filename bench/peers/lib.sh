# shellcheck shell=bash
# Shared by the peer scripts (sourced): logging, the loopback check and PID
# handling. Scripts set NAME before sourcing; a script may redefine any of
# these after sourcing (iipimage.sh keeps its own log, die and
# require_loopback, origin.sh its own pid_alive).

log() { printf '[%s] %s\n' "$NAME" "$*" >&2; }
die() { log "error: $*"; exit 1; }

require_loopback() {
  case $2 in
    127.0.0.1:[0-9]*) ;;
    *) die "$1=$2: only 127.0.0.1:PORT is allowed" ;;
  esac
}

# ---------------------------------------------------------------- pid helpers
# pid_alive FILE EXE: prints the PID if FILE names a live process whose
# executable is EXE (guards against PID reuse), else prints nothing.
pid_alive() {
  local file=$1 exe=$2 pid
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] || return 0
  echo "$pid"
}

# wait_gone PID TENTHS: bounded wait for PID to exit.
wait_gone() {
  local pid=$1 n=$2 i
  for ((i = 0; i < n; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# wait_listen ADDR TENTHS
wait_listen() {
  local addr=$1 n=$2 i
  for ((i = 0; i < n; i++)); do
    ss -Hltn "sport = :${addr##*:}" | grep -q . && return 0
    sleep 0.1
  done
  return 1
}


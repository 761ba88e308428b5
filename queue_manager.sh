#!/usr/bin/env bash
# queue_manager.sh — start, stop and look at the ICT queue workers.
#
# Where Supervisor runs the workers (production), it drives supervisorctl on every program the
# deploy kit installed (ictq workers and the Laravel app's PHP workers alike: each program's
# group NAME:*). Elsewhere (a developer machine) it manages one background `ictq work` with a
# pid file in storage/.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: queue_manager.sh COMMAND [ARGS]

Commands:
  start            start the workers (every Supervisor program, or one background worker)
  stop             stop them; each finishes its current job first
  restart          stop, then start
  status           each program's workers, and queue sizes (exit 0 running, 3 stopped)
  list [ARGS]      queued jobs (ictq list ARGS, e.g. --queue emails --state delayed)
  logs [-n N] [-f] the last N lines of storage/logs/queue.log (default 50); -f follows
  test EMAIL       send the test e-mails (password reset, account activation) through the queue

Environment:
  APP_DIR              application directory with .env (default: this script's directory)
  ICTQ                 the ictq command (default: APP_DIR/.venv/bin/ictq, APP_DIR/venv/bin/ictq, or ictq on PATH)
  SUPERVISORCTL        the supervisorctl command (default: supervisorctl)
  SUPERVISOR_PROGRAMS  the Supervisor programs, space- or comma-separated (default: SUPERVISOR_PROGRAM if set,
                       else every program of the files in SUPERVISOR_CONF_DIR marked "Managed by the ictq
                       deploy kit", else laravel-worker)
  SUPERVISOR_PROGRAM   one Supervisor program, when SUPERVISOR_PROGRAMS is not set
  SUPERVISOR_CONF_DIR  Supervisor's include directory (default: /etc/supervisor/conf.d)
  SUPERVISOR_CONF      a program file; when it (or any program's SUPERVISOR_CONF_DIR/NAME.conf) exists,
                       Supervisor mode is used (default: SUPERVISOR_CONF_DIR/FIRST_PROGRAM.conf)
  QUEUE_WORK_ARGS      extra arguments for `ictq work` in local mode (default: --max-time=3600)
  STOP_TIMEOUT         seconds to wait for a local worker to finish its job (default: 70)
  TEST_EMAIL_WAIT      seconds `test` waits for the mails to be sent (default: 60)

Exit codes: 0 done, 1 failed, 2 usage error, 3 (status) not running.
EOF
}

die() { echo "queue_manager: $*" >&2; exit 1; }

APP_DIR=${APP_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
CONF_DIR=${SUPERVISOR_CONF_DIR:-/etc/supervisor/conf.d}
KIT_MARKER="; Managed by the ictq deploy kit"
read -r -a SUPERVISORCTL_CMD <<<"${SUPERVISORCTL:-supervisorctl}"
read -r -a WORK_ARGS <<<"${QUEUE_WORK_ARGS:---max-time=3600}"
PID_FILE="$APP_DIR/storage/queue-worker.pid"
LOG_FILE="$APP_DIR/storage/logs/queue.log"
OUT_FILE="$APP_DIR/storage/logs/worker.out"

find_ictq() {
  if [[ -n ${ICTQ:-} ]]; then echo "$ICTQ"; return; fi
  local candidate
  for candidate in "$APP_DIR/.venv/bin/ictq" "$APP_DIR/venv/bin/ictq"; do
    if [[ -x $candidate ]]; then echo "$candidate"; return; fi
  done
  type -P ictq || die "ictq not found (set ICTQ, or install it into $APP_DIR/.venv)"
}

ictq() {
  local bin
  bin=$(find_ictq)
  (cd "$APP_DIR" && "$bin" --env-file "$APP_DIR/.env" "$@")
}

# -- Supervisor mode -------------------------------------------------------------------

# The programs driven: named, or found in the kit's files (ictq and PHP workers alike).
find_programs() {
  local names=() file name
  if [[ -n ${SUPERVISOR_PROGRAMS:-} ]]; then
    read -r -a names <<<"${SUPERVISOR_PROGRAMS//,/ }"
  elif [[ -n ${SUPERVISOR_PROGRAM:-} ]]; then
    names=("$SUPERVISOR_PROGRAM")
  else
    for file in "$CONF_DIR"/*.conf; do
      grep -qF -- "$KIT_MARKER" "$file" 2>/dev/null || continue
      name=$(sed -n 's/^\[program:\(.*\)\][[:space:]]*$/\1/p' "$file" | head -n 1)
      [[ -n $name ]] && names+=("$name")
    done
  fi
  ((${#names[@]})) || names=(laravel-worker)
  for name in "${names[@]}"; do
    [[ $name =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] || { echo "queue_manager: '$name' is not a Supervisor program name" >&2; exit 2; }
  done
  PROGRAMS=("${names[@]}")
  GROUPS_ARGS=("${names[@]/%/:*}")
}

supervised() {
  # A program's file in conf.d decides even while supervisord is down (then supervisorctl
  # says so), so production never falls back to a stray background worker.
  local program available
  [[ -f ${SUPERVISOR_CONF:-$CONF_DIR/${PROGRAMS[0]}.conf} ]] && return 0
  for program in "${PROGRAMS[@]}"; do
    [[ -f $CONF_DIR/$program.conf ]] && return 0
  done
  command -v "${SUPERVISORCTL_CMD[0]}" >/dev/null 2>&1 || return 1
  available=$("${SUPERVISORCTL_CMD[@]}" avail 2>/dev/null) || return 1
  for program in "${PROGRAMS[@]}"; do
    grep -q "^${program}:" <<<"$available" && return 0
  done
  return 1
}

sv() { "${SUPERVISORCTL_CMD[@]}" "$@"; }

# Each program's processes under its name; 0 when all run, 3 when any does not.
sv_status() {
  local program code result=0
  for program in "${PROGRAMS[@]}"; do
    echo "${program}:"
    code=0
    sv status "${program}:*" || code=$?
    case $code in
      0) ;;
      3) echo "some ${program} processes are not running"; result=3 ;;
      4) echo "${program} is unknown to Supervisor, or supervisord is not running"; result=3 ;;
      *) [[ $result -ne 0 ]] || result=$code ;;
    esac
  done
  return "$result"
}

# -- local mode --------------------------------------------------------------------------

local_pid() {
  [[ -f $PID_FILE ]] || return 1
  local pid
  pid=$(<"$PID_FILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "ictq" || return 1
  echo "$pid"
}

local_start() {
  local pid
  if pid=$(local_pid); then die "a worker is already running (pid $pid); use restart"; fi
  mkdir -p "$APP_DIR/storage/logs"
  local bin
  bin=$(find_ictq)
  (cd "$APP_DIR" && exec nohup "$bin" --env-file "$APP_DIR/.env" work "${WORK_ARGS[@]}" >>"$OUT_FILE" 2>&1 </dev/null) &
  pid=$!
  echo "$pid" >"$PID_FILE"
  sleep 0.5
  kill -0 "$pid" 2>/dev/null || { rm -f "$PID_FILE"; tail -n 5 "$OUT_FILE" >&2; die "the worker exited at once (see above)"; }
  echo "worker started (pid $pid)"
}

local_stop() {
  local pid
  local waited=0 limit=${STOP_TIMEOUT:-70}
  # Checked before any arithmetic: bash would evaluate an expression (and a command in it).
  [[ $limit =~ ^[0-9]{1,7}$ ]] || { echo "queue_manager: STOP_TIMEOUT must be whole seconds (ASCII digits)" >&2; exit 2; }
  if ! pid=$(local_pid); then rm -f "$PID_FILE"; echo "no worker is running"; return 0; fi
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= limit * 10)); then die "worker $pid still busy after ${limit}s; it stops after its job (kill -TERM $pid again to stop it at once)"; fi
    sleep 0.1
    waited=$((waited + 1))
  done
  rm -f "$PID_FILE"
  echo "worker stopped (pid $pid)"
}

local_status() {
  local pid
  if pid=$(local_pid); then
    echo "worker running: pid $pid, up $(ps -o etime= -p "$pid" | tr -d ' ')"
    return 0
  fi
  echo "worker not running"
  return 3
}

# -- commands ----------------------------------------------------------------------------

cmd_status() {
  local code=0
  if supervised; then sv_status || code=$?; else local_status || code=$?; fi
  echo
  ictq size || true
  return "$code"
}

cmd_logs() {
  local lines=50 follow=()
  while (($#)); do
    case $1 in
      -n) [[ ${2:-} =~ ^[0-9]+$ ]] || { echo "queue_manager: logs -n takes a number" >&2; exit 2; }; lines=$2; shift 2 ;;
      -f) follow=(-F); shift ;;
      *) echo "queue_manager: logs takes -n N and -f" >&2; exit 2 ;;
    esac
  done
  [[ -f $LOG_FILE ]] || die "no log yet at $LOG_FILE"
  tail -n "$lines" "${follow[@]}" "$LOG_FILE"
}

cmd_test() {
  [[ $# -eq 1 && -n $1 ]] || { echo "queue_manager: usage: test EMAIL" >&2; exit 2; }
  if ! ictq test-email --help >/dev/null 2>&1; then
    die "this ictq has no test-email command yet (upgrade ictq)"
  fi
  ictq test-email --email="$1" --wait "${TEST_EMAIL_WAIT:-60}"
}

main() {
  local command=${1:-}
  [[ -n $command ]] || { usage >&2; exit 2; }
  shift
  find_programs
  case $command in
    start) if supervised; then sv start "${GROUPS_ARGS[@]}"; else local_start; fi ;;
    stop) if supervised; then sv stop "${GROUPS_ARGS[@]}"; else local_stop; fi ;;
    restart) if supervised; then sv restart "${GROUPS_ARGS[@]}"; else local_stop && local_start; fi ;;
    status) cmd_status ;;
    list) ictq list "$@" ;;
    logs) cmd_logs "$@" ;;
    test) cmd_test "$@" ;;
    -h | --help | help) usage ;;
    *) echo "queue_manager: unknown command '$command' (see --help)" >&2; exit 2 ;;
  esac
}

main "$@"

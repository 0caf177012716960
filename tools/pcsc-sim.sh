#!/usr/bin/env bash
# A private PC/SC stack for tests and benchmarks: pcscd → vpcd → the simkit card host.
#
#   tools/pcsc-sim.sh run -- COMMAND [ARGS...]   start, run COMMAND, stop (exit status: COMMAND's)
#   eval "$(tools/pcsc-sim.sh start)"            start in the background; prints `export` lines
#   tools/pcsc-sim.sh stop                       stop what `start` started
#
# What it starts:
#   * `pcscd -f` with a private reader configuration holding only the vpcd reader (Debian's
#     vsmartcard-vpcd driver), listening for the virtual card on a free loopback port P (reader
#     "Virtual PCD 00 00"; vpcd also opens "Virtual PCD 00 01" on P+1, left empty).
#     pcscd 1.9 ignores PCSCLITE_CSOCK_NAME (only clients honour it) and always creates
#     /run/pcscd/pcscd.comm, so as root it runs in a private mount namespace (unshare) with a
#     temporary directory bound over /run/pcscd: its socket is $STATE/run/pcscd.comm and a system
#     pcscd, if any, is not disturbed. Without unshare it falls back to the default socket and
#     refuses to start when a pcscd already runs.
#   * the card host jar (SIMKIT_CARD_HOST_JAR, default applets/card-host/target/simkit-card-host.jar)
#     with `--vpcd 127.0.0.1:P`; its card 0 (SIMKIT_PCSC_CARD_SPEC, default: credit module,
#     backup store, EchoApplet, CounterApplet) is the card in the reader. Card 1 is an identical
#     card that only the host's own socket reaches (jcardsim://127.0.0.1:PORT/1), for comparing
#     the two paths: pcscd powers an idle card down, so the card in the reader cannot be shared
#     with socket clients reliably.
#
# It waits (SIMKIT_PCSC_TIMEOUT seconds, default 60) until the reader reports a card, then
# exports for COMMAND:
#   PCSCLITE_CSOCK_NAME   the private pcscd socket (every libpcsclite client honours it)
#   SIMKIT_PCSC_READER    the reader name ("Virtual PCD 00 00"); use --card "pcsc:$SIMKIT_PCSC_READER"
#   SIMKIT_PCSC_SOCKET_CARD  jcardsim://127.0.0.1:PORT/1, an identical card over the card-host socket
# Logs: $STATE/pcscd.log and $STATE/card-host.log, shown when something fails.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE_FILE="${SIMKIT_PCSC_STATE_FILE:-${TMPDIR:-/tmp}/simkit-pcsc-sim.state}"
TIMEOUT="${SIMKIT_PCSC_TIMEOUT:-60}"
READER="Virtual PCD 00 00"
DEFAULT_CARD_SPEC="aid=F053494D4B49540101,class=dev.simkit.credit.CreditModule;aid=F053494D4B49540201,class=dev.simkit.backup.BackupStore;aid=F0534D4B4954E1,class=dev.simkit.cardhost.testapplets.EchoApplet;aid=F0534D4B4954E2,class=dev.simkit.cardhost.testapplets.CounterApplet"
CARD_SPEC="${SIMKIT_PCSC_CARD_SPEC:-$DEFAULT_CARD_SPEC}"
VPCD_DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so

die() { printf 'pcsc-sim: %s\n' "$*" >&2; exit 1; }
say() { printf 'pcsc-sim: %s\n' "$*" >&2; }

usage() {
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

need() {
  command -v pcscd >/dev/null || die "pcscd not found: install the Debian packages pcscd vsmartcard-vpcd pcsc-tools libpcsclite-dev (tools/setup.sh does)"
  [ -f "$VPCD_DRIVER" ] || die "vpcd driver $VPCD_DRIVER not found: install vsmartcard-vpcd (tools/setup.sh does)"
  command -v pcsc_scan >/dev/null || die "pcsc_scan not found: install pcsc-tools (tools/setup.sh does)"
  command -v java >/dev/null || die "java not found"
  JAR="${SIMKIT_CARD_HOST_JAR:-$ROOT/applets/card-host/target/simkit-card-host.jar}"
  [ -f "$JAR" ] || die "card host jar $JAR not found: build it with \`mvn -B -q -f applets/pom.xml package -DskipTests\` or set SIMKIT_CARD_HOST_JAR"
}

# Two free consecutive TCP ports (vpcd listens on P for reader 0 and P+1 for reader 1), below
# Linux's ephemeral range (32768 up), so an outgoing connection cannot take them between this
# check and vpcd's bind.
free_port() {
  local p i
  for i in $(seq 1 50); do
    p=$(( 20000 + RANDOM % 12000 ))
    if [ -z "$(ss -Hltn "( sport = :$p or sport = :$((p + 1)) )" 2>/dev/null)" ]; then
      echo "$p"
      return 0
    fi
  done
  die "no free port pair found for vpcd"
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# Stops the processes recorded in $STATE (card host first, then pcscd) and removes $STATE.
stop_state() {
  local state="$1" pid n
  [ -d "$state" ] || return 0
  for f in card-host.pid pcscd.pid; do
    pid=$(cat "$state/$f" 2>/dev/null || true)
    if pid_alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      for n in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.1; done
      pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$state"
}

show_logs() {
  local state="$1"
  for log in pcscd.log card-host.log; do
    if [ -s "$state/$log" ]; then
      printf -- '--- %s (last lines) ---\n' "$log" >&2
      tail -n 20 "$state/$log" >&2
    fi
  done
}

# Starts pcscd and the card host; sets STATE, SOCK, HOST_PORT. Children run in the background of
# this shell (so `run` can wait for and kill them).
start_stack() {
  need
  STATE=$(mktemp -d "${TMPDIR:-/tmp}/simkit-pcsc.XXXXXX")
  mkdir -p "$STATE/conf" "$STATE/run"
  local port
  port=$(free_port)
  cat > "$STATE/conf/vpcd" <<EOF
FRIENDLYNAME "Virtual PCD"
DEVICENAME   /dev/null:$port
LIBPATH      $VPCD_DRIVER
CHANNELID    $port
EOF
  if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null \
      && unshare --mount --propagation private true 2>/dev/null; then
    mkdir -p /run/pcscd
    SOCK="$STATE/run/pcscd.comm"
    # unshare and sh exec, so the recorded pid is pcscd's own.
    unshare --mount --propagation private \
      sh -c 'mount --bind "$1" /run/pcscd && exec pcscd -f -c "$2"' sh "$STATE/run" "$STATE/conf" \
      >"$STATE/pcscd.log" 2>&1 &
  else
    if [ -S /run/pcscd/pcscd.comm ] && pgrep -x pcscd >/dev/null; then
      die "a pcscd is already running on /run/pcscd/pcscd.comm and this pcscd cannot be given a private socket (needs root and unshare); stop it first (e.g. systemctl stop pcscd.socket pcscd)"
    fi
    SOCK=/run/pcscd/pcscd.comm
    pcscd -f -c "$STATE/conf" >"$STATE/pcscd.log" 2>&1 &
  fi
  echo $! > "$STATE/pcscd.pid"
  java -jar "$JAR" --quiet --port 0 --port-file "$STATE/card-host.port" \
    --vpcd "127.0.0.1:$port" --card "$CARD_SPEC" --cards 2 >"$STATE/card-host.log" 2>&1 &
  echo $! > "$STATE/card-host.pid"

  local deadline=$(( SECONDS + TIMEOUT ))
  while :; do
    pid_alive "$(cat "$STATE/pcscd.pid")" || { show_logs "$STATE"; stop_state "$STATE"; die "pcscd exited during startup"; }
    pid_alive "$(cat "$STATE/card-host.pid")" || { show_logs "$STATE"; stop_state "$STATE"; die "the card host exited during startup"; }
    if [ -S "$SOCK" ] && [ -s "$STATE/card-host.port" ] \
        && PCSCLITE_CSOCK_NAME="$SOCK" timeout 5 pcsc_scan -c -n 2>/dev/null \
           | grep -A2 -F "Reader 0: $READER" | grep -q 'Card inserted'; then
      break
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      show_logs "$STATE"
      stop_state "$STATE"
      die "reader \"$READER\" reported no card within ${TIMEOUT}s (SIMKIT_PCSC_TIMEOUT)"
    fi
    sleep 0.2
  done
  HOST_PORT=$(tr -d '[:space:]' < "$STATE/card-host.port")
  say "reader \"$READER\" has the simulated card (pcscd socket $SOCK, card host port $HOST_PORT)"
}

exports() {
  printf 'export PCSCLITE_CSOCK_NAME=%q\n' "$SOCK"
  printf 'export SIMKIT_PCSC_READER=%q\n' "$READER"
  printf 'export SIMKIT_PCSC_SOCKET_CARD=%q\n' "jcardsim://127.0.0.1:$HOST_PORT/1"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  run)
    [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || usage
    STATE=""
    trap 'stop_state "$STATE"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    start_stack
    eval "$(exports)"
    set +e
    "$@"
    status=$?
    set -e
    exit "$status"
    ;;
  start)
    if [ -f "$STATE_FILE" ] && [ -d "$(cat "$STATE_FILE")" ]; then
      die "already started (state in $(cat "$STATE_FILE")); run \`$0 stop\` first"
    fi
    start_stack
    # The background children must outlive this shell: detach them from its job table.
    disown -a
    echo "$STATE" > "$STATE_FILE"
    exports | tee "$STATE/env"
    ;;
  stop)
    [ -f "$STATE_FILE" ] || die "not started (no $STATE_FILE)"
    stop_state "$(cat "$STATE_FILE")"
    rm -f "$STATE_FILE"
    say "stopped"
    ;;
  *) usage ;;
esac

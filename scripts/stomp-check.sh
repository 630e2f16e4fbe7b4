#!/usr/bin/env bash
# STOMP against real implementations, end to end (not part of `cargo test`):
#  1. starts RabbitMQ with its rabbitmq_web_stomp plugin (STOMP over WebSocket at
#     ws://127.0.0.1:$BROKER_PORT/ws) as a background process whose state, logs and
#     config live in the work dir;
#  2. a real client, @stomp/stompjs on `ws` (scripts/node/stomp-client.mjs), offers the
#     v1x.stomp subprotocols, subscribes to a queue, sends JSON orders with receipts and
#     prints a transcript of what came back; run straight at the broker, then through
#     `wsreplay record`: both transcripts must be equal;
#  3. `wsreplay show` must read the recording as `stomp` naming every command, and
#     `wsreplay snapshot` must name the JSON body's key paths;
#  4. `wsreplay check` of the recording against the live broker: without a credential
#     for the redacted passcode it fails naming `--credential passcode`; with it,
#     $CHECKS times, no difference allowed, and the live passcode in no capture;
#  5. stops the broker and serves the recording with `wsreplay mock --once`: the same
#     client against the mock must print the same transcript, and the mock must exit 0.
#
#   scripts/stomp-check.sh [--install]   (--install: apt-get install -y rabbitmq-server when missing)
#
# Skips (exit 0, saying why) when RabbitMQ or node is missing. Installs the client's npm
# packages with scripts/setup-node.sh when they are missing.
# Env: BROKER_PORT (15674) PROXY_PORT (15680) MOCK_PORT (15681) AMQP_PORT (25672)
#      DIST_PORT (25673) CHECKS (5), CARGO_TARGET_DIR (where wsreplay is built),
#      WSREPLAY (a wsreplay binary to use instead of building one), RABBITMQ_BIN (the
#      folder of rabbitmq-server and rabbitmqctl; Debian's /usr/lib/rabbitmq/bin).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
skip() { echo "SKIPPED scripts/stomp-check.sh: $*"; exit 0; }
fail() { echo "FAIL: $*"; exit 1; }
RABBIT="${RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}"
if [ ! -x "$RABBIT/rabbitmq-server" ]; then
  [ "${1:-}" = "--install" ] || skip "RabbitMQ is not installed (Debian: apt-get install -y rabbitmq-server, or run scripts/stomp-check.sh --install)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y rabbitmq-server >/dev/null
fi
command -v node >/dev/null || skip "node is not installed (Node.js 18+ runs @stomp/stompjs)"
NODE_DIR="$ROOT/scripts/node"
[ -d "$NODE_DIR/node_modules/@stomp/stompjs" ] && [ -d "$NODE_DIR/node_modules/ws" ] || bash "$ROOT/scripts/setup-node.sh"

BROKER_PORT="${BROKER_PORT:-15674}" PROXY_PORT="${PROXY_PORT:-15680}" MOCK_PORT="${MOCK_PORT:-15681}"
AMQP_PORT="${AMQP_PORT:-25672}" DIST_PORT="${DIST_PORT:-25673}" CHECKS="${CHECKS:-5}"
for p in "$BROKER_PORT" "$PROXY_PORT" "$MOCK_PORT" "$AMQP_PORT" "$DIST_PORT"; do
  if (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "FAIL: port $p is in use; stop what listens there or set BROKER_PORT, PROXY_PORT, MOCK_PORT, AMQP_PORT, DIST_PORT"
    exit 2
  fi
done

WORK="$(mktemp -d)"
if [ -z "${WSREPLAY:-}" ]; then
  cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
  WSREPLAY="${CARGO_TARGET_DIR:-$ROOT/target}/release/wsreplay"
fi
WSREPLAY="$(realpath "$WSREPLAY")"
QUEUE=/queue/wsreplay-orders
client() { node "$NODE_DIR/stomp-client.mjs" "$1" "$QUEUE" 3; }
wait_port() { for _ in $(seq 300); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; fail "nothing listens on port $1 after 30 s"; }

# The broker: its own node name, ports, cookie (HOME), database and logs under $WORK.
mkdir -p "$WORK/rabbitmq/home"
cat >"$WORK/rabbitmq/rabbitmq.conf" <<EOF
listeners.tcp.default = $AMQP_PORT
stomp.listeners.tcp = none
web_stomp.tcp.port = $BROKER_PORT
web_stomp.tcp.ip = 127.0.0.1
EOF
echo '[rabbitmq_web_stomp].' >"$WORK/rabbitmq/enabled_plugins"
rabbit() { # command [args]: runs a RabbitMQ tool against this script's broker
  HOME="$WORK/rabbitmq/home" RABBITMQ_NODENAME="wsreplay-stomp@localhost" \
    RABBITMQ_MNESIA_BASE="$WORK/rabbitmq/mnesia" RABBITMQ_LOG_BASE="$WORK/rabbitmq/log" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$WORK/rabbitmq/enabled_plugins" \
    RABBITMQ_CONFIG_FILE="$WORK/rabbitmq/rabbitmq.conf" RABBITMQ_DIST_PORT="$DIST_PORT" \
    RABBITMQ_PID_FILE="$WORK/rabbitmq/pid" "$RABBIT/$@"
}
epmd_before="$(pgrep -x epmd || true)" # the Erlang port mapper, if one runs already
broker="" recorder="" mock=""
stop_broker() {
  [ -n "$broker" ] || return 0
  rabbit rabbitmqctl shutdown >/dev/null 2>&1 || kill -TERM "$broker" 2>/dev/null || true
  wait "$broker" 2>/dev/null || true
  broker=""
  # The Erlang port mapper the broker started (not one that ran before), once the node
  # has left it; it takes a moment to go after `epmd -kill`.
  local epmd
  epmd="$(pgrep -x epmd || true)"
  [ -z "$epmd" ] || [ "$epmd" = "$epmd_before" ] && return 0
  for _ in $(seq 50); do
    epmd -kill >/dev/null 2>&1 || true
    kill -0 "$epmd" 2>/dev/null || return 0
    sleep 0.1
  done
}
cleanup() {
  for p in $recorder $mock; do kill -TERM "$p" 2>/dev/null || true; done
  stop_broker
}
trap cleanup EXIT
rabbit rabbitmq-server >"$WORK/rabbitmq/server.out" 2>&1 &
broker=$!
wait_port "$BROKER_PORT"
echo "ok: RabbitMQ $(rabbit rabbitmqctl version 2>/dev/null || echo '?') serves STOMP over WebSocket at ws://127.0.0.1:$BROKER_PORT/ws"

# 2. The client straight at the broker, then through the recording proxy.
client "ws://127.0.0.1:$BROKER_PORT/ws" >"$WORK/direct.txt" 2>"$WORK/direct.err" \
  || { cat "$WORK/direct.err"; fail "the client failed against the broker"; }
REC="$WORK/project/recordings/stomp.jsonl"
mkdir -p "$WORK/project/recordings"
"$WSREPLAY" record --out "$REC" --route "stomp=127.0.0.1:$PROXY_PORT=ws://127.0.0.1:$BROKER_PORT" \
  >"$WORK/record.out" 2>&1 &
recorder=$!
wait_port "$PROXY_PORT"
client "ws://127.0.0.1:$PROXY_PORT/ws" >"$WORK/broker.txt" 2>"$WORK/broker.err" \
  || { cat "$WORK/broker.err"; fail "the client failed through the recording proxy"; }
kill -TERM "$recorder"; wait "$recorder"; recorder=""
diff "$WORK/direct.txt" "$WORK/broker.txt" >"$WORK/direct.diff" \
  || { cat "$WORK/direct.diff"; fail "the client printed something else through the proxy"; }
echo "ok: the client's transcript ($(wc -l <"$WORK/broker.txt") lines) is the same straight and through wsreplay record"

# 3. show and snapshot.
"$WSREPLAY" show "$REC" >"$WORK/show.out"
grep -q 'read as stomp' "$WORK/show.out" || { cat "$WORK/show.out"; fail "show does not read the recording as stomp"; }
for cmd in CONNECT CONNECTED SUBSCRIBE SEND MESSAGE RECEIPT DISCONNECT; do
  grep -Eq "(: |, |\+ )$cmd ×" "$WORK/show.out" || { cat "$WORK/show.out"; fail "show does not name $cmd"; }
done
grep -q 'heart-beat' "$WORK/show.out" && { cat "$WORK/show.out"; fail "show counts heart-beats the broker never sent"; }
echo "ok: show reads the recording as stomp: $(grep -E '^ +(c2s|s2c) ' "$WORK/show.out" | sed -E 's/^ +//' | paste -sd ';' | sed 's/;/; /')"
cd "$WORK/project"
"$WSREPLAY" snapshot recordings/ >/dev/null
SNAP=snapshots/stomp.snap
for path in body.order.id body.order.item body.order.quantity body.order.express destination receipt-id subscription; do
  grep -Eq "^$path " "$SNAP" || { cat "$SNAP"; fail "the snapshot does not name $path"; }
done
echo "ok: the snapshot names the JSON body's key paths ($(grep -Eo '^body[.a-z]*' "$SNAP" | sort -u | paste -sd ' '))"

# 4. check against the live broker, several times. The recording holds a placeholder
# where CONNECT sent `passcode:guest`: without a credential the broker refuses the
# login and the replay says which --credential to pass; with it, no difference.
grep -q 'passcode:guest' "$REC" && fail "the recording holds the STOMP passcode as sent"
set +e
"$WSREPLAY" check recordings/ --check --target "stomp=ws://127.0.0.1:$BROKER_PORT" >"$WORK/check-0.out" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] && grep -q 'pass --credential passcode=env:VAR' "$WORK/check-0.out" \
  || { cat "$WORK/check-0.out"; fail "a replay without the passcode credential was not reported as such (exit $rc)"; }
echo "ok: without --credential passcode the check fails naming it"
export STOMP_PASSCODE=guest
for i in $(seq "$CHECKS"); do
  "$WSREPLAY" check recordings/ --check --target "stomp=ws://127.0.0.1:$BROKER_PORT" \
    --credential passcode=env:STOMP_PASSCODE >"$WORK/check-$i.out" 2>&1 \
    || { cat "$WORK/check-$i.out"; fail "check run $i against the live broker found a difference"; }
done
grep -rq 'passcode:guest' runs/ && fail "a replay's capture holds the live passcode"
echo "ok: $CHECKS checks of the recording against the live broker (--credential passcode), 0 differences, the live passcode in no capture"

# 5. The broker stops; a mock of its recording answers the same client.
stop_broker
"$WSREPLAY" mock "$REC" --route "stomp=127.0.0.1:$MOCK_PORT" --once -v >"$WORK/mock.out" 2>&1 &
mock=$!
wait_port "$MOCK_PORT"
client "ws://127.0.0.1:$MOCK_PORT/ws" >"$WORK/mock.txt" 2>"$WORK/mock.err" \
  || { cat "$WORK/mock.err"; fail "the client failed against the mock"; }
set +e
wait "$mock"
rc=$?
set -e
mock=""
[ "$rc" = 0 ] || { cat "$WORK/mock.out"; fail "the mock exited $rc"; }
diff "$WORK/broker.txt" "$WORK/mock.txt" >"$WORK/mock.diff" \
  || { cat "$WORK/mock.diff"; fail "the client printed something else against the mock"; }
echo "ok: against the mock (broker stopped) the client prints the same transcript; the mock exits 0"
# What the mock's capture shows about timing: a MESSAGE belongs to its SUBSCRIBE, so it
# may go out before the SEND that caused it reached the mock.
early=$(node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  const sent = new Set();
  let early = 0;
  for (const r of lines.filter((r) => r.kind === "message")) {
    const order = /"order":\{"id":(\d+)/.exec(r.text)?.[1];
    if (r.dir === "c2s" && r.text.startsWith("SEND")) sent.add(order);
    if (r.dir === "s2c" && r.text.startsWith("MESSAGE") && !sent.has(order)) early++;
  }
  console.log(early);' "$WORK/project/runs/stomp-mock.jsonl")
echo "note: the mock sent $early of 3 MESSAGE(s) before the SEND that caused them reached it (it times a MESSAGE from the SUBSCRIBE of its subscription)"
echo "PASS: recording, show, snapshot, checks and mock in $WORK"

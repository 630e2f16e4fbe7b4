#!/usr/bin/env bash
# Optional check against the independent Python system in ../shared/sut (not part of
# `cargo test`): records the frontend hop and all three agent hops through
# `wsreplay record`, with 1 client and then 10 clients in parallel, and checks that the
# recording holds exactly what the clients and agents saw.
#
#   scripts/sut-check.sh [SUT_DIR]      (default ../shared/sut; needs python3 + pip)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SUT="$(cd "${1:-$ROOT/../shared/sut}" && pwd)"
WORK="$(mktemp -d)"
export SUT_VENV="${SUT_VENV:-$WORK/venv}" SUT_RUN_DIR="$WORK/run"
export NLP_AGENT_URL=ws://127.0.0.1:18101 DATA_AGENT_URL=ws://127.0.0.1:18102 VIZ_AGENT_URL=ws://127.0.0.1:18103
PY="$SUT_VENV/bin/python"
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
WSREPLAY="$ROOT/target/release/wsreplay"
bash "$SUT/setup.sh" >/dev/null
bash "$SUT/run_sut.sh" start >/dev/null
recorder=""
cleanup() {
  [ -n "$recorder" ] && kill "$recorder" 2>/dev/null || true
  bash "$SUT/run_sut.sh" stop >/dev/null || true
}
trap cleanup EXIT

check() { # name clients
  local name="$1" clients="$2" rec="$WORK/$1.jsonl"
  "$WSREPLAY" record --out "$rec" \
    --route frontend=127.0.0.1:18100=ws://127.0.0.1:18000 \
    --route nlp=127.0.0.1:18101=ws://127.0.0.1:18001 \
    --route data=127.0.0.1:18102=ws://127.0.0.1:18002 \
    --route viz=127.0.0.1:18103=ws://127.0.0.1:18003 >"$WORK/$name.out" 2>"$WORK/$name.err" &
  recorder=$!
  for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/18100) 2>/dev/null && break; sleep 0.1; done
  local pids=()
  for i in $(seq "$clients"); do
    "$PY" "$SUT/frontend_client.py" --quiet --url "ws://127.0.0.1:18100/ws?user_id=u$i" \
      --transcript "$WORK/$name-$i.transcript" >"$WORK/$name-$i.client" 2>&1 &
    pids+=($!)
  done
  local failed=0
  for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
  kill -TERM "$recorder"; wait "$recorder"; recorder=""
  [ "$failed" = 0 ] || { echo "FAIL $name: $failed client(s) failed through the proxy"; exit 1; }
  "$PY" - "$rec" "$WORK/$name" "$clients" <<'PY'
import collections, glob, json, sys
rec, prefix, clients = sys.argv[1], sys.argv[2], int(sys.argv[3])
routes, counts = {}, collections.Counter()
for line in list(open(rec))[1:]:
    r = json.loads(line)
    if r["kind"] == "open":
        routes[r["conn"]] = r["route"]
    elif r["kind"] == "message":
        counts[(routes[r["conn"]], r["dir"])] += 1
sent = received = 0
for t in glob.glob(prefix + "-*.transcript"):
    for line in open(t):
        d = json.loads(line)["dir"]
        sent += d == "out"
        received += d == "in"
chats = 3 * clients
want = {("frontend", "c2s"): sent, ("frontend", "s2c"): received}
for agent in ("nlp", "data", "viz"):
    want[(agent, "c2s")] = want[(agent, "s2c")] = chats
bad = {k: (counts[k], v) for k, v in want.items() if counts[k] != v}
if bad:
    sys.exit(f"FAIL: recorded vs seen differ: {bad}")
print(f"ok: {clients} client(s): frontend {sent} c2s + {received} s2c, each agent {chats} requests + {chats} replies")
PY
}

check single 1
check parallel 10
echo "PASS: recordings in $WORK"

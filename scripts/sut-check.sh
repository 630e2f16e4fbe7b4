#!/usr/bin/env bash
# Optional check against the independent Python system in ../shared/sut (not part of
# `cargo test`):
#  1. records the frontend hop and all three agent hops through `wsreplay record`, with
#     1 client and then 10 clients in parallel, and checks that the recording holds
#     exactly what the clients and agents saw;
#  2. stops the agents and replays both recordings against a fresh Python backend
#     (started with --spawn) whose agents are wsreplay's mocks, and checks that the
#     replay has the same messages per type and that every mocked reply's
#     `response_to` is a live `message_id`;
#  3. snapshots both recordings and runs `wsreplay check` against a fresh clean backend
#     20 times in a row (0 differences expected every time), then against a
#     REGRESSION=1 backend (exit 1, naming tool_executing, payload and data);
#  4. the capture-to-CI path: splits the 10-client recording by session (10 files, each
#     replayed on its own against a fresh backend with mocked agents: 0 problems), learns
#     one session's noise with `snapshot --learn 3` and checks it 5 times (0 differences),
#     and the REGRESSION=1 backend still fails that learned snapshot.
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
source "$ROOT/scripts/sut-lib.sh"

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

replay_check() { # name
  local name="$1" run="$WORK/$1-replay.jsonl"
  "$WSREPLAY" replay "$WORK/$name.jsonl" --out "$run" \
    --target frontend=ws://127.0.0.1:18000 \
    --mock nlp=127.0.0.1:28001 --mock data=127.0.0.1:28002 --mock viz=127.0.0.1:28003 \
    --spawn "cd '$SUT' && exec '$PY' backend_server.py --port 18000 --nlp-url ws://127.0.0.1:28001 --data-url ws://127.0.0.1:28002 --viz-url ws://127.0.0.1:28003" \
    >"$WORK/$name-replay.out" 2>&1 || { cat "$WORK/$name-replay.out"; echo "FAIL $name: replay exited non-zero"; exit 1; }
  "$PY" - "$WORK/$name.jsonl" "$run" <<'PY'
import collections, json, sys
def load(path):
    routes, counts, asked, answers = {}, collections.Counter(), set(), []
    for line in list(open(path))[1:]:
        r = json.loads(line)
        if r["kind"] == "open":
            routes[r["conn"]] = r["route"]
        elif r["kind"] == "message":
            try:
                m = json.loads(r.get("text", ""))
            except ValueError:
                m = None
            kind = m.get("type") if isinstance(m, dict) else "(non-JSON)"
            counts[(routes[r["conn"]], r["dir"], kind)] += 1
            if routes[r["conn"]] != "frontend" and isinstance(m, dict):
                (asked.add(m.get("message_id")) if r["dir"] == "c2s" else answers.append(m.get("response_to")))
    return counts, asked, answers
rec, _, _ = load(sys.argv[1])
run, asked, answers = load(sys.argv[2])
if rec != run:
    sys.exit(f"FAIL: messages per type differ: { {k: (rec[k], run[k]) for k in set(rec) | set(run) if rec[k] != run[k]} }")
bad = [a for a in answers if a not in asked]
if bad:
    sys.exit(f"FAIL: {len(bad)} mocked replies answer no live request: {bad[:3]}")
done = run[("frontend", "s2c", "agent_completed")]
print(f"ok: replay has the recording's {sum(run.values())} messages per type, {done} chats completed, {len(answers)} mocked replies re-correlated")
PY
}

check single 1
check parallel 10
bash "$SUT/run_sut.sh" stop >/dev/null
replay_check single
replay_check parallel

mkdir -p "$WORK/project/recordings"
cp "$WORK/single.jsonl" "$WORK/parallel.jsonl" "$WORK/project/recordings/"
cd "$WORK/project"
"$WSREPLAY" snapshot recordings/ >/dev/null
BACKEND="cd '$SUT' && exec '$PY' backend_server.py --port {port} --nlp-url \$WSREPLAY_MOCK_NLP --data-url \$WSREPLAY_MOCK_DATA --viz-url \$WSREPLAY_MOCK_VIZ"
gate() {
  "$WSREPLAY" check recordings/ --check -j 2 --target 'frontend=ws://127.0.0.1:{port}' \
    --mock nlp=127.0.0.1:0 --mock data=127.0.0.1:0 --mock viz=127.0.0.1:0 --spawn "$BACKEND" "$@"
}
for i in $(seq 20); do
  gate >"$WORK/check-$i.out" 2>&1 || { cat "$WORK/check-$i.out"; echo "FAIL: clean check run $i found a difference"; exit 1; }
done
echo "ok: 20 checks of 2 recordings against the clean backend, 0 differences"
set +e
REGRESSION=1 gate --junit "$WORK/junit.xml" >"$WORK/regression.out" 2>&1
rc=$?
set -e
grep -q 'tool_executing (server→client): `payload` object missing; new `data` object' "$WORK/regression.out" && [ "$rc" = 1 ] \
  || { cat "$WORK/regression.out"; echo "FAIL: REGRESSION=1 not reported as expected (exit $rc)"; exit 1; }
echo "ok: REGRESSION=1 exits 1: $(grep -m1 'tool_executing (server' "$WORK/regression.out" | sed 's/^ *- //')"

"$WSREPLAY" split "$WORK/parallel.jsonl" --by session --out-dir "$WORK/project/sessions" >"$WORK/split.out"
sessions=("$WORK"/project/sessions/*.jsonl)
[ "${#sessions[@]}" = 10 ] || { cat "$WORK/split.out"; echo "FAIL: split --by session gave ${#sessions[@]} files, not 10"; exit 1; }
for f in "${sessions[@]}"; do
  "$WSREPLAY" replay "$f" --out "$WORK/session-run.jsonl" --target frontend=ws://127.0.0.1:18000 \
    --mock nlp=127.0.0.1:28001 --mock data=127.0.0.1:28002 --mock viz=127.0.0.1:28003 \
    --spawn "cd '$SUT' && exec '$PY' backend_server.py --port 18000 --nlp-url ws://127.0.0.1:28001 --data-url ws://127.0.0.1:28002 --viz-url ws://127.0.0.1:28003" \
    >"$WORK/session-replay.out" 2>&1 || { cat "$WORK/session-replay.out"; echo "FAIL: $(basename "$f") does not replay on its own"; exit 1; }
done
echo "ok: split --by session: 10 recordings, each replayed on its own with 0 problems"
mkdir -p "$WORK/learned/recordings"
cp "${sessions[0]}" "$WORK/learned/recordings/"
cd "$WORK/learned"
learn_gate() {
  "$WSREPLAY" "$@" recordings/ --target 'frontend=ws://127.0.0.1:{port}' \
    --mock nlp=127.0.0.1:0 --mock data=127.0.0.1:0 --mock viz=127.0.0.1:0 --spawn "$BACKEND"
}
learn_gate snapshot --learn 3 >"$WORK/learn.out" 2>&1 || { cat "$WORK/learn.out"; echo "FAIL: snapshot --learn 3"; exit 1; }
for i in $(seq 5); do
  learn_gate check --check >"$WORK/learned-check-$i.out" 2>&1 || { cat "$WORK/learned-check-$i.out"; echo "FAIL: learned check run $i found a difference"; exit 1; }
done
set +e
REGRESSION=1 learn_gate check --check >"$WORK/learned-regression.out" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] && grep -q 'tool_executing' "$WORK/learned-regression.out" \
  || { cat "$WORK/learned-regression.out"; echo "FAIL: REGRESSION=1 passed the learned snapshot (exit $rc)"; exit 1; }
echo "ok: snapshot --learn 3 of one session ($(grep -c '(learned' snapshots/*.snap) learned line(s)), 5 clean checks, REGRESSION=1 still exits 1"
echo "PASS: recordings, replays and checks in $WORK"

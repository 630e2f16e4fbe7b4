#!/usr/bin/env bash
# Optional check of the review and resilience tooling against the independent Python
# system in ../shared/sut (not part of `cargo test`):
#  1. records one frontend session on all four hops and snapshots it;
#  2. `check --html` against a REGRESSION=1 backend: exit 1, the HTML report names the
#     failing recording, holds the diff and the diagram; headless Chromium screenshots
#     it (when /usr/bin/chromium exists) to $WORK/regression.png;
#  3. `check --fault 'data:drop:sql_query_response'` against a clean backend with the
#     data agent mocked: the backend's agent timeout turns into error envelopes, and the
#     check reports exactly that (exit 1);
#  4. `show --mermaid` of the recording.
#
#   scripts/sut-review.sh [SUT_DIR]     (default ../shared/sut; needs python3 + pip)
# Ports: SUT_BASE_PORT (default 19400) for the system, +100 for the recorder.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SUT="$(cd "${1:-$ROOT/../shared/sut}" && pwd)"
WORK="$(mktemp -d)"
BASE="${SUT_BASE_PORT:-19400}"
export SUT_VENV="${SUT_VENV:-$WORK/venv}" SUT_RUN_DIR="$WORK/run"
export BACKEND_PORT=$BASE NLP_PORT=$((BASE + 1)) DATA_PORT=$((BASE + 2)) VIZ_PORT=$((BASE + 3))
P=$((BASE + 100))
export NLP_AGENT_URL=ws://127.0.0.1:$((P + 1)) DATA_AGENT_URL=ws://127.0.0.1:$((P + 2)) VIZ_AGENT_URL=ws://127.0.0.1:$((P + 3))
PY="$SUT_VENV/bin/python"
if [ -z "${WSREPLAY:-}" ]; then   # or set WSREPLAY to a wsreplay binary to use
  cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
  WSREPLAY="$ROOT/target/release/wsreplay"
fi
[ -x "$PY" ] || bash "$SUT/setup.sh" >/dev/null
mkdir -p "$SUT_RUN_DIR" "$WORK/project/recordings"
source "$ROOT/scripts/sut-lib.sh"

cd "$WORK/project"
"$WSREPLAY" record --out recordings/session.jsonl \
  --route frontend=127.0.0.1:$P=ws://127.0.0.1:$BASE \
  --route nlp=127.0.0.1:$((P + 1))=ws://127.0.0.1:$((BASE + 1)) \
  --route data=127.0.0.1:$((P + 2))=ws://127.0.0.1:$((BASE + 2)) \
  --route viz=127.0.0.1:$((P + 3))=ws://127.0.0.1:$((BASE + 3)) >"$WORK/record.out" 2>&1 &
recorder=$!
for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/$P) 2>/dev/null && break; sleep 0.1; done
"$PY" "$SUT/frontend_client.py" --quiet --url "ws://127.0.0.1:$P/ws?user_id=alice" >"$WORK/client.out" 2>&1
kill -TERM "$recorder"; wait "$recorder"; recorder=""
bash "$SUT/run_sut.sh" stop >/dev/null
"$WSREPLAY" snapshot recordings/ >/dev/null
echo "ok: recorded and snapshotted recordings/session.jsonl"

BACKEND="cd '$SUT' && exec '$PY' backend_server.py --port {port} --nlp-url \$WSREPLAY_MOCK_NLP --data-url \$WSREPLAY_MOCK_DATA --viz-url \$WSREPLAY_MOCK_VIZ"
gate() {
  "$WSREPLAY" check recordings/ --check --target 'frontend=ws://127.0.0.1:{port}' \
    --mock nlp=127.0.0.1:0 --mock data=127.0.0.1:0 --mock viz=127.0.0.1:0 --spawn "$BACKEND" "$@"
}

set +e
REGRESSION=1 gate --html "$WORK/regression.html" >"$WORK/regression.out" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] && grep -q 'STRUCTURE DIFFERS' "$WORK/regression.html" && grep -q '<svg' "$WORK/regression.html" \
  && grep -q '<mark>payload</mark>' "$WORK/regression.html" \
  || { cat "$WORK/regression.out"; echo "FAIL: REGRESSION=1 report (exit $rc)"; exit 1; }
echo "ok: REGRESSION=1 exits 1 and $WORK/regression.html has the diff and the diagram"
if [ -x /usr/bin/chromium ]; then
  /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$WORK/chromium" --window-size=1400,2200 \
    --screenshot="$WORK/regression.png" "file://$WORK/regression.html" >/dev/null 2>&1
  echo "ok: screenshot $WORK/regression.png"
else
  echo "skipped: screenshot (no /usr/bin/chromium)"
fi

set +e
AGENT_TIMEOUT_S=1 gate --fault 'data:drop:sql_query_response' --step-timeout 3 --html "$WORK/fault.html" >"$WORK/fault.out" 2>&1
rc=$?
set -e
cat "$WORK/fault.out"
[ "$rc" = 1 ] && grep -q 'injected by --fault data:drop:sql_query_response' "$WORK/fault.out" \
  && grep -q 'error (server→client)' "$WORK/fault.out" \
  && grep -q 'data agent timed out' runs/session.jsonl \
  || { echo "FAIL: the dropped data reply was not reported as expected (exit $rc)"; exit 1; }
echo "ok: --fault data:drop:sql_query_response → the backend's agent timeout → error envelopes, reported"
"$WSREPLAY" show --mermaid recordings/session.jsonl >"$WORK/session.mmd"
echo "ok: $WORK/session.mmd ($(wc -l <"$WORK/session.mmd") lines)"
echo "PASS: files in $WORK"

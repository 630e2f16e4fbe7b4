#!/usr/bin/env bash
# A browser capture, end to end (not part of `cargo test`):
#  1. starts the system in ../shared/sut (backend + nlp/data/viz agents);
#  2. real headless Chromium, driven by playwright-core's recordHar (content: 'attach'),
#     loads a small page that opens one WebSocket per user to the backend, sends a
#     heartbeat, chats (waiting for each agent_completed) and a non-JSON probe;
#  3. `wsreplay import har` turns the HAR into a recording; `wsreplay show` must list,
#     per connection, exactly the messages the page counted (per direction and type);
#  4. `wsreplay snapshot`, then `wsreplay check` replays the recording against the clean
#     backend: no difference allowed;
#  5. `wsreplay schema` infers the contract from the capture and `wsreplay validate`
#     checks the replayed run against it;
#  6. restarts the backend with REGRESSION=1: `check` and `validate` must both fail on
#     tool_executing.
#
#   scripts/har-capture.sh [--save DIR]    (--save: keep the HAR and its side files in DIR)
#
# Skips (exit 0, saying why) when node, Chromium or the system under test is missing.
# Env: SUT_DIR (default ../shared/sut), SUT_VENV (made by the SUT's setup.sh when unset),
#      BACKEND_PORT (18000) NLP_PORT (18001) DATA_PORT (18002) VIZ_PORT (18003),
#      CHROMIUM (default: chromium on PATH), USERS (alice,bob), CHATS (2).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SAVE=""
[ "${1:-}" = "--save" ] && SAVE="${2:?--save needs a directory}"
skip() { echo "SKIP scripts/har-capture.sh: $*"; exit 0; }
command -v node >/dev/null || skip "node is not installed (Node.js 18+ drives Chromium through playwright-core)"
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
[ -n "$CHROMIUM" ] && [ -x "$CHROMIUM" ] || skip "Chromium is not installed (Debian: apt-get install -y chromium)"
SUT="${SUT_DIR:-$ROOT/../shared/sut}"
[ -f "$SUT/run_sut.sh" ] || skip "no system under test at $SUT (set SUT_DIR)"
[ -d "$ROOT/scripts/node/node_modules/playwright-core" ] || bash "$ROOT/scripts/setup-node.sh"

export BACKEND_PORT="${BACKEND_PORT:-18000}" NLP_PORT="${NLP_PORT:-18001}"
export DATA_PORT="${DATA_PORT:-18002}" VIZ_PORT="${VIZ_PORT:-18003}"
for p in "$BACKEND_PORT" "$NLP_PORT" "$DATA_PORT" "$VIZ_PORT"; do
  if (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "FAIL: port $p is in use; stop what listens there or set BACKEND_PORT, NLP_PORT, DATA_PORT, VIZ_PORT"
    exit 2
  fi
done
WORK="$(mktemp -d)"
export SUT_RUN_DIR="$WORK/run"
cleanup() {
  bash "$SUT/run_sut.sh" stop >/dev/null || true
  cd "$ROOT" && rm -rf "$WORK"
}
trap cleanup EXIT
unset NLP_AGENT_URL DATA_AGENT_URL VIZ_AGENT_URL REGRESSION
if [ -z "${SUT_VENV:-}" ]; then
  export SUT_VENV="$WORK/venv"
  bash "$SUT/setup.sh" >/dev/null
fi
cargo build --quiet --manifest-path "$ROOT/Cargo.toml"
WSREPLAY="$ROOT/target/debug/wsreplay"
bash "$SUT/run_sut.sh" start >/dev/null
BACKEND="ws://127.0.0.1:$BACKEND_PORT"

echo "== capture: Chromium ($("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")) → $BACKEND"
node "$ROOT/scripts/node/har-capture.mjs" --backend "$BACKEND" --out "$WORK/har/capture.har" \
  --chromium "$CHROMIUM" --users "${USERS:-alice,bob}" --chats "${CHATS:-2}" >"$WORK/page.json"
ls "$WORK/har"

echo "== import"
"$WSREPLAY" import har "$WORK/har/capture.har" --out "$WORK/recordings/browser.jsonl" --route frontend

echo "== show"
"$WSREPLAY" show "$WORK/recordings/browser.jsonl" | tee "$WORK/show.txt"
# Every connection must show what the page sent and received, per direction and type.
node - "$WORK/page.json" "$WORK/show.txt" <<'JS'
const fs = require('node:fs');
const page = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const conns = fs.readFileSync(process.argv[3], 'utf8').split(/\n(?=  conn )/).slice(1);
const fail = (m) => { console.error(`FAIL show: ${m}`); process.exit(1); };
if (conns.length !== page.sessions.length) fail(`${conns.length} connection(s) shown, the page opened ${page.sessions.length}`);
page.sessions.forEach((s, i) => {
  const block = conns[i];
  const line = (dir) => (block.match(new RegExp(`^    ${dir} +(\\d+) message\\(s\\)(.*)$`, 'm')) || fail(`conn ${i + 1}: no ${dir} line`));
  const [, c2s] = line('c2s');
  const [, s2c, kinds] = line('s2c');
  if (Number(c2s) !== s.sent) fail(`conn ${i + 1}: c2s ${c2s}, the page sent ${s.sent}`);
  if (Number(s2c) !== s.received) fail(`conn ${i + 1}: s2c ${s2c}, the page received ${s.received}`);
  for (const [type, n] of Object.entries(s.events)) {
    if (!kinds.includes(`${type} ×${n}`)) fail(`conn ${i + 1}: s2c should list ${type} ×${n}: ${kinds}`);
  }
});
console.log(`show: ${page.sessions.length} connection(s), counts per direction and type match what the page saw`);
JS

echo "== snapshot + check against the clean backend"
cd "$WORK"
"$WSREPLAY" snapshot recordings/browser.jsonl
"$WSREPLAY" check recordings/browser.jsonl --target "frontend=$BACKEND" --check

echo "== schema + validate (the replayed run against the contract inferred from the capture)"
"$WSREPLAY" schema recordings/browser.jsonl --format asyncapi --out browser.asyncapi.json
"$WSREPLAY" validate runs/browser.jsonl --schema browser.asyncapi.json

echo "== the same against a REGRESSION=1 backend: check and validate must both fail"
bash "$SUT/run_sut.sh" stop >/dev/null
REGRESSION=1 bash "$SUT/run_sut.sh" start >/dev/null
set +e
"$WSREPLAY" check recordings/browser.jsonl --target "frontend=$BACKEND" --check --runs runs-regression >check-regression.txt
check_code=$?
"$WSREPLAY" validate runs-regression/browser.jsonl --schema browser.asyncapi.json >validate-regression.txt
validate_code=$?
set -e
tail -3 check-regression.txt
grep -m2 -A2 "tool_executing" validate-regression.txt || true
tail -1 validate-regression.txt
if [ "$check_code" != 1 ] || [ "$validate_code" != 1 ] || ! grep -q '"payload" is a required property' validate-regression.txt; then
  echo "FAIL: the regression was not caught (check exit $check_code, validate exit $validate_code)"
  exit 1
fi

if [ -n "$SAVE" ]; then
  mkdir -p "$SAVE"
  cp "$WORK"/har/* "$SAVE"/
  echo "saved the HAR and its side files in $SAVE"
fi
echo "PASS: a real Chromium capture imports, shows the page's counts, replays against the clean backend with no difference, and catches the REGRESSION=1 backend"

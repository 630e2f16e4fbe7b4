#!/usr/bin/env bash
# The long-recording soak (issue 19, acceptance 3; not part of `cargo test`, which runs a
# 20-second version): a recorder with `--rotate 1MB --compress` under 100 connections
# sending the example system's traffic for 10 minutes must leave files that
#  1. each read on their own (`wsreplay soak` reads every file back alone, and this
#     script runs `wsreplay show` on each one),
#  2. hold exactly the messages the clients sent and received (counts and checksums
#     per direction, checked by `wsreplay soak`), and
#  3. take at least 5× less disk than the JSON Lines they hold (`--min-ratio 5`).
#
#   scripts/soak-check.sh                 (builds the release binary when missing)
#   SOAK_DURATION=1m SOAK_RATE=50 scripts/soak-check.sh
#   WSREPLAY=path/to/wsreplay scripts/soak-check.sh
#
# Exits 0 when all three hold, non-zero otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${WSREPLAY:-target/release/wsreplay}
if [[ ! -x $bin ]]; then
    cargo build --release
fi
duration=${SOAK_DURATION:-10m}
rate=${SOAK_RATE:-20}
dir=$(mktemp -d "${TMPDIR:-/tmp}/wsreplay-soak-check.XXXXXX")
trap 'rm -rf "$dir"' EXIT

echo "soak-check: 100 connections × $rate msg/s for $duration through --rotate 1MB --compress"
"$bin" soak --connections 100 --duration "$duration" --rate "$rate" \
    --compress --rotate 1MB --min-ratio 5 --keep "$dir"

files=("$dir"/*.jsonl.zst)
if [[ ! -e ${files[0]} ]]; then
    echo "soak-check: FAIL: no recording files in $dir" >&2
    exit 1
fi
for f in "${files[@]}"; do
    if ! "$bin" show "$f" >/dev/null; then
        echo "soak-check: FAIL: wsreplay show cannot read $(basename "$f") on its own" >&2
        exit 1
    fi
done
echo "soak-check: PASS: ${#files[@]} file(s), each read by wsreplay show on its own"

#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for a set time with cargo-fuzz and prints,
# per target, the executions, the corpus size and whether anything was found.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]    (default 600 s, all targets)
#
# Needs a nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
# Corpora grow in fuzz/corpus/<target> (seeded from fuzz/seeds/<target>); a crash is
# saved in fuzz/artifacts/<target>/ and becomes a regression test in tests/it/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(recording_reader frame_parser handshake normaliser snapshot_reader)
cargo +nightly fuzz build -O >/dev/null
status=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  seeds=()
  [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
  log="fuzz/$t.log"
  if cargo +nightly fuzz run -O "$t" "fuzz/corpus/$t" "${seeds[@]}" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    verdict="no finding"
  else
    verdict="FOUND A CRASH: see $log and fuzz/artifacts/$t/"
    status=1
  fi
  runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' || echo "?")
  corpus=$(ls "fuzz/corpus/$t" | wc -l)
  printf '%-18s %10s executions in %ss, corpus %5s inputs: %s\n' "$t" "$runs" "$secs" "$corpus" "$verdict"
done
exit $status

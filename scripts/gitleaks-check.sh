#!/usr/bin/env bash
# The external check of issue 15: gitleaks' default rules must find nothing in what
# wsreplay writes from a recording full of planted credentials.
#
#   scripts/gitleaks-check.sh
#
# Runs the integration test that plants one fake credential of every format (GitHub,
# GitLab, Slack, Stripe, OpenAI, Google, npm, SendGrid, AWS, JWT, URL and DSN passwords)
# in every place the recorder scans (tests/it/secrets.rs,
# planted_credentials_reach_no_recording_snapshot_schema_or_show), keeping its output
# in a temporary directory. Then gitleaks (`gitleaks dir`, or `gitleaks detect
# --no-git` on older versions) scans, with its default rules:
#   1. the planted values themselves: it must find some (else the check proves nothing);
#   2. the recording, `show` (summary, timeline, Mermaid, --secrets), the snapshot and
#      both schemas: it must find nothing.
# Skips (exit 0) with a message when gitleaks is not on the PATH; `cargo test` never
# needs it. Install: a release binary from the gitleaks project, `brew install
# gitleaks`, or a distribution package where one exists.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v gitleaks >/dev/null 2>&1; then
  echo "gitleaks-check: skipped, gitleaks is not installed (the cargo tests check the same planted credentials without it)"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out="$work/out"
WSREPLAY_PLANTED_OUT="$out" cargo test --quiet --test it \
  secrets::planted_credentials_reach_no_recording_snapshot_schema_or_show >/dev/null

scan() { # DIR REPORT: prints the number of findings
  local dir="$1" report="$2"
  if gitleaks dir --help >/dev/null 2>&1; then
    gitleaks dir "$dir" --no-banner --exit-code 0 --report-format json --report-path "$report" >/dev/null 2>&1
  else
    gitleaks detect --no-git --source "$dir" --no-banner --exit-code 0 \
      --report-format json --report-path "$report" >/dev/null 2>&1
  fi
  python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1])) or []))' "$report"
}

mkdir -p "$work/control"
mv "$out/planted-values.txt" "$work/control/"
planted=$(scan "$work/control" "$work/control.json")
found=$(scan "$out" "$work/found.json")
echo "gitleaks-check: $planted finding(s) in the planted values (control), $found in wsreplay's output ($(find "$out" -type f | wc -l) files)"
if [ "$planted" -eq 0 ]; then
  echo "gitleaks-check: FAILED: gitleaks found none of the planted credentials, so its silence on the output proves nothing" >&2
  exit 1
fi
if [ "$found" -ne 0 ]; then
  python3 -c 'import json,sys
for f in json.load(open(sys.argv[1])): print("  %s  %s:%s" % (f["RuleID"], f["File"], f["StartLine"]))' "$work/found.json" >&2
  echo "gitleaks-check: FAILED: planted credentials survived" >&2
  exit 1
fi
echo "gitleaks-check: ok"

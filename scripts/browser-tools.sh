#!/usr/bin/env bash
# Installs what the optional browser tests need (not part of `cargo test`'s
# requirements: those tests skip, saying why, when something is missing):
#   - the npm `mermaid` package, into target/browser-tools (gitignored), so that
#     tests/it/browser.rs can load mermaid.min.js from a local file;
#   - Debian's chromium, when run as root and it is missing (/usr/bin/chromium).
#
#   scripts/browser-tools.sh           (needs node + npm; chromium via apt-get)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="${WSREPLAY_BROWSER_TOOLS:-$ROOT/target/browser-tools}"
mkdir -p "$TOOLS"
cd "$TOOLS"
[ -f package.json ] || npm init -y >/dev/null
npm install --no-audit --no-fund mermaid@11 >/dev/null
echo "mermaid: $TOOLS/node_modules/mermaid/dist/mermaid.min.js"
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null
  else
    echo "chromium: missing; install it with: sudo apt-get install -y chromium" >&2
    exit 1
  fi
fi
echo "chromium: /usr/bin/chromium"

#!/usr/bin/env bash
# Installs the Node packages of the interop scripts (playwright-core for
# scripts/har-capture.sh, @asyncapi/parser for the AsyncAPI check in `cargo test`) into
# scripts/node/node_modules, which git ignores. Needs node and npm; not part of `cargo test`
# (the tests that use these packages skip, and say so, when they are missing).
set -euo pipefail
DIR="$(cd "$(dirname "$0")/node" && pwd)"
command -v npm >/dev/null || { echo "setup-node: npm is not installed (install Node.js 18+)"; exit 2; }
npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error
echo "setup-node: installed into $DIR/node_modules"

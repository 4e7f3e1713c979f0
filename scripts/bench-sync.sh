#!/usr/bin/env bash
# The sync benchmark (issues 4 and 14), one command. Installs what it needs, builds in release,
# runs every tool on the same trees, prints the table and the ratios.
#   BENCH_SCALE=0.1 scripts/bench-sync.sh     # a tenth of the files, for a quick look
#   (the other switches: the head of examples/bench_sync.rs)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
"$repo/tests/support/requirements-sync.sh" >/dev/null
command -v /usr/bin/time >/dev/null || { apt-get update && apt-get install -y time; }
cd "$repo"
# The real retry waits: the workspace's .cargo/config.toml shrinks them for the test suite.
export DRSCRIPT_RETRY_SCALE=1
exec cargo run --quiet --release --example bench_sync

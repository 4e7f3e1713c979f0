#!/usr/bin/env bash
# What the sync tests and the sync benchmark need. Idempotent.
#   tests/sync_local.rs, tests/sync_files.rs: nothing beyond cargo.
#   tests/sync_azcopy.rs: azcopy (npm @azure-tools/azcopy-linux) in <repo>/.tools/npm.
#   scripts/bench-sync.sh: rsync, rclone (Debian), azcopy, azurite (npm).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
npm_prefix="$repo/.tools/npm"

need_apt=()
command -v node >/dev/null || need_apt+=(nodejs npm)
command -v rsync >/dev/null || need_apt+=(rsync)
[ -x /usr/bin/time ] || need_apt+=(time)  # benchmark only
command -v rclone >/dev/null || need_apt+=(rclone)  # benchmark only
ldconfig -p | grep -q 'libsecret-1\.so\.0' || need_apt+=(libsecret-1-0)  # azcopy links it
if ((${#need_apt[@]})); then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_apt[@]}"
fi

mkdir -p "$npm_prefix"
if [ ! -e "$npm_prefix/node_modules/@azure-tools/azcopy-linux/package.json" ] \
   || [ ! -e "$npm_prefix/node_modules/azurite/package.json" ]; then
  npm install --no-audit --no-fund --prefix "$npm_prefix" @azure-tools/azcopy-linux azurite
fi
azcopy="$(find "$npm_prefix/node_modules/@azure-tools/azcopy-linux" -type f -name 'azcopy*' ! -name '*.js' ! -name '*.ts' ! -name '*.json' | head -n1)"
[ -n "$azcopy" ] || { echo "azcopy binary not found under $npm_prefix" >&2; exit 1; }
chmod +x "$azcopy"
echo "azcopy: $azcopy"

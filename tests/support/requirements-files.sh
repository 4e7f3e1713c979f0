#!/usr/bin/env bash
# What tests/sync_files.rs's cross-checks need: Microsoft's Python SDK for Azure Files
# (azure-storage-file-share) in .tools/venv-files, which signs its own Shared Key and SAS
# requests, so the Files emulator's verification is checked against an implementation that is
# not drscript's; and Microsoft's azure-identity (pinned, with the MSAL it was tested with), which
# gets tokens from the sandbox's Entra ID emulator for tests/emulators/entra.rs. Idempotent:
# installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m venv --help >/dev/null 2>&1 || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q python3-venv
}
venv=.tools/venv-files
if ! "$venv/bin/python" -c "import azure.storage.fileshare" >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q azure-storage-file-share
fi
if ! "$venv/bin/python" -c "import azure.identity, msal, sys; sys.exit(azure.identity.__version__ != '1.27.0')" >/dev/null 2>&1; then
  "$venv/bin/pip" install -q azure-identity==1.27.0 msal==1.39.0
fi
"$venv/bin/python" -c "import azure.storage.fileshare as f; print('azure-storage-file-share', f.__version__ if hasattr(f, '__version__') else '')"

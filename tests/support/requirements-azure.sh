#!/usr/bin/env bash
# What tests/dns_*, tests/azure_* and tests/db_* need: BIND9 (named, dig, nsupdate), PostgreSQL
# server binaries (initdb, postgres), MariaDB (mariadbd, mariadb-install-db, mariadb), and
# Microsoft's Python management SDKs in .tools/venv-azure (the ARM emulator's cross-check).
# Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
need=()
command -v named >/dev/null 2>&1 || [ -x /usr/sbin/named ] || need+=(bind9)
command -v dig >/dev/null 2>&1 && command -v nsupdate >/dev/null 2>&1 || need+=(bind9-dnsutils)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${need[@]}"
fi
venv=.tools/venv-azure
if ! "$venv/bin/python" -c "import azure.mgmt.storage, azure.mgmt.dns" >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q azure-mgmt-storage azure-mgmt-dns
fi

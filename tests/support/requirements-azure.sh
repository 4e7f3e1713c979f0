#!/usr/bin/env bash
# What tests/dns_*, tests/azure_* and tests/db_* need: BIND9 (named, dig, nsupdate), PostgreSQL
# server binaries (initdb, pg_ctl, postgres) and MariaDB (mariadbd, mariadb-install-db).
# Idempotent: installs only what is missing.
set -euo pipefail
need=()
command -v named >/dev/null 2>&1 || [ -x /usr/sbin/named ] || need+=(bind9)
command -v dig >/dev/null 2>&1 && command -v nsupdate >/dev/null 2>&1 || need+=(bind9-dnsutils)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${need[@]}"
fi

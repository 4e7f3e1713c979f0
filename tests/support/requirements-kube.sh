#!/usr/bin/env bash
# What the kube, scheduler and sandbox tests need: kubectl (the independent client that checks the
# Kubernetes API emulation). Idempotent.
set -euo pipefail
if ! command -v kubectl >/dev/null 2>&1; then
    apt-get update
    apt-get install -y kubernetes-client
fi
kubectl version --client >/dev/null
# openssl makes the private CA and certificate of the gateway TLS test.
if ! command -v openssl >/dev/null 2>&1; then
    apt-get update
    apt-get install -y openssl
fi
# The official Python `kubernetes` client in .tools/venv-kube: the second independent client of
# the Kubernetes API emulation (its own request building, paging and error decoding).
cd "$(dirname "$0")/../.."
python3 -m venv --help >/dev/null 2>&1 || { apt-get update -q; apt-get install -y -q python3-venv; }
venv=.tools/venv-kube
if ! "$venv/bin/python" -c "import kubernetes" >/dev/null 2>&1; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q kubernetes
fi

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

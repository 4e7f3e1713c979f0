#!/usr/bin/env bash
# What tests/faults.rs and tests/crash.rs need: nothing beyond the built `drscript` binary (they
# start the sandbox with `drscript sandbox up --faults` and drive every run through the binary;
# the crash test sends SIGKILL through libc). Kept so that CI calls every area the same way.
set -euo pipefail
exit 0

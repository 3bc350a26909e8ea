#!/usr/bin/env bash
# A short coverage-guided fuzz run for CI: afl++ on two pre-authentication targets (the X.224 Connection Request,
# the first bytes any client sends, and the CredSSP TSRequest) for GATEHOUSE_FUZZ_SMOKE_SECONDS each (default 15).
# Fails when afl++ saves a crash or a hang (scripts/fuzz.sh copies it into testdata/fuzz-regressions/ for replay) or
# when the fuzzer cannot be set up. About a minute in all, including the publish and instrumentation.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
seconds=${GATEHOUSE_FUZZ_SMOKE_SECONDS:-15}
status=0
for target in x224-connection-request credssp-tsrequest; do
  scripts/fuzz.sh "$target" --seconds "$seconds" || status=1
done
exit "$status"

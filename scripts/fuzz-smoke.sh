#!/usr/bin/env bash
# A short coverage-guided fuzz run for CI: afl++ on two pre-authentication targets (the X.224 Connection Request,
# the first bytes any client sends, and the CredSSP TSRequest) for GATEHOUSE_FUZZ_SMOKE_SECONDS each (default 15).
# Fails when afl++ saves a crash or a hang (scripts/fuzz.sh copies it into testdata/fuzz-regressions/ for replay) or
# when the fuzzer cannot be set up. About a minute and a half in all, including the publish and instrumentation.
#
# GATEHOUSE_FUZZ_SMOKE_TARGETS replaces the target list; `GATEHOUSE_FUZZ_SMOKE_TARGETS=selftest-crash` fuzzes a
# planted bug and must fail.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
seconds=${GATEHOUSE_FUZZ_SMOKE_SECONDS:-15}
read -r -a targets <<<"${GATEHOUSE_FUZZ_SMOKE_TARGETS:-x224-connection-request credssp-tsrequest}"
status=0
for target in "${targets[@]}"; do
  scripts/fuzz.sh "$target" --seconds "$seconds" || status=1
done
[ "$status" -eq 0 ] || echo "scripts/fuzz-smoke.sh: afl++ found something or could not run (see above)." >&2
exit "$status"

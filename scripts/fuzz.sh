#!/usr/bin/env bash
# Coverage-guided fuzzing of one Gatehouse.Protocol target with afl++ and SharpFuzz.
#
#   scripts/fuzz.sh TARGET [--minutes N | --seconds N] [--timeout MS] [--no-save] [--no-build]
#   scripts/fuzz.sh --list
#
# Installs what is missing (Debian's afl++ when running as root, the pinned SharpFuzz.CommandLine dotnet tool from
# .config/dotnet-tools.json), publishes tests/Gatehouse.AflFuzz, instruments Gatehouse.Protocol.dll in the publish
# folder with `dotnet sharpfuzz`, seeds afl-fuzz with the target's seeds (tests/Gatehouse.Fuzz/Corpus) and its files
# under testdata/fuzz-corpus and testdata/fuzz-regressions, and runs afl-fuzz for the given time (default 5 minutes).
# Every crash and hang afl++ saves is copied to testdata/fuzz-regressions/TARGET/afl-crash-<sha256/16>.bin (or
# afl-hang-...), which the test suite replays (tests/Gatehouse.Protocol.Tests/Fuzzing/FuzzRegressionTests.cs), and is
# replayed once through the oracle to show why it failed.
# The target names are those of tests/Gatehouse.Fuzz (see --list); `selftest-crash` is a target whose oracle fails on
# any input starting with 0xFF, to show that a finding fails the run (its findings are not saved).
# --no-build reuses the instrumented publish folder (for runs side by side, as scripts/fuzz-compare.sh does).
#
# afl-fuzz's output stays in artifacts/fuzz/TARGET/ (queue, crashes, hangs, fuzzer_stats, plot_data).
# Exit status: 0 when afl++ found nothing, 1 when it saved a crash or a hang, 2 on bad usage or a setup failure.
set -Eeuo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
publish="$root/artifacts/aflfuzz"
harness="$publish/Gatehouse.AflFuzz.dll"

die() { echo "scripts/fuzz.sh: $*" >&2; exit 2; }
log() { printf '== %s\n' "$*"; }

target=""
seconds=300
timeout_ms=5000
save=1
build=1
list=0
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) [ $# -ge 2 ] || die "--minutes needs a value"; seconds=$(awk -v m="$2" 'BEGIN { printf "%d", m * 60 }'); shift 2 ;;
    --seconds) [ $# -ge 2 ] || die "--seconds needs a value"; seconds=$2; shift 2 ;;
    --timeout) [ $# -ge 2 ] || die "--timeout needs a value"; timeout_ms=$2; shift 2 ;;
    --no-save) save=0; shift ;;
    --no-build) build=0; shift ;;
    --list) list=1; shift ;;
    -h|--help) sed -n "2,/^set -Eeuo/p" "$0" | sed "\$d" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$target" ] || die "one target per run (got $target and $1)"; target=$1; shift ;;
  esac
done
[ "$list" -eq 1 ] || [ -n "$target" ] || die "name a target (see --list)"
case "$seconds" in ''|*[!0-9]*) die "--seconds/--minutes must be a whole number of seconds" ;; esac
[ "$seconds" -ge 1 ] || die "run for at least one second"
command -v dotnet >/dev/null 2>&1 || die "the .NET SDK (dotnet) is not on PATH"

# --- Install what is missing (idempotent) ----------------------------------------------------------------------
if ! command -v afl-fuzz >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || die "afl-fuzz is missing; install Debian's afl++ (apt-get install afl++) or run as root"
  log "Installing afl++"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++ </dev/null >/dev/null
fi
dotnet tool restore >/dev/null || die "dotnet tool restore failed (SharpFuzz.CommandLine, .config/dotnet-tools.json)"

# --- Build and instrument ---------------------------------------------------------------------------------------
# --no-build reuses the instrumented publish folder (scripts/fuzz-compare.sh runs two engines from it at once).
if [ "$build" -eq 1 ] || [ ! -f "$harness" ]; then
  log "Publishing tests/Gatehouse.AflFuzz"
  dotnet publish "$root/tests/Gatehouse.AflFuzz" -c Release -o "$publish" -p:UseSharedCompilation=true -nologo -v quiet >/dev/null \
    || die "dotnet publish tests/Gatehouse.AflFuzz failed"
  if ! out=$(dotnet sharpfuzz "$publish/Gatehouse.Protocol.dll" 2>&1); then
    # The publish step leaves an already instrumented copy alone when the library did not change.
    grep -q "already instrumented" <<<"$out" || die "dotnet sharpfuzz failed: $out"
  fi
fi

if [ "$list" -eq 1 ]; then
  dotnet "$harness" list
  exit 0
fi

# --- Seed and run -----------------------------------------------------------------------------------------------
work="$root/artifacts/fuzz/$target"
rm -rf "$work"
mkdir -p "$work"
dotnet "$harness" seeds "$target" "$work/in" || die "no seeds for '$target' (see --list)"

log "afl-fuzz $target for $seconds s"
# The dotnet host is not instrumented (the library is), the machine is shared (no CPU pinning, no frequency check),
# and the core pattern is the administrator's: afl-fuzz is told so instead of refusing to start.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_FAST_CAL=1
set +e
afl-fuzz -V "$seconds" -i "$work/in" -o "$work/out" -t "$timeout_ms" -m none -- dotnet "$harness" run "$target" >"$work/afl.log" 2>&1
afl_status=$?
set -e
stats="$work/out/default/fuzzer_stats"
if [ "$afl_status" -ne 0 ] || [ ! -f "$stats" ]; then
  tail -n 30 "$work/afl.log" >&2
  die "afl-fuzz exited with $afl_status (log: $work/afl.log)"
fi
grep -E '^(execs_done|execs_per_sec|corpus_count|edges_found|saved_crashes|saved_hangs) ' "$stats" | sed 's/^/  /'

# --- Findings into the regression corpus --------------------------------------------------------------------------
findings=0
for kind in crash hang; do
  dir="$work/out/default/${kind}es"
  [ "$kind" = hang ] && dir="$work/out/default/hangs"
  [ -d "$dir" ] || continue
  for file in "$dir"/id:*; do
    [ -f "$file" ] || continue
    findings=$((findings + 1))
    name="afl-$kind-$(sha256sum "$file" | cut -c1-16).bin"
    if [ "$save" -eq 1 ] && [ "$target" != selftest-crash ]; then
      mkdir -p "$root/testdata/fuzz-regressions/$target"
      cp "$file" "$root/testdata/fuzz-regressions/$target/$name"
      echo "FINDING ($kind) saved testdata/fuzz-regressions/$target/$name"
    else
      echo "FINDING ($kind) $file"
    fi
    dotnet "$harness" replay "$target" "$file" | sed 's/^/  /' || true
  done
done

if [ "$findings" -gt 0 ]; then
  echo "scripts/fuzz.sh: afl++ saved $findings finding(s) for $target; fix them and commit the regression files." >&2
  exit 1
fi
log "no findings for $target"

#!/usr/bin/env bash
# Edges reached in the same wall time by afl++ and by the in-repo mutation fuzzer, on the same instrumented library.
#
#   scripts/fuzz-compare.sh SECONDS TARGET...
#
# For each target, afl-fuzz (scripts/fuzz.sh) and the in-repo mutation loop (tests/Gatehouse.Fuzz's FuzzEngine, run
# by `Gatehouse.AflFuzz mutate`, which keeps every input that reached a new edge) run side by side for SECONDS, each on
# one of the machine's cores. Both corpora then go through afl-showmap -C with the same harness, and one line per
# target is printed: target, afl++ edges, mutation edges, and both engines' executions. docs/fuzzing.md holds results.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
[ $# -ge 2 ] || { echo "usage: scripts/fuzz-compare.sh SECONDS TARGET..." >&2; exit 2; }
seconds=$1; shift
harness="$root/artifacts/aflfuzz/Gatehouse.AflFuzz.dll"
scripts/fuzz.sh --list >/dev/null   # installs, publishes and instruments once
export AFL_SKIP_BIN_CHECK=1
showmap() {
  afl-showmap -i "$1" -o /dev/null -C -t 5000 -m none -- dotnet "$harness" run "$2" 2>&1 \
    | sed -n 's/.*Captured \([0-9]*\) tuples.*/\1/p' | tail -n 1
}
printf '%-26s %10s %10s %14s %14s\n' target afl_edges mut_edges afl_execs mut_execs
for target in "$@"; do
  work="$root/artifacts/fuzz-compare/$target"
  rm -rf "$work"; mkdir -p "$work"
  dotnet "$harness" mutate "$target" "$seconds" "$work/mutation" >"$work/mutation.log" 2>&1 &
  mutation=$!
  scripts/fuzz.sh "$target" --seconds "$seconds" --no-build >"$work/afl.log" 2>&1 || true
  wait "$mutation" || true
  stats="$root/artifacts/fuzz/$target/out/default/fuzzer_stats"
  afl_execs=$(sed -n 's/^execs_done *: //p' "$stats")
  mut_execs=$(sed -n 's/.* \([0-9]*\) execs in.*/\1/p' "$work/mutation.log")
  afl_edges=$(showmap "$root/artifacts/fuzz/$target/out/default/queue" "$target")
  mut_edges=$(showmap "$work/mutation" "$target")
  printf '%-26s %10s %10s %14s %14s\n' "$target" "$afl_edges" "$mut_edges" "$afl_execs" "$mut_execs"
done

#!/usr/bin/env bash
# Idle CPU of `gatehouse serve`: SQLite, a throwaway data directory, loopback, no client and no session.
# Usage: bench/idle/run.sh BUILD_DIR[:VAR=VALUE] [BUILD_DIR[:VAR=VALUE]...] [--rounds N] [--seconds S] [--settle S]
#   BUILD_DIR:VAR=VALUE runs that build with one more environment variable, e.g.
#   src/Gatehouse/bin/Release/net10.0:DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0
# For each round and each build (interleaved), starts `dotnet BUILD_DIR/gatehouse.dll serve` on free ports, waits
# until it answers /healthz, lets it settle, then reads utime+stime (fields 14 and 15 of /proc/PID/stat, all threads)
# over the window and prints ms of CPU per second, the per-thread-name split and the load average. Stops what it
# started by its pid.
set -euo pipefail
rounds=3 seconds=60 settle=20 builds=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --settle) settle=$2; shift 2 ;;
    *) builds+=("$1"); shift ;;
  esac
done
[ ${#builds[@]} -gt 0 ] || { echo "usage: $0 BUILD_DIR [BUILD_DIR...] [--rounds N] [--seconds S] [--settle S]" >&2; exit 2; }
tck=$(getconf CLK_TCK)
work=$(mktemp -d /tmp/gatehouse-idle.XXXXXX)
pid=
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# per thread: "tid<TAB>name<TAB>ticks" (utime+stime read after the ")" that ends the name, since thread names have
# spaces; a thread that starts in the window counts from 0, one that ends in it is missing from the split, not the total)
thread_ticks() { for t in /proc/"$1"/task/*; do printf '%s\t%s\t%s\n' "${t##*/}" "$(cat "$t/comm" 2>/dev/null)" "$(sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{print $12+$13}')"; done 2>/dev/null; }
# Build directories made absolute, then an empty working directory: serve's content root, which ASP.NET Core watches
# for appsettings*.json (files written there, like the data directory's, would wake its file watcher).
for i in "${!builds[@]}"; do spec=${builds[$i]}; dir=${spec%%:*}; builds[$i]="$(cd "$dir" && pwd)${spec#"$dir"}"; done
mkdir "$work/cwd" && cd "$work/cwd"
echo "CLK_TCK=$tck window=${seconds}s settle=${settle}s rounds=$rounds"
for r in $(seq 1 "$rounds"); do
  for spec in "${builds[@]}"; do
    b=${spec%%:*}; extra=; [ "$spec" = "$b" ] || extra=${spec#*:}
    label="$(basename "$b")${extra:+ $extra}"
    data="$work/data-$r-$(basename "$b")-$RANDOM"
    https_port=$(free_port); rdp_port=$(free_port)
    env ${extra:+"$extra"} dotnet "$b/gatehouse.dll" serve --data "$data" --urls "https://127.0.0.1:$https_port" --rdp-port "$rdp_port" \
      --public-name "login.gatehouse.test:$https_port" >"$work/serve.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 240); do
      curl -ksf -o /dev/null "https://127.0.0.1:$https_port/healthz" && break
      sleep 0.5
    done
    curl -ksf -o /dev/null "https://127.0.0.1:$https_port/healthz" || { echo "not ready: $(tail -20 "$work/serve.log")" >&2; exit 1; }
    sleep "$settle"
    before_threads=$(thread_ticks "$pid"); t0=$(ticks "$pid"); s0=$(date +%s.%N)
    sleep "$seconds"
    t1=$(ticks "$pid"); s1=$(date +%s.%N); after_threads=$(thread_ticks "$pid")
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    ms=$(awk -v a="$t0" -v b="$t1" -v s0="$s0" -v s1="$s1" -v h="$tck" 'BEGIN {printf "%.2f", (b-a)*1000/h/(s1-s0)}')
    split=$(python3 - "$tck" "$seconds" <<PY
import sys, collections
h, s = float(sys.argv[1]), float(sys.argv[2])
def parse(text):
    return {l.split('\t')[0]: (l.split('\t')[1], int(l.split('\t')[2])) for l in text.strip().splitlines() if l.count('\t') == 2}
a, b = parse('''$before_threads'''), parse('''$after_threads''')
per = collections.Counter()
for tid, (name, t) in b.items():
    per[name] += t - a.get(tid, (name, 0))[1]
print('; '.join(f"{n} {v * 1000 / h / s:.2f}" for n, v in per.most_common() if v > 0))
PY
)
    echo "round $r $label: ${ms} ms CPU/s  threads=$(ls /proc/$pid/task | wc -l)  load $load  [$split]"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  done
done

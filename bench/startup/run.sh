#!/bin/bash
# Start-up cost of a published gatehouse: CPU seconds (utime+stime of /proc/PID/stat) and wall time until /healthz
# answers 200, then the CPU of its first four requests (discovery, JWKS, readiness, the sign-in page), RSS at the end.
# Each round starts the program twice on one fresh data directory: "first" (first-run setup: certificate, database,
# administrator) and "restart". Usage (docs/benchmarks.md, "Start-up: ReadyToRun"):
#   dotnet publish src/Gatehouse -c Release -r linux-x64 --self-contained -p:SatelliteResourceLanguages=en -o /tmp/pub-r2r
#   dotnet publish src/Gatehouse -c Release -r linux-x64 --self-contained -p:SatelliteResourceLanguages=en -p:PublishReadyToRun=false -o /tmp/pub-jit
#   bench/startup/run.sh --rounds 3 /tmp/pub-jit /tmp/pub-r2r
set -euo pipefail
rounds=3
if [ "${1:-}" = "--rounds" ]; then rounds=$2; shift 2; fi
[ $# -ge 1 ] || { echo "usage: $0 [--rounds N] <publish dir>..." >&2; exit 2; }

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

one_start() { # <publish dir> <data dir> <label>
  local b=$1 d=$2 label=$3 p1 p2 pid start ready c1 c2 base
  p1=$(free_port); p2=$(free_port)
  start=$(date +%s.%N)
  (cd "$d" && exec "$b/gatehouse" serve --data "$d" --urls "https://127.0.0.1:$p1" --rdp-port "$p2" > "$d/serve-$label.log" 2>&1) &
  pid=$!
  for _ in $(seq 1 2400); do curl -sk -o /dev/null --fail "https://127.0.0.1:$p1/healthz" && break; sleep 0.05; done
  ready=$(date +%s.%N)
  c1=$(awk '{print ($14+$15)/100}' "/proc/$pid/stat")
  base="https://127.0.0.1:$p1"
  curl -sk -o /dev/null "$base/common/v2.0/.well-known/openid-configuration"
  curl -sk -o /dev/null "$base/common/discovery/v2.0/keys"
  curl -sk -o /dev/null "$base/healthz/ready"
  curl -sk -o /dev/null "$base/common/oauth2/v2.0/authorize?client_id=a85cf173-4192-42f8-81fa-777a763e6e2c&response_type=code&redirect_uri=ms-appx-web%3a%2f%2fMicrosoft.AAD.BrokerPlugin%2fa85cf173-4192-42f8-81fa-777a763e6e2c&scope=openid"
  c2=$(awk '{print ($14+$15)/100}' "/proc/$pid/stat")
  printf "%-40s %-8s ready %5.1f s wall %5.2f CPU-s   first requests %4.2f CPU-s   RSS %s\n" "$b" "$label" \
    "$(echo "$ready - $start" | bc)" "$c1" "$(echo "$c2 - $c1" | bc)" "$(awk '/VmRSS/ {print $2" "$3}' "/proc/$pid/status")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

for r in $(seq 1 "$rounds"); do
  for b in "$@"; do
    d=$(mktemp -d /tmp/gatehouse-startup.XXXXXX)
    one_start "$(realpath "$b")" "$d" first
    one_start "$(realpath "$b")" "$d" restart
    rm -rf "$d"
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

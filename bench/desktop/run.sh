#!/usr/bin/env bash
# Busy-desktop relay benchmark: Gatehouse and freerdp-proxy3 side by side (issue 16 item 4).
#
# One run, interleaved rounds, three paths to the same busy desktop (an xterm listing /usr as fast as it can on the
# FreeRDP shadow server's own Xvfb, NLA with a SAM file), watched by the real xfreerdp3 on another Xvfb:
#   direct     xfreerdp3 --(NLA)--> freerdp-shadow-cli3
#   gatehouse  xfreerdp3 --(NLA, user's password)--> gatehouse serve --(CredSSP, injected account)--> shadow server
#   proxy      xfreerdp3 --(TLS, Client Info)--> freerdp-proxy3 --(NLA, its [Target] account)--> shadow server
# Per run: wait until the client's display shows the desktop, WARMUP s more, then a window of SECONDS s in which it
# reads utime+stime (/proc/PID/stat fields 14 and 15: all threads, children excluded) of the relay, the client and the
# shadow server, and the bytes of every established TCP connection on the client leg (ss -ti bytes_sent +
# bytes_received on 127.0.0.1:PORT, the relay's or for "direct" the host's listening port) and on the host leg. Same
# counting method for both relays. Round 0 (one session through each relay after it started: JIT) is shown apart.
# Each relay's idle CPU is read during the other variants' windows. Prints a table per session, the medians and the
# ratio Gatehouse ÷ freerdp-proxy3 of ms of CPU per MiB relayed (docs/benchmarks.md, "Busy desktop").
#
# Usage: bench/desktop/run.sh [GATEHOUSE_BUILD_DIR] [--rounds N (3)] [--seconds S (20)] [--warmup S (10)]
#                             [--gfx on|off (on)] [--desktop busy|still (busy)] [--out FILE]
#   --desktop still: the xterm only shows a line and waits. (The shadow server still sends about 0.5 MiB/s of small
#   updates to a client then: a stream of small messages instead of a flood of large ones.)
#   GATEHOUSE_BUILD_DIR: the directory holding gatehouse.dll (default: this tree's src/Gatehouse/bin/Release/net10.0,
#   built with 'dotnet build src/Gatehouse -c Release' when it is missing).
#   keep_work=1 in the environment keeps the temporary directory (logs, screenshots, per-thread CPU) after a success.
# Installs its missing peers (Debian packages) when run as root, like scripts/test.sh. Never touches xrdp or port 3389.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here="$root/bench/desktop"
build_dir=""
rounds=3
seconds=20
warmup=10
gfx=on
desktop=busy
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --gfx) gfx=$2; shift 2 ;;
    --desktop) desktop=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^set -euo/ { exit } NR > 1' "$0"; exit 0 ;;
    -*) echo "bench/desktop/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) build_dir=$1; shift ;;
  esac
done
case "$desktop" in
  busy) desktop_command='while :; do ls -lR --color=always /usr; done' ;;
  still) desktop_command='echo "a still desktop"; exec sleep 100000' ;;   # a stream of small updates (see --help)
  *) echo "bench/desktop/run.sh: --desktop busy|still" >&2; exit 2 ;;
esac
case "$gfx" in on) gfx_arg=/gfx ;; off) gfx_arg=-gfx ;; *) echo "bench/desktop/run.sh: --gfx on|off" >&2; exit 2 ;; esac

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { echo "bench/desktop/run.sh: $*" >&2; exit 1; }

# --- peers -------------------------------------------------------------------------------------------------------------
# have_package PACKAGE: true when Debian's package is installed.
have_package() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# ensure_package PACKAGE [apt-get options]: installs a missing package when root; otherwise says what to install.
ensure_package() {
  local package=$1; shift
  have_package "$package" && return 0
  [ "$(id -u)" -eq 0 ] || die "the Debian package $package is missing: install it (as root: apt-get install -y $* $package) and run again."
  log "Installing $package $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" "$package" </dev/null >/dev/null \
    || { DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" "$package" </dev/null >/dev/null; } \
    || die "could not install $package ($*): FreeRDP 3 comes from bookworm-backports (see /work/shared/design/PEERS.md or scripts/test.sh's ensure_backports)."
}

# ensure_backports: FreeRDP 3 is only in bookworm-backports on Debian 12; added as scripts/test.sh adds it, from the
# mirror the machine's apt already uses (scripts/apt-mirror.sh).
ensure_backports() {
  shopt -s nullglob
  local sources=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources) mirror keyring
  shopt -u nullglob
  if [ ${#sources[@]} -gt 0 ] && grep -qs 'bookworm-backports' "${sources[@]}"; then
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "add bookworm-backports to apt's sources (as root) for FreeRDP 3."
  read -r mirror keyring < <("$root/scripts/apt-mirror.sh") || die "no apt source for Debian bookworm main, so the mirror for bookworm-backports is unknown: add bookworm-backports to apt's sources for FreeRDP 3."
  log "Adding bookworm-backports from $mirror to apt's sources (for FreeRDP 3)"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' "$mirror" "$keyring" \
    >/etc/apt/sources.list.d/bookworm-backports.sources
  DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
}

if command -v dpkg-query >/dev/null 2>&1; then
  for p in xvfb xterm imagemagick iproute2 openssl; do ensure_package "$p"; done
  for p in freerdp3-x11 freerdp3-shadow-x11 freerdp3-proxy; do
    have_package "$p" || { ensure_backports; ensure_package "$p" -t bookworm-backports; }
  done
fi
for tool in Xvfb xterm xfreerdp3 freerdp-shadow-cli3 freerdp-proxy3 ss openssl import convert dotnet python3 iconv; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (Debian packages: xvfb xterm freerdp3-x11 freerdp3-shadow-x11 freerdp3-proxy iproute2 openssl imagemagick; and dotnet, python3)."
done
getent hosts vm1.gatehouse.test | grep -q '^127\.0\.0\.1' \
  || die "vm1.gatehouse.test does not resolve to 127.0.0.1: add '127.0.0.1 vm1.gatehouse.test login.gatehouse.test' to /etc/hosts (scripts/test.sh does)."

if [ -z "$build_dir" ]; then
  build_dir="$root/src/Gatehouse/bin/Release/net10.0"
  if [ ! -f "$build_dir/gatehouse.dll" ]; then
    log "Building Gatehouse (Release) into $build_dir"
    dotnet build "$root/src/Gatehouse" -c Release -nologo -v quiet -p:UseSharedCompilation=true >&2 || die "the Release build of src/Gatehouse failed."
  fi
fi
[ -d "$build_dir" ] || die "no such Gatehouse build directory: $build_dir (pass the Release output of src/Gatehouse, e.g. src/Gatehouse/bin/Release/net10.0)."
build_dir=$(cd "$build_dir" && pwd)
[ -f "$build_dir/gatehouse.dll" ] || die "$build_dir has no gatehouse.dll: pass the Release output directory of src/Gatehouse."

# --- workspace and cleanup ---------------------------------------------------------------------------------------------
work=$(mktemp -d /tmp/gatehouse-bench-desktop.XXXXXX)
pids=()
cleanup() {
  local status=$?
  set +e
  local pid
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[$i]}
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [ "${keep_work:-0}" = 1 ] || [ $status -ne 0 ]; then
    log "Logs kept in $work"
  else
    rm -rf "$work"
  fi
  exit $status
}
trap cleanup EXIT
trap 'echo "bench/desktop/run.sh: line $LINENO: a command failed (status $?); logs in $work" >&2' ERR
trap 'exit 130' INT TERM

# free_ports N: N distinct free loopback TCP ports.
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# listening PORT: true when something listens on 127.0.0.1:PORT (no connection is made).
listening() { [ -n "$(ss -tlnH "( sport = :$1 )" 2>/dev/null)" ]; }

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s.
wait_for() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# start_xvfb NAME: starts an Xvfb on a free display (1280x800x24); sets xvfb_display.
start_xvfb() {
  local fifo="$work/$1.displayfd"
  mkfifo "$fifo"
  Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$fifo" >"$work/$1.log" 2>&1 &
  pids+=($!)
  read -r -t 30 number <"$fifo" || die "Xvfb ($1) did not start: $(cat "$work/$1.log")"
  xvfb_display=":$number"
}

read -r shadow_port rdp_port https_port proxy_port <<<"$(free_ports 4)"
openssl_conf="$work/openssl-legacy.cnf"
printf 'openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n[provider_sect]\ndefault = default_sect\nlegacy = legacy_sect\n[default_sect]\nactivate = 1\n[legacy_sect]\nactivate = 1\n' >"$openssl_conf"
export OPENSSL_CONF="$openssl_conf"   # FreeRDP's NTLM needs MD4 and RC4 (OpenSSL's legacy provider)

# --- host: shadow server on its own Xvfb, a busy xterm, NLA with a SAM file ----------------------------------------------
host_user=shadowadmin
host_password=Shadow-Admin-1
nt_hash=$(printf '%s' "$host_password" | iconv -f UTF-8 -t UTF-16LE | openssl dgst -md4 -r | cut -d' ' -f1)
[ ${#nt_hash} -eq 32 ] || die "could not compute an NT hash with 'openssl dgst -md4' (OpenSSL's legacy provider)."
printf '%s::%s:%s:::\n' "$host_user" "00000000000000000000000000000000" "$nt_hash" >"$work/SAM"

start_xvfb host-xvfb
host_display=$xvfb_display
DISPLAY=$host_display xterm -geometry 212x60+0+0 -e sh -c "$desktop_command" >"$work/xterm.log" 2>&1 &
pids+=($!)
DISPLAY=$host_display freerdp-shadow-cli3 "/port:$shadow_port" /bind-address:127.0.0.1 /sec:nla "/sam-file:$work/SAM" \
  /log-level:WARN >"$work/shadow.log" 2>&1 &
shadow_pid=$!
pids+=($shadow_pid)
wait_for 30 "shadow server" listening "$shadow_port" || die "freerdp-shadow-cli3 did not listen on 127.0.0.1:$shadow_port: $(tail -20 "$work/shadow.log")"
log "Shadow server (NLA) on 127.0.0.1:$shadow_port sharing $host_display with a busy xterm"

# --- Gatehouse: its own data directory and ports, seeded with the CLI --------------------------------------------------
gatehouse() { dotnet "$build_dir/gatehouse.dll" "$@"; }
data="$work/gatehouse-data"
cat >"$work/gatehouse.json" <<'JSON'
{ "Gatehouse": { "Gateway": { "SignInMethods": "WebAccount, Nla" } } }
JSON
upn=bench@contoso.test
user_password=Bench-Desktop-9!
dotnet "$build_dir/gatehouse.dll" serve --data "$data" --urls "https://127.0.0.1:$https_port" --rdp-port "$rdp_port" \
  --public-name "login.gatehouse.test:$https_port" --config "$work/gatehouse.json" >"$work/gatehouse.log" 2>&1 &
gatehouse_pid=$!
pids+=($gatehouse_pid)
wait_for 120 "gatehouse" listening "$rdp_port" || die "gatehouse serve did not listen on 127.0.0.1:$rdp_port: $(tail -30 "$work/gatehouse.log")"
printf '%s' "$host_password" >"$work/host-password"
chmod 600 "$work/host-password"
{
  printf '%s\n' "$user_password" | gatehouse user create --upn "$upn" --display-name Bench --password-stdin --data "$data"
  gatehouse host create --name vm1 --backend "127.0.0.1:$shadow_port" --backend-security nla \
    --admin-account "$host_user" --admin-password-file "$work/host-password" \
    --user-account "$host_user" --user-password-file "$work/host-password" --data "$data"
  gatehouse role assignment create --role "Virtual Machine Administrator Login" --assignee "$upn" --scope /hosts/vm1 --data "$data"
} >"$work/seed.log" 2>&1 || die "seeding Gatehouse with its CLI failed: $(cat "$work/seed.log")"
log "Gatehouse $(basename "$build_dir") from $build_dir: RDP 127.0.0.1:$rdp_port (pid $gatehouse_pid), vm1 -> shadow server (NLA, injected $host_user)"

# --- freerdp-proxy3: fixed target, TLS to the client, NLA to the host with its [Target] account -----------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -keyout "$work/proxy.key" -out "$work/proxy.crt" >/dev/null 2>&1 \
  || die "openssl could not make the proxy's certificate."
cat >"$work/proxy.ini" <<INI
[Server]
Host=127.0.0.1
Port=$proxy_port

[Target]
Host=127.0.0.1
Port=$shadow_port
FixedTarget=true
User=$host_user
Password=$host_password
TlsSecLevel=1

[Channels]
GFX=true
DisplayControl=true
Clipboard=false
AudioInput=false
AudioOutput=false
DeviceRedirection=false
VideoRedirection=false
CameraRedirection=false
RemoteApp=false
PassthroughIsBlacklist=true
Passthrough=
Intercept=

[Input]
Keyboard=true
Mouse=true
Multitouch=false

[Security]
ServerTlsSecurity=true
ServerNlaSecurity=false
ServerRdpSecurity=false
ClientTlsSecurity=true
ClientNlaSecurity=true
ClientRdpSecurity=false
ClientAllowFallbackToTls=false

[Plugins]
Modules=
Required=

[Certificates]
CertificateFile=$work/proxy.crt
PrivateKeyFile=$work/proxy.key
INI
freerdp-proxy3 "$work/proxy.ini" >"$work/proxy.log" 2>&1 &
proxy_pid=$!
pids+=($proxy_pid)
wait_for 30 "freerdp-proxy3" listening "$proxy_port" || die "freerdp-proxy3 did not listen on 127.0.0.1:$proxy_port: $(tail -20 "$work/proxy.log")"
log "freerdp-proxy3 $(dpkg-query -W -f='${Version}' freerdp3-proxy 2>/dev/null) on 127.0.0.1:$proxy_port (pid $proxy_pid) -> shadow server (NLA, $host_user)"

# --- measurement -------------------------------------------------------------------------------------------------------
start_xvfb client-xvfb
client_display=$xvfb_display
clk_tck=$(getconf CLK_TCK)

# cpu_ticks PID: utime + stime of PID (all its threads, children excluded), in clock ticks.
cpu_ticks() {
  [ -r "/proc/$1/stat" ] || die "process $1 is gone (see the logs in $work)."
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# thread_ticks PID: one line per thread of PID: its name (spaces as _) and utime + stime in clock ticks.
thread_ticks() {
  local task
  for task in /proc/"$1"/task/*/stat; do
    awk '{ match($0, /\(.*\)/); name = substr($0, RSTART + 1, RLENGTH - 2); gsub(/ /, "_", name);
           rest = substr($0, RSTART + RLENGTH + 1); split(rest, f, " "); print FILENAME, name, f[12] + f[13] }' "$task" 2>/dev/null
  done
}

# tcp_bytes local|peer PORT: sum of bytes_sent + bytes_received of the established TCP connections whose local (or
# peer) end is 127.0.0.1:PORT. The address is checked too: other programs on this machine use the same port numbers on
# 127.0.0.2, 127.0.0.3…
tcp_bytes() {
  local column=3 filter="( sport = :$2 )"
  [ "$1" = peer ] && { column=4; filter="( dport = :$2 )"; }
  ss -tinH state established "$filter" 2>/dev/null | awk -v col="$column" -v port="$2" '
    /^[0-9]/ { a = $(col); mine = (a == "127.0.0.1:" port || a == "[::ffff:127.0.0.1]:" port); next }
    mine { for (i = 1; i <= NF; i++) if ($i ~ /^bytes_(sent|received):/) { split($i, kv, ":"); s += kv[2] } }
    END { printf "%d\n", s }'
}

# connections local|peer PORT: the established TCP connections on 127.0.0.1:PORT (local or peer end).
connections() {
  local column=3 filter="( sport = :$2 )"
  [ "$1" = peer ] && { column=4; filter="( dport = :$2 )"; }
  ss -tnH state established "$filter" 2>/dev/null | awk -v col="$column" -v port="$2" '
    { a = $(col); if (a == "127.0.0.1:" port || a == "[::ffff:127.0.0.1]:" port) n++ } END { print n + 0 }'
}

# screen_digest: a digest of the client display's pixels.
screen_digest() { import -display "$client_display" -window root rgb:- 2>/dev/null | md5sum; }

# showing_desktop CLIENT_PID: true when the client's display shows more than one colour; fails if the client exited.
showing_desktop() {
  kill -0 "$1" 2>/dev/null || die "xfreerdp3 exited before showing the desktop: $(tail -15 "$clog")"
  [ "$(import -display "$client_display" -window root png:- 2>/dev/null | convert png:- -format %k info: 2>/dev/null || echo 0)" -gt 1 ]
}

base_client=(/size:1280x800 /bpp:32 /cert:ignore -clipboard "$gfx_arg" -decorations)
# run_one ROUND VARIANT: one measured session; appends a line to $work/results.tsv.
run_one() {
  local round=$1 variant=$2 relay_pid="" client_port args=()
  case "$variant" in
    direct) client_port=$shadow_port; args=("/v:127.0.0.1:$shadow_port" /sec:nla "/u:$host_user" "/p:$host_password") ;;
    gatehouse) client_port=$rdp_port; relay_pid=$gatehouse_pid; args=("/v:vm1.gatehouse.test:$rdp_port" /sec:nla "/u:$upn" "/p:$user_password") ;;
    proxy) client_port=$proxy_port; relay_pid=$proxy_pid; args=("/v:127.0.0.1:$proxy_port" /sec:tls "/u:$host_user" "/p:$host_password") ;;
  esac
  local clog="$work/client-$round-$variant.log"
  # The client's display is blank (one colour) until its window shows the desktop.
  DISPLAY=$client_display xfreerdp3 "${args[@]}" "${base_client[@]}" >"$clog" 2>&1 &
  local client_pid=$!
  pids+=($client_pid)
  if ! wait_for 90 "session" showing_desktop "$client_pid"; then
    kill "$client_pid" 2>/dev/null
    die "$variant (round $round): xfreerdp3 did not show the desktop within 90 s: $(tail -15 "$clog")"
  fi
  sleep "$warmup"
  kill -0 "$client_pid" 2>/dev/null || die "$variant (round $round): xfreerdp3 exited during the warm-up: $(tail -15 "$clog")"

  local t0 r0=0 c0 h0 cb0 hb0 t1 r1=0 c1 h1 cb1 hb1 g0 g1 p0 p1
  t0=$(date +%s.%N); [ -n "$relay_pid" ] && r0=$(cpu_ticks "$relay_pid"); c0=$(cpu_ticks "$client_pid"); h0=$(cpu_ticks "$shadow_pid")
  g0=$(cpu_ticks "$gatehouse_pid"); p0=$(cpu_ticks "$proxy_pid")
  cb0=$(tcp_bytes local "$client_port"); hb0=$(tcp_bytes peer "$shadow_port")
  [ -n "$relay_pid" ] && thread_ticks "$relay_pid" >"$work/threads-$round-$variant.0"
  sleep "$seconds"
  [ -n "$relay_pid" ] && thread_ticks "$relay_pid" >"$work/threads-$round-$variant.1"
  t1=$(date +%s.%N); [ -n "$relay_pid" ] && r1=$(cpu_ticks "$relay_pid"); c1=$(cpu_ticks "$client_pid"); h1=$(cpu_ticks "$shadow_pid")
  g1=$(cpu_ticks "$gatehouse_pid"); p1=$(cpu_ticks "$proxy_pid")
  cb1=$(tcp_bytes local "$client_port"); hb1=$(tcp_bytes peer "$shadow_port")
  kill -0 "$client_pid" 2>/dev/null || die "$variant (round $round): xfreerdp3 exited during the measurement: $(tail -15 "$clog")"

  # The client really rendered, and the desktop was moving: two screenshots of its display half a second apart,
  # each with more than one colour, and different.
  local shot="$work/shot-$round-$variant.png" colours moving=still
  # (On a loaded machine a screenshot can fail; the session is still measured, with "no screenshot".)
  import -display "$client_display" -window root "$shot" 2>/dev/null || log "warning: no screenshot of the client's display"
  colours=$(convert "$shot" -format %k info: 2>/dev/null || echo 0)
  sleep 0.5
  [ "$colours" != 0 ] && [ "$(screen_digest)" != "$(convert "$shot" rgb:- 2>/dev/null | md5sum)" ] && moving=moving
  colours="$colours $moving"

  kill -TERM "$client_pid" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$client_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$client_pid" 2>/dev/null || true
  wait "$client_pid" 2>/dev/null || true
  wait_for 30 "close" test "$(connections local "$client_port")" -eq 0 \
    || log "warning: $(connections local "$client_port") connection(s) on 127.0.0.1:$client_port still open 30 s after the client ended"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$variant" "$(awk "BEGIN { print $t1 - $t0 }")" \
    $((r1 - r0)) $((c1 - c0)) $((h1 - h0)) $((cb1 - cb0)) $((hb1 - hb0)) "$clk_tck" "$colours" $((g1 - g0)) $((p1 - p0)) >>"$work/results.tsv"
  log "round $round $variant: relay $((r1 - r0)) ticks, client $((c1 - c0)), host $((h1 - h0)); client leg $((cb1 - cb0)) B, host leg $((hb1 - hb0)) B; screenshot colours $colours"
}

: >"$work/results.tsv"
variants=(direct gatehouse proxy)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# Round 0: the first session through each relay after it started (Gatehouse's JIT compiles the relay path then: see
# the thread names in the report). Shown on its own, left out of the medians.
run_one 0 gatehouse
run_one 0 proxy
for ((r = 1; r <= rounds; r++)); do
  for ((k = 0; k < 3; k++)); do
    run_one "$r" "${variants[$(((r - 1 + k) % 3))]}"
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "Busy desktop, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load average before $load_before, after $load_after"
  echo "gatehouse: $build_dir, gatehouse.dll of $(date -u -r "$build_dir/gatehouse.dll" +%Y-%m-%dT%H:%MZ); this tree: HEAD $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo '?'), src/ last changed in $(cd "$root" && git log -1 --format=%h -- src 2>/dev/null || echo '?')"
  echo "freerdp-proxy3 and the shadow server: FreeRDP $(dpkg-query -W -f='${Version}' freerdp3-proxy 2>/dev/null); xfreerdp3 $(dpkg-query -W -f='${Version}' freerdp3-x11 2>/dev/null)"
  echo "desktop: $desktop; client: xfreerdp3 ${base_client[*]}; $rounds rounds x 3 variants interleaved, warm-up $warmup s, window $seconds s"
  python3 "$here/report.py" "$work/results.tsv" "$work"
} | tee "$work/report.txt"
[ -n "$out" ] && cp "$work/report.txt" "$out"
exit 0

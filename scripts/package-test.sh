#!/usr/bin/env bash
# Installs the Gatehouse Debian package on this machine, checks it, and removes it again.
#
#   scripts/package-test.sh DEB        (as root; DEB from scripts/package.sh)
#
# Steps: `dpkg -i DEB`; `/usr/bin/gatehouse --version`; `systemd-analyze verify` of the installed units when the tool
# exists (its findings fail the test; a warning only when it cannot run without systemd as PID 1); `gatehouse serve` as the
# gatehouse user with the installed unit's ExecStart, Environment and WorkingDirectory, on free loopback ports (HTTPS, RDP),
# until /healthz answers 200; stopped with SIGTERM; `dpkg -i DEB` again (the upgrade path: the database is copied to
# /var/lib/gatehouse/backups); `dpkg --purge gatehouse`; then nothing may be left: /usr/lib/gatehouse,
# /usr/bin/gatehouse, /etc/gatehouse, /var/lib/gatehouse, the units, the gatehouse user and group.
#
# Refuses to run when a gatehouse package it did not install is already there (it would purge its data). A run that
# was killed leaves a marker, so the next run purges what that run installed. Always purges on exit (trap).
# Environment: GATEHOUSE_PACKAGE_TEST_TIMEOUT  seconds to wait for /healthz (default 180).
set -Eeuo pipefail

deb=${1:-}
if [ -z "$deb" ] || [ ! -f "$deb" ]; then
  echo "usage: scripts/package-test.sh DEB (the .deb built by scripts/package.sh)" >&2
  exit 2
fi
deb=$(readlink -f "$deb")
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/package-test.sh: must run as root (dpkg -i, setpriv)." >&2
  exit 2
fi
for tool in dpkg curl runuser setpriv setsid; do
  command -v "$tool" >/dev/null 2>&1 || { echo "scripts/package-test.sh: $tool is not on PATH." >&2; exit 1; }
done
timeout_s=${GATEHOUSE_PACKAGE_TEST_TIMEOUT:-180}
marker=/var/tmp/gatehouse-package-test.installed
unit=/lib/systemd/system/gatehouse.service
log=$(mktemp /tmp/gatehouse-package-test.XXXXXX.log)
server_pid=""

say() { printf '== %s\n' "$*"; }
fail() { echo "scripts/package-test.sh: FAIL: $*" >&2; exit 1; }

installed() { dpkg-query -W -f='${Status}' gatehouse 2>/dev/null | grep -qv 'not-installed'; }

stop_server() {
  [ -n "$server_pid" ] || return 0
  # setsid made the server the leader of its own process group: signal the whole group.
  kill -TERM -- "-$server_pid" 2>/dev/null || true
  local i status=0
  for i in $(seq 1 600); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "scripts/package-test.sh: gatehouse serve did not stop within 60 s of SIGTERM; killing it." >&2
    kill -KILL -- "-$server_pid" 2>/dev/null || true
  fi
  wait "$server_pid" 2>/dev/null || status=$?
  server_pid=""
  return "$status"
}

cleanup() {
  local rc=$?
  stop_server || true
  if [ -f "$marker" ]; then
    if installed; then
      dpkg --purge gatehouse >/dev/null 2>&1 || echo "scripts/package-test.sh: dpkg --purge gatehouse failed during cleanup." >&2
    fi
    rm -f "$marker"
  fi
  if [ "$rc" -ne 0 ] && [ -s "$log" ]; then
    echo "--- gatehouse serve output (last 40 lines of $log)" >&2
    tail -n 40 "$log" >&2
  else
    rm -f "$log"
  fi
}
trap cleanup EXIT

if installed; then
  if [ -f "$marker" ]; then
    say "Purging the gatehouse package a previous interrupted run installed"
    dpkg --purge gatehouse >/dev/null
  else
    fail "a gatehouse package is already installed here and this script did not install it; purging it would delete /var/lib/gatehouse. Remove it yourself (dpkg --purge gatehouse) on a test machine."
  fi
fi
if getent passwd gatehouse >/dev/null && [ ! -f "$marker" ]; then
  fail "a user named gatehouse already exists and no gatehouse package is installed; the purge check would remove it. Remove the user on a test machine first."
fi

started=$(date +%s)
say "dpkg -i $(basename "$deb")"
touch "$marker"
dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb failed (missing dependencies? try apt-get install ./$(basename "$deb"))."

say "Checking the installed files"
[ -x /usr/bin/gatehouse ] || fail "/usr/bin/gatehouse is missing or not executable."
[ -f /etc/gatehouse/appsettings.json ] || fail "/etc/gatehouse/appsettings.json is missing."
[ -f "$unit" ] || fail "$unit is missing."
getent passwd gatehouse >/dev/null || fail "postinst did not create the gatehouse user."
[ "$(stat -c '%U:%a' /var/lib/gatehouse)" = "gatehouse:700" ] || fail "/var/lib/gatehouse is $(stat -c '%U:%a' /var/lib/gatehouse), not gatehouse:700."
runuser -u gatehouse -- test -r /etc/gatehouse/appsettings.json || fail "the gatehouse user cannot read /etc/gatehouse/appsettings.json."

version=$(/usr/bin/gatehouse --version </dev/null) || fail "/usr/bin/gatehouse --version failed."
say "gatehouse --version: $version"

if command -v systemd-analyze >/dev/null 2>&1; then
  say "systemd-analyze verify"
  for u in /lib/systemd/system/gatehouse*.service; do
    rc=0
    out=$(systemd-analyze verify "$u" 2>&1) || rc=$?
    if [ "$rc" -eq 0 ] && [ -z "$out" ]; then
      echo "  $(basename "$u"): no findings"
    elif grep -qiE 'booted with systemd|PID 1|Failed to (connect|initialize manager|setup)|Operation not permitted|Permission denied' <<<"$out"; then
      # Without systemd as PID 1 (containers) the tool may not be able to load units at all: not the unit's fault.
      echo "warning: systemd-analyze verify could not check $u here:" >&2
      sed 's/^/  /' <<<"$out" >&2
    else
      sed 's/^/  /' <<<"$out" >&2
      fail "systemd-analyze verify $u reported the findings above."
    fi
  done
else
  echo "systemd-analyze is not installed: the unit files were not verified."
fi

# The unit's command line, environment, user and working directory (single-line values, as in our units).
unit_value() { sed -n "s/^$1=//p" "$unit"; }
exec_line=$(unit_value ExecStart | tail -n 1)
exec_line=${exec_line#[-@+!:]}
[ -n "$exec_line" ] || fail "no ExecStart in $unit."
read -r -a exec_cmd <<<"$exec_line"
unit_env=()
while read -r -a words; do
  unit_env+=("${words[@]}")
done < <(unit_value Environment)
user=$(unit_value User | tail -n 1)
workdir=$(unit_value WorkingDirectory | tail -n 1)
[ "$user" = gatehouse ] || fail "the unit runs as '$user', not gatehouse."

free_port() {
  local port=$1
  while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || [ "$port" = "${2:-}" ]; do port=$((port + 1)); done
  echo "$port"
}
https_port=$(free_port $((20000 + RANDOM % 20000)))
rdp_port=$(free_port $((https_port + 1)) "$https_port")

say "Starting '${exec_cmd[*]}' as $user in $workdir (https://127.0.0.1:$https_port, RDP 127.0.0.1:$rdp_port)"
cd "$workdir"
# setpriv execs (runuser would stay as the parent and SIGKILL the server 2 s after forwarding SIGTERM), so SIGTERM
# reaches the server as systemd's stop would send it, and its exit status is the server's.
setsid setpriv --reuid="$user" --regid="$user" --init-groups --inh-caps=-all -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$workdir" "${unit_env[@]}" \
  Gatehouse__Urls="https://127.0.0.1:$https_port" Gatehouse__RdpPort="$rdp_port" Gatehouse__PublicName="127.0.0.1:$https_port" \
  "${exec_cmd[@]}" >"$log" 2>&1 </dev/null &
server_pid=$!
cd /

deadline=$(($(date +%s) + timeout_s))
code=000
while :; do
  code=$(curl -k -s -o /dev/null -w '%{http_code}' --max-time 5 "https://127.0.0.1:$https_port/healthz" || true)
  [ "$code" = 200 ] && break
  kill -0 "$server_pid" 2>/dev/null || fail "gatehouse serve exited before /healthz answered."
  [ "$(date +%s)" -lt "$deadline" ] || fail "/healthz did not answer 200 within $timeout_s s (last status $code)."
  sleep 0.5
done
say "/healthz answered 200 after $(($(date +%s) - started)) s since dpkg -i"
# The server ran as the gatehouse user and kept its data where the package says.
[ -f /var/lib/gatehouse/gatehouse.db ] || fail "no /var/lib/gatehouse/gatehouse.db after the server started."
[ "$(stat -c '%U' /var/lib/gatehouse/gatehouse.db)" = gatehouse ] || fail "/var/lib/gatehouse/gatehouse.db is not owned by gatehouse."

say "Stopping gatehouse serve (SIGTERM)"
stop_server || fail "gatehouse serve exited with status $? after SIGTERM (expected 0: a clean shutdown)."

say "dpkg -i again (the upgrade path: preinst copies the database, postinst runs a second time)"
dpkg -i "$deb" >/dev/null || fail "installing $deb over itself (the upgrade path) failed."
ls /var/lib/gatehouse/backups/*/gatehouse.db >/dev/null 2>&1 || fail "the upgrade made no copy of the database under /var/lib/gatehouse/backups."
[ "$(stat -c '%U:%a' /var/lib/gatehouse/backups)" = "gatehouse:700" ] || fail "/var/lib/gatehouse/backups is not gatehouse:700."
[ "$(stat -c '%U:%a' /var/lib/gatehouse)" = "gatehouse:700" ] || fail "/var/lib/gatehouse is no longer gatehouse:700 after the upgrade."

say "dpkg --purge gatehouse"
dpkg --purge gatehouse >/dev/null || fail "dpkg --purge gatehouse failed."
rm -f "$marker"
left=()
for path in /usr/lib/gatehouse /usr/bin/gatehouse /etc/gatehouse /var/lib/gatehouse /var/lib/gatehouse-agent /lib/systemd/system/gatehouse.service \
  /lib/systemd/system/gatehouse-agent.service /usr/share/doc/gatehouse; do
  [ -e "$path" ] || [ -L "$path" ] && left+=("$path")
done
getent passwd gatehouse >/dev/null && left+=("user gatehouse")
getent group gatehouse >/dev/null && left+=("group gatehouse")
installed && left+=("package gatehouse")
[ ${#left[@]} -eq 0 ] || fail "left after dpkg --purge: ${left[*]}"
say "Package test passed: installed, answered /healthz as gatehouse, purged cleanly ($(($(date +%s) - started)) s)"

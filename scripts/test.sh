#!/usr/bin/env bash
# Runs every Gatehouse test project and ends with one line "N passed, N failed".
#
# Works on a fresh Debian 12 machine with the .NET SDK, as root or not, without stdin. It installs what the
# tests need when it is missing (idempotently, from Debian's packages), starts the real peers the end-to-end
# tests drive, and stops what it started. Exit status: 0 only when everything built, every test passed, and the
# protocol library's line coverage is at or above the bar.
#
# Environment:
#   GATEHOUSE_COVERAGE_MIN   minimum line coverage of Gatehouse.Protocol, in percent (default 90)
#   GATEHOUSE_TEST_FILTER    passed to `dotnet test --filter` (default: all tests)
#   GATEHOUSE_FUZZ_EXECUTIONS  mutations per fuzz target in the in-suite fuzz run (default 50000)
#
# Without GATEHOUSE_TEST_FILTER it also runs the afl++ fuzz smoke and, as root, builds the Debian package and tests it
# (scripts/package.sh, scripts/package-test.sh: about two minutes).
set -Eeuo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
results="$root/artifacts/test-results"
coverage_min=${GATEHOUSE_COVERAGE_MIN:-90}
started_pids=()

log() { printf '\n== %s\n' "$*"; }

cleanup() {
  for pid in "${started_pids[@]:-}"; do
    # Each peer was started in its own session: end the whole group (xrdp forks per connection).
    [ -n "$pid" ] && { kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; }
  done
  stop_xrdp_sessions
  stop_postgres
}
trap cleanup EXIT

# --- Prerequisites -------------------------------------------------------------------------------------------
if ! command -v dotnet >/dev/null 2>&1; then
  echo "scripts/test.sh: the .NET SDK (dotnet) is not on PATH. Install the .NET 10 SDK, then run this script again." >&2
  exit 1
fi

# apt_install PACKAGE...: installs the Debian packages that are missing (only when running as root).
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: missing packages ${missing[*]}; run as root (or install them) and try again." >&2
    return 1
  fi
  log "Installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" </dev/null >/dev/null
}

# ensure_backports: FreeRDP 3 (with /sec:aad) is only in bookworm-backports on Debian 12. The source is added from the
# mirror the machine's apt already uses for bookworm (scripts/apt-mirror.sh): which mirror is the administrator's choice.
ensure_backports() {
  shopt -s nullglob
  local sources=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
  shopt -u nullglob
  if [ ${#sources[@]} -gt 0 ] && grep -qs 'bookworm-backports' "${sources[@]}"; then
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || { echo "scripts/test.sh: add bookworm-backports to apt's sources (as root) for FreeRDP 3." >&2; return 1; }
  local mirror keyring
  if ! read -r mirror keyring < <("$root/scripts/apt-mirror.sh"); then
    echo "scripts/test.sh: no apt source for Debian bookworm main in /etc/apt/sources.list or /etc/apt/sources.list.d, so the mirror for bookworm-backports is unknown; add bookworm-backports to apt's sources for FreeRDP 3." >&2
    return 1
  fi
  log "Adding bookworm-backports from $mirror to apt's sources (for FreeRDP 3)"
  cat >/etc/apt/sources.list.d/bookworm-backports.sources <<SRC
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: $keyring
SRC
  DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
}

# install_peers: the real software the end-to-end tests drive (see ../shared/design/PEERS.md).
install_peers() {
  apt_install postgresql xvfb xauth chromium fonts-dejavu-core xrdp xorgxrdp xterm imagemagick python3-msal python3-impacket xdotool zbar-tools
  local package
  for package in freerdp3-x11 freerdp3-shadow-x11; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      ensure_backports
      log "Installing $package (FreeRDP 3) from bookworm-backports"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports "$package" </dev/null >/dev/null
    fi
  done
}

# install_msal_node: Microsoft's MSAL for Node, a client in the MSAL end-to-end tests, at the version pinned in
# tests/Gatehouse.EndToEnd.Tests/Msal/package-lock.json, from the npm registry npm is configured with.
install_msal_node() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "scripts/test.sh: npm (Node.js 20 or later) is not on PATH; the MSAL for Node tests will say so." >&2
    return 0
  fi
  log "Installing @azure/msal-node (npm ci in tests/Gatehouse.EndToEnd.Tests/Msal)"
  (cd tests/Gatehouse.EndToEnd.Tests/Msal && npm ci --no-audit --no-fund --loglevel=error </dev/null)
}

# ensure_test_names: the RDP client derives the host label from the first DNS label of /v:, so the tests
# connect to names, not addresses.
ensure_test_names() {
  local names="vm1.gatehouse.test vm3.gatehouse.test login.gatehouse.test vm1.login.gatehouse.test" missing="" name
  for name in $names; do
    getent hosts "$name" >/dev/null || missing="$missing $name"
  done
  [ -n "$missing" ] || return 0
  [ -w /etc/hosts ] || { echo "scripts/test.sh: add '127.0.0.1$missing' to /etc/hosts (as root)." >&2; return 1; }
  echo "127.0.0.1$missing" >>/etc/hosts
}

# start_postgres: a private, throwaway PostgreSQL 15 cluster on loopback (no systemd needed); stopped on exit.
# Autovacuum is off: its workers, owned by the superuser, would keep the tests' databases from being dropped by the
# non-superuser test role (DROP DATABASE ... WITH (FORCE) may not terminate them).
pg_dir=""
start_postgres() {
  local pgbin
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$pgbin/initdb" ] || { echo "scripts/test.sh: PostgreSQL's initdb was not found under /usr/lib/postgresql." >&2; return 1; }
  local port=${GATEHOUSE_TEST_PG_PORT:-55432}
  while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  pg_dir=$(mktemp -d /tmp/gatehouse-pg.XXXXXX)
  local run=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$pg_dir"
    run=(runuser -u postgres --)
  fi
  "${run[@]}" "$pgbin/initdb" -D "$pg_dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-sync >"$pg_dir/initdb.log"
  "${run[@]}" "$pgbin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -s \
    -o "-p $port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 -c autovacuum=off" start
  local password
  password=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  "${run[@]}" psql -h "$pg_dir" -p "$port" -U postgres -v ON_ERROR_STOP=1 -q \
    -c "CREATE ROLE gatehouse LOGIN CREATEDB PASSWORD '$password'" -c "CREATE DATABASE gatehouse OWNER gatehouse"
  export GATEHOUSE_TEST_POSTGRES="Host=127.0.0.1;Port=$port;Username=gatehouse;Password=$password;Database=gatehouse"
  echo "PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($pg_dir)"
}

stop_postgres() {
  [ -n "$pg_dir" ] || return 0
  local pgbin run=()
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ "$(id -u)" -eq 0 ] && run=(runuser -u postgres --)
  "${run[@]}" "$pgbin/pg_ctl" -D "$pg_dir/data" -m fast -w -s stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}

# start_xrdp: the real xrdp host (TLS, credentials in the Client Info PDU) and the two local accounts the gateway
# injects (fresh random passwords every run, handed to the tests in the environment). Reuses an xrdp that is already
# listening on 3389; otherwise starts xrdp-sesman and xrdp in the foreground, each in its own session, and stops them
# (and the desktop sessions of the test accounts) on exit.
xrdp_accounts=(gatehouse-rdpuser gatehouse-rdpadmin)
xrdp_started=0
start_xrdp() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: not root, so xrdp's test accounts cannot be created; the gateway desktop tests will say so." >&2
    return 0
  fi
  local account password
  for account in "${xrdp_accounts[@]}"; do
    id -u "$account" >/dev/null 2>&1 || useradd -m -s /bin/bash "$account"
  done
  password=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  echo "${xrdp_accounts[0]}:U-$password" | chpasswd
  export GATEHOUSE_TEST_XRDP_USER=${xrdp_accounts[0]} GATEHOUSE_TEST_XRDP_USER_PASSWORD="U-$password"
  password=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  echo "${xrdp_accounts[1]}:A-$password" | chpasswd
  export GATEHOUSE_TEST_XRDP_ADMIN=${xrdp_accounts[1]} GATEHOUSE_TEST_XRDP_ADMIN_PASSWORD="A-$password"
  export GATEHOUSE_TEST_XRDP_PORT=3389
  if (echo >/dev/tcp/127.0.0.1/3389) 2>/dev/null; then
    echo "xrdp: reusing the RDP server already listening on 127.0.0.1:3389"
    return 0
  fi
  mkdir -p /run/xrdp /var/run/xrdp
  setsid xrdp-sesman --nodaemon >"$results/xrdp-sesman.log" 2>&1 </dev/null &
  started_pids+=($!)
  setsid xrdp --nodaemon >"$results/xrdp.log" 2>&1 </dev/null &
  started_pids+=($!)
  xrdp_started=1
  local i
  for i in $(seq 1 100); do
    (echo >/dev/tcp/127.0.0.1/3389) 2>/dev/null && { echo "xrdp $(xrdp --version 2>/dev/null | head -n 1 | awk '{print $2}') on 127.0.0.1:3389"; return 0; }
    sleep 0.1
  done
  echo "scripts/test.sh: xrdp did not start listening on 3389; see $results/xrdp.log" >&2
  return 1
}

stop_xrdp_sessions() {
  [ "$xrdp_started" -eq 1 ] || return 0
  local account
  for account in "${xrdp_accounts[@]}"; do
    pkill -u "$account" 2>/dev/null || true
  done
}

log "Real peers (PostgreSQL, Chromium, FreeRDP 3, Xvfb, xrdp)"
install_peers
install_msal_node
ensure_test_names
start_postgres

# --- Build ---------------------------------------------------------------------------------------------------
log "Building (Release)"
rm -rf "$results"
mkdir -p "$results"
start_xrdp
dotnet build Gatehouse.slnx -c Release -nologo -v quiet 2>&1 | tail -n 3

log "Checking formatting (dotnet format --verify-no-changes)"
if ! dotnet format Gatehouse.slnx --verify-no-changes --no-restore -v quiet; then
  echo "Formatting differs from .editorconfig: run 'dotnet format Gatehouse.slnx' and commit the result." >&2
  exit 1
fi

# --- Test ----------------------------------------------------------------------------------------------------
passed=0
failed=0
skipped=0
status=0
for project in $(find tests -name '*.Tests.csproj' | sort); do
  name=$(basename "$project" .csproj)
  log "Testing $name"
  out="$results/$name.log"
  filter_args=()
  [ -n "${GATEHOUSE_TEST_FILTER:-}" ] && filter_args=(--filter "$GATEHOUSE_TEST_FILTER")
  set +e
  dotnet test "$project" -c Release --no-build -nologo "${filter_args[@]}" \
    --collect "XPlat Code Coverage" --results-directory "$results/$name" \
    --logger "console;verbosity=minimal" --logger "trx;LogFileName=$name.trx" >"$out" 2>&1
  rc=$?
  set -e
  # Each failure with its message and the first lines of its stack trace (the client transcripts the end-to-end tests
  # attach are long, and FreeRDP's build warnings are left out: 12 message lines and 6 stack lines each, 200 lines in all).
  awk '
    /^  Failed / { block = 1; part = "head"; n = 0; print; next }
    block && /^  Error Message:/ { part = "message"; n = 0; print; next }
    block && /^  Stack Trace:/ { part = "stack"; n = 0; print; next }
    block && /^  (Standard Output Messages|Standard Error Messages):/ { block = 0; next }
    block && /^(Passed|Failed)! / { block = 0; next }
    block && /log_build_warn_|winpr_Digest_Init_Internal/ { next }
    block && part == "message" && n < 12 { n++; print; next }
    block && part == "stack" && n < 6 { n++; print; next }
  ' "$out" | head -n 200 || true
  summary=$(grep -E '(Passed|Failed)! +- +Failed: +[0-9]+, +Passed: +[0-9]+' "$out" | tail -n 1 || true)
  if [ -z "$summary" ]; then
    echo "$name: no test summary (exit code $rc); see $out" >&2
    tail -n 30 "$out" >&2
    failed=$((failed + 1))
    status=1
    continue
  fi
  echo "$summary"
  p=$(sed -E 's/.*Passed: +([0-9]+).*/\1/' <<<"$summary")
  f=$(sed -E 's/.*Failed: +([0-9]+), +Passed.*/\1/' <<<"$summary")
  s=$(sed -E 's/.*Skipped: +([0-9]+).*/\1/' <<<"$summary")
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + s))
  [ "$rc" -ne 0 ] && status=1
done

# --- Coverage-guided fuzz smoke: afl++ on two pre-authentication parsers (scripts/fuzz-smoke.sh; docs/fuzzing.md) ---
if [ -z "${GATEHOUSE_TEST_FILTER:-}" ]; then
  log "Coverage-guided fuzz smoke (afl++)"; scripts/fuzz-smoke.sh || status=1
fi

# --- The Debian package: built, installed, started as the gatehouse user, purged (scripts/package.sh, package-test.sh) ---
if [ -z "${GATEHOUSE_TEST_FILTER:-}" ]; then
  log "Debian package (scripts/package.sh, scripts/package-test.sh)"
  if [ "$(id -u)" -ne 0 ]; then
    echo "SKIPPED: the package test installs a .deb and creates the gatehouse user, so it needs root; run scripts/test.sh as root (CI does)."
  elif ! scripts/package.sh >"$results/package.log" 2>&1 || [ ! -f "$(tail -n 1 "$results/package.log")" ]; then
    tail -n 30 "$results/package.log" >&2
    echo "scripts/package.sh failed: the Debian package was not built (log: $results/package.log)." >&2
    status=1
  else
    grep '^== Built' "$results/package.log" || true
    scripts/package-test.sh "$(tail -n 1 "$results/package.log")" || status=1
  fi
fi

# --- Coverage of the protocol library -------------------------------------------------------------------------
coverage_file=$(find "$results/Gatehouse.Protocol.Tests" -name 'coverage.cobertura.xml' 2>/dev/null | head -n 1 || true)
if [ -n "$coverage_file" ]; then
  rate=$(grep -oE '<package name="Gatehouse.Protocol" line-rate="[0-9.]+"' "$coverage_file" | sed -E 's/.*line-rate="([0-9.]+)"/\1/' || true)
  if [ -n "$rate" ]; then
    percent=$(awk -v r="$rate" 'BEGIN { printf "%.1f", r * 100 }')
    log "Gatehouse.Protocol line coverage: $percent % (bar: $coverage_min %)"
    if awk -v p="$percent" -v m="$coverage_min" 'BEGIN { exit !(p < m) }'; then
      echo "Line coverage of Gatehouse.Protocol is below $coverage_min %: add tests for the uncovered lines (report: $coverage_file)." >&2
      status=1
    fi
  fi
elif [ -z "${GATEHOUSE_TEST_FILTER:-}" ]; then
  echo "No coverage report for Gatehouse.Protocol.Tests was produced." >&2
  status=1
fi

echo
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]

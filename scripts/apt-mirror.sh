#!/usr/bin/env bash
# Prints the package mirror this machine's apt already uses for Debian bookworm main: "URI KEYRING" on one line (the
# keyring is the source's Signed-By file, or Debian's archive keyring when it names none). The mirror is the
# administrator's choice, so scripts/test.sh adds bookworm-backports from the same one rather than naming a host.
#
# Usage: scripts/apt-mirror.sh [SOURCE-FILE...]
#   default: /etc/apt/sources.list, /etc/apt/sources.list.d/*.list and /etc/apt/sources.list.d/*.sources
#   (one-line "deb [options] URI SUITE COMPONENT..." entries and deb822 stanzas; disabled stanzas are skipped).
# Exit status 1, with nothing printed, when no enabled source serves bookworm main.
set -euo pipefail

suite=${GATEHOUSE_APT_SUITE:-bookworm}
default_keyring=/usr/share/keyrings/debian-archive-keyring.gpg

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  shopt -s nullglob
  files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
fi

readable=()
for f in "${files[@]}"; do
  [ -r "$f" ] && readable+=("$f")
done
[ ${#readable[@]} -gt 0 ] || exit 1

awk -v suite="$suite" -v default_keyring="$default_keyring" '
  function has(list, word,    n, i, parts) {
    n = split(list, parts, /[ \t]+/)
    for (i = 1; i <= n; i++) if (parts[i] == word) return 1
    return 0
  }
  function answer(uri, keyring) {
    if (keyring !~ /^\//) keyring = default_keyring
    print uri " " keyring
    found = 1
    exit
  }
  # deb822: a stanza ends at a blank line or at the end of its file.
  function stanza_end() {
    if (uris != "" && has(types, "deb") && has(suites, suite) && has(components, "main") && tolower(enabled) != "no") {
      split(uris, u, /[ \t]+/)
      answer(u[1], signed)
    }
    uris = types = suites = components = enabled = signed = ""
  }
  function value(line) { sub(/^[^:]*:[ \t]*/, "", line); sub(/[ \t]+$/, "", line); return line }
  FNR == 1 && NR > 1 { stanza_end() }
  FILENAME ~ /\.sources$/ {
    if ($0 ~ /^[ \t]*$/) { stanza_end(); next }
    if ($0 ~ /^[ \t]*#/ || $0 ~ /^[ \t]/) next
    field = tolower($1)
    if (field == "types:") types = value($0)
    else if (field == "uris:") uris = value($0)
    else if (field == "suites:") suites = value($0)
    else if (field == "components:") components = value($0)
    else if (field == "enabled:") enabled = value($0)
    else if (field == "signed-by:") signed = value($0)
    next
  }
  $1 == "deb" {
    i = 2; keyring = ""
    if ($2 ~ /^\[/) {
      # Options: [arch=amd64 signed-by=/path] (possibly split over several fields).
      for (; i <= NF; i++) {
        option = $i; gsub(/[\[\]]/, "", option)
        if (option ~ /^signed-by=/) { keyring = option; sub(/^signed-by=/, "", keyring) }
        if ($i ~ /\]$/) { i++; break }
      }
    }
    if ($(i + 1) == suite) for (j = i + 2; j <= NF; j++) if ($j == "main") answer($i, keyring)
  }
  END { if (!found) stanza_end(); if (!found) exit 1 }
' "${readable[@]}"

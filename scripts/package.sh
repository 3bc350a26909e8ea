#!/usr/bin/env bash
# Builds the Gatehouse Debian package: gatehouse_<version>_amd64.deb.
#
#   scripts/package.sh [--output DIR]      (default DIR: artifacts/package)
#
# A self-contained `dotnet publish` of src/Gatehouse for linux-x64 (no .NET runtime needed on the target) goes to
# /usr/lib/gatehouse, with /usr/bin/gatehouse a symlink to it; /etc/gatehouse/appsettings.json (a conffile), the
# systemd units of packaging/systemd, and the maintainer scripts of packaging/debian. The version is the project's
# <Version> in Directory.Build.props (checked against the published program's `gatehouse --version`, which adds
# +commit); GATEHOUSE_PACKAGE_VERSION overrides it.
# Prints the path of the .deb on its last line.
set -Eeuo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
output="$root/artifacts/package"
while [ $# -gt 0 ]; do
  case "$1" in
    --output) output=${2:?--output needs a directory}; shift 2 ;;
    --output=*) output=${1#--output=}; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "scripts/package.sh: unknown argument $1 (usage: scripts/package.sh [--output DIR])" >&2; exit 2 ;;
  esac
done
for tool in dotnet dpkg-deb; do
  command -v "$tool" >/dev/null 2>&1 || { echo "scripts/package.sh: $tool is not on PATH." >&2; exit 1; }
done
mkdir -p "$output"
output=$(cd "$output" && pwd)

work=$(mktemp -d /tmp/gatehouse-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
publish="$work/publish"
tree="$work/root"

echo "== Publishing src/Gatehouse (Release, linux-x64, self-contained)"
# SatelliteResourceLanguages=en leaves out the translated resources of the libraries (the product speaks English).
dotnet publish src/Gatehouse -c Release -r linux-x64 --self-contained -nologo -v quiet \
  -p:SatelliteResourceLanguages=en -o "$publish" </dev/null
# The XML documentation files are for the IDE, not the program.
find "$publish" -maxdepth 1 -name '*.xml' -delete

# The version is <Version> in Directory.Build.props; the published program must say the same (it was built from it).
project_version=$(sed -n 's|^[[:space:]]*<Version>\([^<]*\)</Version>.*|\1|p' Directory.Build.props | head -n 1)
program_version=$("$publish/gatehouse" --version </dev/null | head -n 1)
program_version=${program_version%%+*}
if [ -z "$project_version" ] || [ "$program_version" != "$project_version" ]; then
  echo "scripts/package.sh: Directory.Build.props says version '$project_version' but the published gatehouse --version says '$program_version'." >&2
  exit 1
fi
version=${GATEHOUSE_PACKAGE_VERSION:-$project_version}
if ! [[ "$version" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]]; then
  echo "scripts/package.sh: '$version' is not a Debian version; set GATEHOUSE_PACKAGE_VERSION." >&2
  exit 1
fi

echo "== Assembling the package tree (version $version)"
install -d -m 0755 "$tree/DEBIAN" "$tree/usr/lib" "$tree/usr/bin" "$tree/etc/gatehouse" "$tree/lib/systemd/system" \
  "$tree/usr/share/doc/gatehouse"
cp -a "$publish" "$tree/usr/lib/gatehouse"
chmod -R u=rwX,go=rX "$tree/usr/lib/gatehouse"
chmod 0755 "$tree/usr/lib/gatehouse/gatehouse"
ln -s ../lib/gatehouse/gatehouse "$tree/usr/bin/gatehouse"
install -m 0644 packaging/etc/appsettings.json "$tree/etc/gatehouse/appsettings.json"
# Every unit of packaging/systemd (gatehouse.service, and gatehouse-agent.service where the host agent exists). A unit
# written for a hand installation in /usr/local/bin runs the packaged /usr/bin/gatehouse instead.
for unit in packaging/systemd/*.service; do
  sed 's#/usr/local/bin/gatehouse\b#/usr/bin/gatehouse#g' "$unit" >"$tree/lib/systemd/system/$(basename "$unit")"
  chmod 0644 "$tree/lib/systemd/system/$(basename "$unit")"
done
install -m 0644 README.md "$tree/usr/share/doc/gatehouse/README.md"
for script in preinst postinst prerm postrm; do
  install -m 0755 "packaging/debian/$script" "$tree/DEBIAN/$script"
done
echo /etc/gatehouse/appsettings.json >"$tree/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$tree" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" packaging/debian/control.in >"$tree/DEBIAN/control"

deb="$output/gatehouse_${version}_amd64.deb"
echo "== Building $deb"
dpkg-deb --build --root-owner-group -Zxz "$tree" "$deb" >/dev/null

if command -v lintian >/dev/null 2>&1; then
  echo "== lintian"
  lintian --no-tag-display-limit "$deb" || true
fi
echo "== Built $(basename "$deb") ($(du -h "$deb" | cut -f1))"
echo "$deb"

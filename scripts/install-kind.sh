#!/usr/bin/env bash
# Fetches Debian's `kind` package and unpacks its binary into a cache folder, without touching the
# system's apt configuration: apt runs against a temporary sources list, lists and cache, and the
# .deb is unpacked with `dpkg -x` (not installed). Prints the binary's path as the last stdout line.
#
#   scripts/install-kind.sh            # -> ${CHAOS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chaos}/kind/usr/bin/kind
#   KIND_SUITES="sid" scripts/install-kind.sh
#
# Idempotent: if the cached binary exists and runs, nothing is downloaded.
set -euo pipefail

# The runtime looks in the same place (chaos-runtime/src/dirs.rs).
cache_dir="${CHAOS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chaos}/kind"
kind_bin="$cache_dir/usr/bin/kind"
# trixie and sid both listed: apt picks the newest `kind` either has.
suites="${KIND_SUITES:-trixie sid}"
. "$(dirname "$0")/lib/debian-mirror.sh"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

log() { echo "install-kind: $*" >&2; }

if [ -x "$kind_bin" ] && "$kind_bin" version >/dev/null 2>&1; then
    echo "$kind_bin"
    exit 0
fi

for tool in apt-get dpkg; do
    command -v "$tool" >/dev/null || { log "needs $tool (a Debian-based system); or put kind on PATH yourself"; exit 1; }
done
[ -r "$keyring" ] || { log "missing $keyring: apt-get install debian-archive-keyring"; exit 1; }

# The machine's own Debian mirror (its apt sources), or $DEBIAN_MIRROR.
mirror=$(debian_mirror)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/etc" "$work/deb" "$work/root"
for suite in $suites; do
    echo "deb [signed-by=$keyring] $mirror $suite main"
done >"$work/etc/sources.list"

# Everything apt reads or writes is redirected into $work; /etc/apt/apt.conf.d (proxies) still applies.
apt_opts=(
    -o "Dir::Etc::sourcelist=$work/etc/sources.list"
    -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$work/lists"
    -o "Dir::Cache=$work/cache"
    -o "Dir::State::status=/var/lib/dpkg/status"
    -o "Debug::NoLocking=1"
    -o "APT::Sandbox::User=root"
)
log "fetching package lists for: $suites"
apt-get "${apt_opts[@]}" -qq update >&2
log "downloading $(apt-cache "${apt_opts[@]}" policy kind | awk '/Candidate:/ { print "kind " $2 }')"
(cd "$work/deb" && apt-get "${apt_opts[@]}" -qq download kind >&2)
dpkg -x "$work"/deb/kind_*.deb "$work/root"
"$work/root/usr/bin/kind" version >&2

# Replace the cache in one step so a concurrent caller never sees half a tree.
mkdir -p "$(dirname "$cache_dir")"
rm -rf "$cache_dir.old"
[ -e "$cache_dir" ] && mv "$cache_dir" "$cache_dir.old"
mv "$work/root" "$cache_dir"
rm -rf "$cache_dir.old"
echo "$kind_bin"

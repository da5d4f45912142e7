#!/usr/bin/env bash
# Builds `chaos-node:bookworm` (or the name given as $1): a local image shaped like a kind node, for
# testing Docker-level node faults on machines that cannot pull kindest/node. It has what the faults
# use inside a node (iptables, iproute2's tc and ip, procps, ping, kmod's modprobe) and a stand-in
# for systemd:
#
# * real kind nodes run systemd as PID 1 (entrypoint `/usr/local/bin/entrypoint /sbin/init`,
#   STOPSIGNAL SIGRTMIN+3), and `systemctl stop kubelet` stops a real kubelet;
# * here PID 1 is a small bash loop that reaps orphans and exits on SIGRTMIN+3, and
#   `/usr/bin/systemctl` is a stub that runs a fake kubelet (`/usr/local/bin/kubelet`, a symlink to
#   sleep, so `ps` and `pgrep kubelet` see a kubelet). kubelet stop/start are thus real process
#   changes inside the container.
#
# Cached: does nothing if the image exists. Installs debootstrap with apt-get if it is missing.
# Takes about 35 s on a fresh 2-core machine (debootstrap downloads ~40 MB).
set -euo pipefail

image="${1:-chaos-node:bookworm}"
suite=bookworm
. "$(dirname "$0")/lib/debian-mirror.sh"

log() { echo "build-node-image: $*" >&2; }

# Bumped whenever what goes into the image changes, so a cached older image is rebuilt.
revision=2 # 2: ca-certificates (kube-rs with rustls loads the system's roots)
if [ "$(docker image inspect --format '{{index .Config.Labels "io.chaos.node-image.revision"}}' "$image" 2>/dev/null)" = "$revision" ]; then
    log "$image exists"
    exit 0
fi
if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    apt-get install -y -qq debootstrap >&2 || { apt-get update -qq >&2 && apt-get install -y -qq debootstrap >&2; }
fi

# The machine's own Debian mirror (its apt sources), or $DEBIAN_MIRROR.
mirror=$(debian_mirror)
start=$(date +%s)
root=$(mktemp -d /var/tmp/chaos-node.XXXXXX)
trap 'rm -rf "$root" "$root.build.log"' EXIT

log "debootstrap $suite into $root"
debootstrap --variant=minbase --include=iptables,iproute2,procps,iputils-ping,kmod,ca-certificates \
    "$suite" "$root" "$mirror" >&2

# PID 1: starts the kubelet as systemd would at boot, then waits. Bash as PID 1 gets no default
# signal handlers, so the stop signal is trapped explicitly; `wait` keeps reaping adopted orphans.
cat >"$root/usr/local/bin/entrypoint" <<'EOF'
#!/bin/bash
# Stand-in for kind's entrypoint + systemd (see scripts/build-node-image.sh).
trap 'systemctl stop kubelet; exit 0' RTMIN+3 TERM INT
systemctl start kubelet
while :; do
    sleep infinity &
    wait $!
done
EOF

# A stub systemctl: only what the chaos framework calls. Real kind nodes have systemd.
cat >"$root/usr/bin/systemctl" <<'EOF'
#!/bin/bash
# Stub systemctl for chaos-node images (real kind nodes run systemd): start|stop|restart|is-active
# UNIT, where UNIT is backed by /usr/local/bin/UNIT (a symlink to sleep) run as `UNIT infinity`.
set -u
usage() { echo "usage: systemctl start|stop|restart|is-active UNIT" >&2; exit 2; }
[ $# -eq 2 ] || usage
unit=${2%.service}
program=/usr/local/bin/$unit
pidfile=/run/$unit.pid
[ -x "$program" ] || { echo "Unit $unit.service not found." >&2; exit 5; }

# True if the unit's process exists, has become the unit (not still setsid) and is not a zombie.
running() {
    local pid stat
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $stat == *"($unit) "[^Z]* ]]
}

stopped() { ! running; }

wait_until() {
    for _ in $(seq 50); do "$1" && return 0; sleep 0.1; done
    return 1
}

start() {
    running && return 0
    setsid "$program" infinity </dev/null >/dev/null 2>&1 &
    echo $! >"$pidfile"
    wait_until running || { echo "Job for $unit.service failed." >&2; exit 1; }
}

stop() {
    local pid
    pid=$(cat "$pidfile" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null
    wait_until stopped || { echo "Job for $unit.service did not stop." >&2; exit 1; }
    rm -f "$pidfile"
}

case "$1" in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    is-active)
        if running; then echo active; else echo inactive; exit 3; fi ;;
    *) usage ;;
esac
EOF
ln -s /bin/sleep "$root/usr/local/bin/kubelet"
chmod +x "$root/usr/local/bin/entrypoint" "$root/usr/bin/systemctl"

# Keep the image small: apt's downloaded packages and lists are not needed at runtime.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

# `docker import --change` cannot set STOPSIGNAL on older daemons (20.10), so the rootfs is imported
# under a temporary tag and a one-line build adds kind's stop signal. The legacy builder is the
# fallback where the buildx plugin is missing; both use the local base image, nothing is pulled.
rootfs="$image-rootfs"
log "importing as $image"
tar -C "$root" -c . | docker import --change 'ENTRYPOINT ["/usr/local/bin/entrypoint"]' - "$rootfs" >/dev/null
dockerfile=$(printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\nLABEL io.chaos.node-image.revision=%s\n' "$rootfs" "$revision")
if ! docker buildx version >/dev/null 2>&1; then
    export DOCKER_BUILDKIT=0
fi
# Quiet unless it fails (the legacy builder prints a deprecation notice on every run).
if ! docker build -q -t "$image" - <<<"$dockerfile" >"$root.build.log" 2>&1; then
    cat "$root.build.log" >&2
    exit 1
fi
docker rmi "$rootfs" >/dev/null
log "built $image in $(($(date +%s) - start)) s"

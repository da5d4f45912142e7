#!/usr/bin/env bash
# Builds the stand-in images that let the real kind binary create clusters where `kindest/node`
# cannot be pulled (CHAOS_KIND_STANDIN=1; chaos-runtime/src/provider/kind/standin.rs):
#
# * `chaos-standin-node:base`: the kind-shaped `chaos-node:bookworm` (scripts/build-node-image.sh,
#   Debian packages only) with `chaos-node-agent` (crate chaos-standin) as PID 1, systemctl,
#   kubeadm, kubectl, kubelet and kube-apiserver, and the manifests kind applies. The runtime tags
#   one image per Kubernetes version from it (`/kind/version`).
# * `docker.io/envoyproxy/envoy:v1.36.2`: the HA load balancer. kind v0.33 runs exactly that image
#   (kind pkg/cluster/internal/loadbalancer/const.go) and cannot be told another, so the stand-in
#   carries its name, with `chaos-node-agent` as `envoy`. A real envoy image of that name is never
#   overwritten: kind can use it as it is.
#
#   scripts/build-standin-images.sh [path/to/chaos-node-agent]
#
# Without a path, builds the agent with cargo (`$CARGO_TARGET_DIR`, default target/). Cached: an
# image is rebuilt only when the agent binary, its manifests, the base image or this script
# changed (label io.chaos.standin.hash).
set -euo pipefail
cd "$(dirname "$0")/.."

node_image=chaos-standin-node:base
lb_image=docker.io/envoyproxy/envoy:v1.36.2
label=io.chaos.standin

log() { echo "build-standin-images: $*" >&2; }

scripts/build-node-image.sh >&2

agent="${1:-}"
if [ -z "$agent" ]; then
    log "building chaos-node-agent"
    cargo build -q -p chaos-standin --bin chaos-node-agent >&2
    agent="${CARGO_TARGET_DIR:-target}/debug/chaos-node-agent"
fi
[ -x "$agent" ] || { log "$agent is not an executable; build it with: cargo build -p chaos-standin"; exit 1; }

hash=$({ cat "$agent" "$0" chaos-standin/image/*; docker image inspect --format '{{.Id}}' chaos-node:bookworm; } | sha256sum | cut -c1-16)

# The value of our label on an image, empty if the image or the label is missing.
label_of() {
    docker image inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null | grep -v '^<no value>$' || true
}

# build TAG KIND DOCKERFILE: builds in a context holding the agent and the manifests.
build() {
    local tag=$1 kind=$2 dockerfile=$3 context
    if [ "$(label_of "$tag" "$label.hash")" = "$hash" ]; then
        log "$tag is up to date"
        return 0
    fi
    context=$(mktemp -d /var/tmp/chaos-standin.XXXXXX)
    trap 'rm -rf "$context"' RETURN
    cp "$agent" "$context/chaos-node-agent"
    # A debug build carries ~100 MB of debug info that no node needs.
    strip --strip-debug "$context/chaos-node-agent" 2>/dev/null || true
    cp chaos-standin/image/* "$context/"
    printf '%s\nLABEL %s=%s %s.hash=%s\n' "$dockerfile" "$label" "$kind" "$label" "$hash" >"$context/Dockerfile"
    if ! docker buildx version >/dev/null 2>&1; then
        export DOCKER_BUILDKIT=0
    fi
    log "building $tag"
    if ! docker build -q -t "$tag" "$context" >"$context/build.log" 2>&1; then
        cat "$context/build.log" >&2
        exit 1
    fi
}

start=$(date +%s)

# The node: the agent replaces build-node-image.sh's bash PID 1, systemctl stub and fake kubelet.
build "$node_image" node "$(cat <<'EOF'
FROM chaos-node:bookworm
COPY chaos-node-agent /usr/local/bin/chaos-node-agent
COPY default-cni.yaml default-storage.yaml /kind/manifests/
RUN set -e; rm -f /usr/local/bin/entrypoint /usr/local/bin/kubelet /usr/bin/systemctl; \
    for link in /usr/local/bin/entrypoint /usr/bin/systemctl /usr/bin/kubeadm /usr/bin/kubectl \
                /usr/local/bin/kubelet /usr/local/bin/kube-apiserver /usr/bin/journalctl /usr/bin/crictl; do \
        ln -s /usr/local/bin/chaos-node-agent "$link"; \
    done; \
    echo v0.0.0-standin-base > /kind/version
ENTRYPOINT ["/usr/local/bin/entrypoint"]
STOPSIGNAL SIGRTMIN+3
EOF
)"

# The load balancer: kind gives the whole command (bash -c '... envoy -c ...': kind
# pkg/cluster/internal/loadbalancer/config.go GenerateBootstrapCommand), so no entrypoint.
if docker image inspect "$lb_image" >/dev/null 2>&1 && [ -z "$(label_of "$lb_image" "$label")" ]; then
    log "$lb_image is a real envoy image: kind uses it as it is"
else
    build "$lb_image" load-balancer "$(cat <<'EOF'
FROM chaos-node:bookworm
COPY chaos-node-agent /usr/local/bin/chaos-node-agent
RUN ln -s /usr/local/bin/chaos-node-agent /usr/local/bin/envoy
ENTRYPOINT []
STOPSIGNAL SIGTERM
EOF
)"
fi
# Earlier builds of these tags, now untagged.
docker image prune -f --filter "label=$label" >/dev/null
log "done in $(($(date +%s) - start)) s"

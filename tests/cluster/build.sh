#!/usr/bin/env bash
# Builds (once) the binaries of the local control plane and caches them by version
# outside the checkout, so that only the first run on a machine pays for the build:
#   ${MTLS_CACHE_DIR:-$HOME/.cache/zerotrust-mtls}/bin/kubernetes-<v>/{kube-apiserver,kube-controller-manager,kube-scheduler}
#   ${MTLS_CACHE_DIR:-$HOME/.cache/zerotrust-mtls}/bin/kwok-<v>/kwok
# etcd comes from Debian (etcd-server) because etcd cannot be `go install`ed.
# Prints nothing but progress on stderr; `build.sh --print-bin-dirs` prints the two dirs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/cluster/lib.sh
source "$here/lib.sh"

# Only a build needs Go; with the binaries cached, a machine without Go can run the cluster.
require_go() {
    command -v go >/dev/null 2>&1 \
        || die "no Go toolchain on PATH and no cached binaries in $MTLS_CACHE_DIR/bin; install Go 1.26 or newer (https://go.dev/dl/) and rerun."
}

# A build goes into a temporary sibling of its version directory that publish_build
# renames into place, so an interrupted build never leaves a half-filled version
# directory that later runs would trust. Sets the caller's log_file and staging_dir.
begin_build() {
    local what="$1"
    require_go
    log_file="$MTLS_CACHE_DIR/logs/build-$what.log"
    mkdir -p "$(dirname "$log_file")" "$MTLS_CACHE_DIR/bin"
    staging_dir="$(mktemp -d "$MTLS_CACHE_DIR/bin/.$what.XXXXXX")"
}

publish_build() {
    local out_dir="$1"
    rm -rf "$out_dir"
    mv "$staging_dir" "$out_dir"
    chmod 0755 "$out_dir"
}

build_kubernetes() {
    local out_dir="$KUBE_BIN_DIR"
    if [[ -x "$out_dir/kube-apiserver" && -x "$out_dir/kube-controller-manager" && -x "$out_dir/kube-scheduler" ]]; then
        log "kubernetes $KUBE_VERSION binaries are cached in $out_dir"
        return 0
    fi
    local log_file staging_dir
    begin_build "kubernetes-$KUBE_VERSION"
    local major minor
    major="${KUBE_VERSION#v}"; major="${major%%.*}"
    minor="${KUBE_VERSION#v*.}"; minor="${minor%%.*}"
    # Stamp the release into the binaries: without it they report v0.0.0-master and
    # clients that check the server version (kubectl, kubernetes.core) would warn.
    local version_flags=""
    local pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        version_flags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
        version_flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    log "building kube-apiserver, kube-controller-manager, kube-scheduler $KUBE_VERSION (first run only: 6-16 min on 2 cores; log: $log_file)"
    local started=$SECONDS
    # -p 2: at most two compile/link jobs at once; a kube-apiserver link alone peaks
    # around 1.6 GB, so more parallelism buys little on 2 cores and risks the OOM killer.
    if ! (cd "$here/k8s" && CGO_ENABLED=0 GOFLAGS=-mod=readonly \
            go build -p "${MTLS_BUILD_JOBS:-2}" -trimpath -ldflags "-s -w$version_flags" \
            -o "$staging_dir/" ./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/kube-scheduler) \
            >"$log_file" 2>&1; then
        rm -rf "$staging_dir"
        die "building the Kubernetes $KUBE_VERSION binaries failed; read $log_file (a network-free rerun needs the Go module cache; 'go env GOPROXY' must reach a module proxy)."
    fi
    publish_build "$out_dir"
    log "built kubernetes $KUBE_VERSION in $((SECONDS - started)) s"
}

build_kwok() {
    local out_dir="$KWOK_BIN_DIR"
    if [[ -x "$out_dir/kwok" && -s "$out_dir/stages.yaml" ]]; then
        log "kwok $KWOK_VERSION is cached in $out_dir"
        return 0
    fi
    local log_file staging_dir
    begin_build "kwok-$KWOK_VERSION"
    log "installing kwok $KWOK_VERSION (log: $log_file)"
    local started=$SECONDS
    if ! CGO_ENABLED=0 GOBIN="$staging_dir" go install -p "${MTLS_BUILD_JOBS:-2}" -trimpath -ldflags "-s -w" \
            "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >"$log_file" 2>&1; then
        rm -rf "$staging_dir"
        die "installing kwok $KWOK_VERSION failed; read $log_file."
    fi
    # Run standalone, kwok needs Stage objects that say how fake nodes and pods move
    # through their lifecycle; take kwokctl's own "fast" stages from the same release.
    local stage_dir
    stage_dir="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
    local stage_file
    for stage_file in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
            pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
        [[ -f "$stage_dir/$stage_file" ]] || { rm -rf "$staging_dir"; die "kwok stage $stage_file is missing from $stage_dir; run 'go clean -modcache' and rerun."; }
        printf -- '---\n' >>"$staging_dir/stages.yaml"
        cat "$stage_dir/$stage_file" >>"$staging_dir/stages.yaml"
    done
    publish_build "$out_dir"
    log "installed kwok $KWOK_VERSION in $((SECONDS - started)) s"
}

ensure_etcd() {
    if command -v etcd >/dev/null 2>&1; then
        return 0
    fi
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        die "etcd is not installed; install Debian's etcd-server package (sudo apt-get install -y etcd-server) or put an etcd 3.4+ binary on PATH, then rerun."
    fi
    local log_file="$MTLS_CACHE_DIR/logs/apt-etcd-server.log"
    mkdir -p "$(dirname "$log_file")"
    log "installing etcd-server from Debian (log: $log_file)"
    # An install fails on a machine whose package lists were never fetched; update once then.
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server >"$log_file" 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update >>"$log_file" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server >>"$log_file" 2>&1 \
            || die "installing etcd-server with apt-get failed; read $log_file."
    fi
    # Debian's package enables an etcd service on 2379; ours runs on its own ports, but a
    # second etcd nobody asked for wastes memory, so stop it where systemd manages it.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
        systemctl disable --now etcd >>"$log_file" 2>&1 || true
    fi
    command -v etcd >/dev/null 2>&1 || die "etcd-server was installed but no etcd is on PATH; check $log_file."
}

main() {
    if [[ "${1:-}" == "--print-bin-dirs" ]]; then
        printf '%s\n%s\n' "$KUBE_BIN_DIR" "$KWOK_BIN_DIR"
        return 0
    fi
    ensure_etcd
    build_kubernetes
    build_kwok
}

main "$@"

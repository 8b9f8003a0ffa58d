#!/usr/bin/env bash
# Stops the local control plane processes that up.sh started (by their saved PIDs,
# newest first) and nothing else. `down.sh --purge` also deletes the cluster state
# (etcd data, certificates, kubeconfig, logs); cached binaries are kept.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/cluster/lib.sh
source "$here/lib.sh"

main() {
    local purge=false
    case "${1:-}" in
        "") ;;
        --purge) purge=true ;;
        *) die "unknown argument '$1'; use 'down.sh' to stop the cluster or 'down.sh --purge' to also delete its state." ;;
    esac
    if [[ -d "$CLUSTER_DIR/run" ]]; then
        lock_cluster_dir
    fi
    local i
    for (( i=${#COMPONENTS[@]}-1; i>=0; i-- )); do
        stop_component "${COMPONENTS[$i]}"
    done
    if $purge && [[ -d "$CLUSTER_DIR" ]]; then
        # Refuse to delete anything that does not look like a cluster state directory,
        # in case MTLS_CLUSTER_DIR points somewhere unexpected.
        if [[ ! -d "$CLUSTER_DIR/run" && ! -f "$CLUSTER_DIR/ports.env" ]]; then
            die "$CLUSTER_DIR does not look like a local cluster state directory (no run/ or ports.env); delete it by hand if you are sure."
        fi
        rm -rf "$CLUSTER_DIR"
        log "removed $CLUSTER_DIR"
    fi
}

main "$@"
exit 0

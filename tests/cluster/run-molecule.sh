#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions run indirectly (by trap or wait_until) look unreachable
# Runs the molecule scenario `local` (molecule/local) against the local control plane.
# Starts the cluster when it is not running, and stops it again afterwards in that
# case only, so a cluster someone else started keeps running.
# Usage: tests/cluster/run-molecule.sh [molecule test options, e.g. --destroy=never]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/cluster/lib.sh
source "$here/lib.sh"
cd "$CHECKOUT_DIR"

venv="${MTLS_VENV:-$CHECKOUT_DIR/.venv}"
[[ -x "$venv/bin/molecule" ]] || die "molecule is not installed in $venv; run 'make deps' (or set MTLS_VENV), then rerun."
export PATH="$venv/bin:$PATH"

# molecule 26 looks for scenarios in extensions/molecule/ inside a collection unless a
# top-level molecule/ directory exists; say which one explicitly so that never changes.
export MOLECULE_GLOB="molecule/*/molecule.yml"
export MTLS_KUBECONFIG="${MTLS_KUBECONFIG:-$CLUSTER_DIR/kubeconfig}"

# playbooks find zerotrust.mtls through .build/collections (see ansible.cfg).
if [[ -x "$CHECKOUT_DIR/scripts/collection-link.sh" ]]; then
    "$CHECKOUT_DIR/scripts/collection-link.sh"
else
    mkdir -p "$CHECKOUT_DIR/.build/collections/ansible_collections/zerotrust"
    ln -sfn "$CHECKOUT_DIR" "$CHECKOUT_DIR/.build/collections/ansible_collections/zerotrust/mtls"
fi

started_cluster=false
if ! "$here/status.sh" >/dev/null 2>&1; then
    "$here/up.sh" >/dev/null
    started_cluster=true
fi
stop_started_cluster() {
    if $started_cluster; then
        "$here/down.sh"
    fi
}
trap stop_started_cluster EXIT

molecule test -s local "$@"

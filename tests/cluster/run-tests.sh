#!/usr/bin/env bash
# Runs the tests of the local control plane itself against the running cluster.
# Usage: tests/cluster/run-tests.sh [pytest options]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/cluster/lib.sh
source "$here/lib.sh"

venv="${MTLS_VENV:-$CHECKOUT_DIR/.venv}"
export MTLS_KUBECONFIG="${MTLS_KUBECONFIG:-$CLUSTER_DIR/kubeconfig}"
"$here/status.sh" >/dev/null || die "the local cluster is not running; start it with tests/cluster/up.sh, then rerun."
exec "$venv/bin/python" -m pytest -v "$here/tests" "$@"

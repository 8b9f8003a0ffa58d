#!/usr/bin/env bash
# Runs the exporter's tests: unit, HTTP, packaging (pip install into a fresh venv),
# promtool rule tests (builds promtool once, cached outside the repo), role rendering,
# and the end-to-end tests against the local control plane. Cluster tests skip only
# when no kubeconfig file exists; set MTLS_KUBECONFIG to point at another one.
# Extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
export MTLS_KUBECONFIG="${MTLS_KUBECONFIG:-$repo/.cluster/kubeconfig}"
cd "$here"
exec "$repo/.venv/bin/python" -m pytest -p no:cacheprovider tests "$@"

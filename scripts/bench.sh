#!/usr/bin/env bash
# Every benchmark, each printing its figures and the ratios against the reference
# tools run side by side (`make bench`). The cluster benchmarks start (or reuse) the
# local control plane. Figures and the commands behind them: docs/performance.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
"$root/scripts/install-deps.sh"
export PATH="$root/.venv/bin:$PATH"
benchmarks/issue_certs/run.sh
MTLS_KUBECONFIG=$(tests/cluster/up.sh | tail -n 1)
export MTLS_KUBECONFIG
benchmarks/sync_secrets/run.sh
benchmarks/mesh_policy/run.sh
benchmarks/exporter/run.sh

# Sourced by the run.sh of the benchmarks that need a Kubernetes API (mesh_policy,
# sync_secrets): the checkout, the venv, a readable kubeconfig, the results file, and the
# collection linked where ansible.cfg finds it. Sets root, venv, MTLS_KUBECONFIG and
# BENCH_RESULTS (benchmarks/results/<name>.json); leaves the shell in the checkout.
# Usage: . "$(dirname "$0")/../cluster-bench.sh" <name>
bench_name="$1"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv="${MTLS_VENV:-$root/.venv}"
export MTLS_KUBECONFIG="${MTLS_KUBECONFIG:-$root/.cluster/kubeconfig}"
[ -r "$MTLS_KUBECONFIG" ] || { echo "$bench_name: kubeconfig $MTLS_KUBECONFIG is not readable; start the local control plane (tests/cluster/up.sh) or set MTLS_KUBECONFIG." >&2; exit 1; }
mkdir -p "$root/benchmarks/results"
export BENCH_RESULTS="$root/benchmarks/results/$bench_name.json"
"$root/scripts/collection-link.sh"

#!/usr/bin/env bash
# rotate_estate benchmark (issue 12): one playbooks/rotate_root_ca.yml run over an estate of
# two clusters (the local control plane and a second tests/cluster instance started and purged
# here), 1,000 client certificates and 200 workloads of a real istiod, against the 2-minute
# target and the floor measured in the same run. Needs the local control plane, the consumer
# binaries (tests/cluster/build-consumers.sh) and MTLS_CRDS_DIR as tests/cluster/up.sh does.
# Usage: benchmarks/rotate_estate/run.sh [--clients 1000] [--workloads 200] [--configmaps]
set -euo pipefail
. "$(dirname "$0")/../cluster-bench.sh" rotate_estate
exec "$venv/bin/python" "$root/benchmarks/rotate_estate/bench.py" --json "$BENCH_RESULTS" "$@"

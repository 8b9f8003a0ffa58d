#!/usr/bin/env bash
# mtls-exporter vs x509-certificate-exporter v4 on 10,000 TLS Secrets of the local
# control plane. Needs tests/cluster/up.sh to have run. Arguments go to bench_exporter.py
# (e.g. --count 2000 for a quick run; --count 100000 for the large-estate run: figures at
# 10,000 and 100,000, the growth between them, the targets, and a kube-apiserver restart
# under the running exporter). Figures also land in benchmarks/results/exporter.json.
# Another cluster: MTLS_KUBECONFIG=<dir>/kubeconfig MTLS_CLUSTER_DIR=<dir> (the restart
# needs the cluster directory of tests/cluster/up.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
exec "$repo/.venv/bin/python" "$here/bench_exporter.py" --json "$repo/benchmarks/results/exporter.json" "$@"

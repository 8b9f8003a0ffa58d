#!/usr/bin/env bash
# mtls-exporter vs x509-certificate-exporter v4 on 10,000 TLS Secrets of the local
# control plane. Needs tests/cluster/up.sh to have run. Arguments go to bench_exporter.py
# (e.g. --count 2000 for a quick run). Figures also land in benchmarks/results/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
exec "$repo/.venv/bin/python" "$here/bench_exporter.py" --json "$repo/benchmarks/results/exporter.json" "$@"

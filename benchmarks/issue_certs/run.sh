#!/usr/bin/env bash
# 1,000 EC P-256 client certificates: one zerotrust.mtls.mtls_cert batch call vs a bare
# cryptography loop (the floor) vs community.crypto (3 modules per cert, 20 certs).
# Needs no cluster. Arguments go to run.py (e.g. --cc-count 50, --strict).
# Figures also land in benchmarks/results/issue_certs.json.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
mkdir -p "$repo/benchmarks/results"
exec "$repo/.venv/bin/python" "$here/run.py" --json "$repo/benchmarks/results/issue_certs.json" "$@"

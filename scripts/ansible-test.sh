#!/usr/bin/env bash
# Runs ansible-test from a fresh copy of the collection: scripts/ansible-test.sh sanity ...
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="${MTLS_VENV:-$root/.venv}"
"$root/scripts/offline-get-pip.sh"
tree=$("$root/scripts/collection-tree.sh")
cd "$tree"
PATH="$venv/bin:$PATH" exec "$venv/bin/ansible-test" "$@"

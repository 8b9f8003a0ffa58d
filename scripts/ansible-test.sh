#!/usr/bin/env bash
# Runs ansible-test from a fresh copy of the collection: scripts/ansible-test.sh sanity ...
# The copy is removed afterwards unless MTLS_KEEP_BUILD=1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="${MTLS_VENV:-$root/.venv}"
"$root/scripts/offline-get-pip.sh"
tree=$("$root/scripts/collection-tree.sh")
build=${tree%/ansible_collections/zerotrust/mtls}
if [ "${MTLS_KEEP_BUILD:-0}" != 1 ] && [ -z "${MTLS_BUILD_DIR:-}" ]; then
  trap 'rm -rf "$build"' EXIT
fi
cd "$tree"
PATH="$venv/bin:$PATH" "$venv/bin/ansible-test" "$@"

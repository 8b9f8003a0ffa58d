#!/usr/bin/env bash
# Runs ansible-test from a fresh copy of the collection: scripts/ansible-test.sh sanity ...
# The copy is removed afterwards unless MTLS_KEEP_BUILD=1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="${MTLS_VENV:-$root/.venv}"
"$root/scripts/offline-get-pip.sh"
if [ "${1:-}" = sanity ]; then
  # Sanity checks the Ansible content (plugins, roles, playbooks, unit and integration
  # tests). The exporter is a standalone Python package with its own suite, and the
  # benchmarks and the cluster/rotation harnesses are programs, not collection content.
  export MTLS_TREE_EXCLUDE="exporter benchmarks tests/cluster tests/rotation tests/packaging tests/awx tests/estate"
fi
tree=$("$root/scripts/collection-tree.sh")
build=${tree%/ansible_collections/zerotrust/mtls}
if [ "${MTLS_KEEP_BUILD:-0}" != 1 ] && [ -z "${MTLS_BUILD_DIR:-}" ]; then
  trap 'rm -rf "$build"' EXIT
fi
cd "$tree"
PATH="$venv/bin:$PATH" "$venv/bin/ansible-test" "$@"

#!/usr/bin/env bash
# Copies the checkout into <build dir>/ansible_collections/zerotrust/mtls, the layout
# ansible-test insists on, and prints that directory. A copy (not a symlink) because
# ansible-test resolves its working directory. The copy lives OUTSIDE the checkout:
# inside it, ansible-test would ask the checkout's git for the file list, find the
# copy git-ignored, and skip every target. Each call gets its own build dir (unless
# MTLS_BUILD_DIR is set) so parallel runs do not delete each other's trees.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="${MTLS_BUILD_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/zerotrust-mtls-build.XXXXXX")}"
dest="$build/ansible_collections/zerotrust/mtls"
rm -rf "$dest"
mkdir -p "$dest"
# MTLS_TREE_EXCLUDE: extra paths to leave out (scripts/ansible-test.sh uses it for sanity).
extra=()
for p in ${MTLS_TREE_EXCLUDE:-}; do extra+=("--exclude=./$p"); done
tar -C "$root" "${extra[@]}" \
    --exclude=./.git --exclude=./.ansible --exclude=./.venv --exclude=./.build --exclude=./.cluster --exclude=./.pki \
    --exclude='__pycache__' --exclude='*.egg-info' --exclude=./tests/output \
    --exclude=./benchmarks/results \
    -cf - . | tar -C "$dest" -xf -
echo "$dest"

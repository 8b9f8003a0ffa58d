#!/usr/bin/env bash
# Copies the checkout into .build/ansible_collections/zerotrust/mtls, the layout
# ansible-test insists on, and prints that directory. A copy (not a symlink) because
# ansible-test resolves its working directory and refuses paths outside the tree.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.build/ansible_collections/zerotrust/mtls"
rm -rf "$dest"
mkdir -p "$dest"
tar -C "$root" \
    --exclude=./.git --exclude=./.venv --exclude=./.build --exclude=./.cluster \
    --exclude='__pycache__' --exclude=./tests/output --exclude=./benchmarks/results \
    -cf - . | tar -C "$dest" -xf -
# ansible-test wants a git-free tree or a git repo; give it the file list explicitly.
echo "$dest"

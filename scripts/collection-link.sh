#!/usr/bin/env bash
# Makes the checkout visible to ansible-playbook as zerotrust.mtls through the
# collections_path of ansible.cfg (.build/collections), without copying it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
link="$root/.build/collections/ansible_collections/zerotrust/mtls"
mkdir -p "$(dirname "$link")"
[ -L "$link" ] || ln -sfn "$root" "$link"

#!/usr/bin/env bash
# The main job on the embedded default: `make run`.
# With $KUBECONFIG set, it runs against that cluster; otherwise it starts (or reuses)
# the local control plane of tests/cluster and runs against it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv="${MTLS_VENV:-$root/.venv}"
"$root/scripts/install-deps.sh"
export PATH="$venv/bin:$PATH"
export ANSIBLE_CONFIG="$root/ansible.cfg"

if [ -z "${KUBECONFIG:-}" ]; then
  KUBECONFIG=$(tests/cluster/up.sh | tail -n 1)
  export KUBECONFIG
  echo "run: using the local control plane ($KUBECONFIG)"
else
  echo "run: using your cluster from KUBECONFIG=$KUBECONFIG"
fi
exec ansible-playbook -i inventories/local playbooks/site.yml -e "mtls_kubeconfig=$KUBECONFIG" "$@"

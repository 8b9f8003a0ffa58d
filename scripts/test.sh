#!/usr/bin/env bash
# The whole test suite, as a user and CI run it: `make test`.
# Installs what it needs, starts the local control plane (unless one is already up),
# runs sanity, unit, lint, integration, cluster, exporter and molecule tests against the
# real kube-apiserver, and stops the cluster again if it started it.
# Each step runs even when an earlier one failed, so one run shows every failure;
# the exit code is non-zero when any step failed.
# Run a subset with MTLS_TEST_STEPS="units integration" (names as printed below).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
venv="${MTLS_VENV:-$root/.venv}"

"$root/scripts/install-deps.sh" || { echo "test: installing the dependencies failed (see above)." >&2; exit 1; }
export PATH="$venv/bin:$PATH"
export ANSIBLE_CONFIG="$root/ansible.cfg"

cluster_dir="${MTLS_CLUSTER_DIR:-$root/.cluster}"
export MTLS_CLUSTER_DIR="$cluster_dir"
export MTLS_KUBECONFIG="$cluster_dir/kubeconfig"

passed=() failed=() timings=()
wanted() { [ -z "${MTLS_TEST_STEPS:-}" ] || [[ " $MTLS_TEST_STEPS " == *" $1 "* ]]; }
step() {
  local name=$1; shift
  wanted "$name" || return 0
  local start=$SECONDS
  echo "==> $name: $*"
  if "$@"; then
    echo "<== $name passed ($((SECONDS - start)) s)"; passed+=("$name")
    timings+=("$(printf '%-12s %6d s  passed' "$name" $((SECONDS - start)))")
  else
    echo "<== $name FAILED ($((SECONDS - start)) s)"; failed+=("$name")
    timings+=("$(printf '%-12s %6d s  FAILED' "$name" $((SECONDS - start)))")
  fi
}

started_cluster=""
stop_cluster() {
  if [ -n "$started_cluster" ]; then
    echo "==> stopping the local control plane this run started"
    # The consumers the pod runner started first (the cluster tests stop it themselves
    # when they started it; this catches an interrupted run).
    python tests/cluster/pod_runner.py down >/dev/null 2>&1 || true
    tests/cluster/down.sh || true
  fi
}
trap stop_cluster EXIT

cluster_up() {
  if ! tests/cluster/status.sh >/dev/null 2>&1; then
    started_cluster=yes
  fi
  tests/cluster/up.sh
}

integration() {
  # Two targets at a time, each worker in its own copy of the collection (see the script).
  python "$root/scripts/integration.py"
}

lint() {
  # The whole checkout, as configured in .ansible-lint (production profile).
  ansible-lint --nocolor
}

style() {
  # Settings in ruff.toml. Both checks run, so one run lists every finding;
  # `ruff format <paths>` and `ruff check --fix <paths>` repair most of them.
  local paths=(plugins exporter tests benchmarks scripts) rc=0
  ruff check --output-format concise "${paths[@]}" || rc=1
  ruff format --check "${paths[@]}" || rc=1
  return $rc
}

step sanity scripts/ansible-test.sh sanity --venv --python 3.11 --color no
step units scripts/ansible-test.sh units --python 3.11 --local --color no
step lint lint
step style style
# Every playbook matches hosts in every inventory; the exporter agrees with the layouts.
step estate python -m pytest -q -p no:cacheprovider tests/estate/test_list_hosts.py tests/estate/test_exporter_agreement.py
if [ -z "${MTLS_TEST_STEPS:-}" ] || wanted cluster-up || wanted integration || wanted cluster || wanted exporter || wanted packaging || wanted awx || wanted molecule || wanted molecule-kind || wanted rotation; then
  step cluster-up cluster_up
fi
step integration integration
# The real consumers (istiod, cert-manager, trust-manager, SPIRE) that the cluster tests
# run through tests/cluster/pod_runner.py; cached by version, so a warm run only checks.
step consumers-build tests/cluster/build-consumers.sh
step cluster python -m pytest -q tests/cluster/tests
step exporter python -m pytest -q exporter/tests
step packaging python -m pytest -q -p no:cacheprovider tests/packaging
# Every AWX job template of playbooks/awx_configure.yml run as AWX runs it (ansible-runner).
step awx python -m pytest -q -p no:cacheprovider tests/awx
step molecule tests/cluster/run-molecule.sh
# The kind scenario's prepare/converge/verify against the local control plane (no create/destroy).
step molecule-kind python -m pytest -q -p no:cacheprovider tests/estate/test_molecule_kind.py
step rotation tests/rotation/run.sh

echo
echo "step times (docs/performance.md keeps a table of them):"
printf '  %s\n' "${timings[@]}"
echo "  total        $(printf '%6d' "$SECONDS") s"
echo "steps passed: ${passed[*]:-none}"
echo "steps failed: ${failed[*]:-none}"
echo "suite: ${#passed[@]} passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]

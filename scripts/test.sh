#!/usr/bin/env bash
# The whole test suite, as a user and CI run it: `make test`.
# Installs what it needs, starts the local control plane (unless one is already up),
# runs sanity, unit, lint, integration, cluster, exporter and molecule tests against the
# real kube-apiserver, and stops the cluster again if it started it.
# Each step runs even when an earlier one failed, so one run shows every failure;
# the exit code is non-zero when any step failed.
# Run a subset with MTLS_TEST_STEPS="units integration" (names as printed below).
# MTLS_TEST_QUICK=1 leaves out the longest proofs, named once at the start and again in
# the summary: those that run the real consumers (istiod, cert-manager, trust-manager,
# SPIRE) and the root rotation of whole estates. CI always runs everything.
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

# Each step appends "name seconds result" to this file: steps of the second lane run in a
# background shell, whose variables the summary could not see.
results=$(mktemp "${TMPDIR:-/tmp}/mtls-test-results.XXXXXX")
quick=""
# What MTLS_TEST_QUICK=1 adds to the integration and cluster steps' commands (the rotation
# step reads the variable itself).
integration_args=() cluster_args=()
case "${MTLS_TEST_QUICK:-0}" in
  0|1) ;;
  *) echo "test: MTLS_TEST_QUICK is '${MTLS_TEST_QUICK}'; set it to 1 (leave out the longest proofs) or 0 (run everything)." >&2; exit 2 ;;
esac
if [ "${MTLS_TEST_QUICK:-0}" = 1 ]; then
  quick="the consumers-build step; tests/cluster/tests/test_consumers.py and test_rotation_consumers.py;"
  quick+=" the rotate_site_layout integration target; tests/rotation/test_estate_rotation.py and test_estate_kill.py"
  echo "test: MTLS_TEST_QUICK=1 leaves out $quick."
  integration_args=(--exclude rotate_site_layout)
  cluster_args=(--ignore tests/cluster/tests/test_consumers.py --ignore tests/cluster/tests/test_rotation_consumers.py)
fi
export MTLS_TEST_QUICK="${MTLS_TEST_QUICK:-0}"
wanted() { [ -z "${MTLS_TEST_STEPS:-}" ] || [[ " $MTLS_TEST_STEPS " == *" $1 "* ]]; }
# step NAME COMMAND...: runs when NAME is wanted; run_step: always (the clusters the
# wanted steps need).
step() {
  wanted "$1" || return 0
  run_step "$@"
}
run_step() {
  local name=$1; shift
  local start=$SECONDS result
  echo "==> $name: $*"
  if "$@"; then result=passed; else result=FAILED; fi
  echo "<== $name $result ($((SECONDS - start)) s)"
  echo "$name $((SECONDS - start)) $result" >>"$results"
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
  python "$root/scripts/integration.py" "${integration_args[@]}"
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

# sanity, units and lint each keep about one core busy for half a minute: they run side
# by side (MTLS_TEST_LANES=1: one after the other), each into a log of its own that is
# printed when all have ended, so the output reads as if they had run in turn.
side_by_side() {
  local dir pids=() name
  if [ "${MTLS_TEST_LANES:-2}" = 1 ]; then
    for name in "$@"; do "$name"; done
    return
  fi
  dir=$(mktemp -d "${TMPDIR:-/tmp}/mtls-test-steps.XXXXXX")
  for name in "$@"; do
    "$name" >"$dir/$name.log" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  for name in "$@"; do cat "$dir/$name.log"; done
  rm -rf "$dir"
}
sanity_step() { step sanity scripts/ansible-test.sh sanity --venv --python 3.11 --color no; }
units_step() { step units scripts/ansible-test.sh units --python 3.11 --local --color no; }
lint_and_style_step() {
  step lint lint
  step style style
}
side_by_side sanity_step units_step lint_and_style_step
# Every playbook matches hosts in every inventory; the exporter agrees with the layouts.
step estate python -m pytest -q -p no:cacheprovider tests/estate/test_list_hosts.py tests/estate/test_exporter_agreement.py
if [ -z "${MTLS_TEST_STEPS:-}" ] || wanted cluster-up || wanted integration || wanted cluster || wanted exporter || wanted packaging || wanted awx || wanted molecule || wanted molecule-kind || wanted rotation; then
  run_step cluster-up cluster_up
fi
step integration integration
# The real consumers (istiod, cert-manager, trust-manager, SPIRE) that the cluster tests
# run through tests/cluster/pod_runner.py; cached by version, so a warm run only checks.
[ "$MTLS_TEST_QUICK" = 1 ] || step consumers-build tests/cluster/build-consumers.sh
# After the integration targets, the steps that converge an estate of their own run in
# two lanes, one per core: lane 1 on the local control plane, lane 2 on a second instance
# of tests/cluster on free loopback ports. Both write the same objects
# (istio-system/cacerts, ...), hence one API server each. Lane 1 runs the cluster step
# first (the consumers' proofs read the default PKI); every other step goes to the lane
# that is free first (longest first), so that neither lane idles while the other still
# has two steps to run. MTLS_TEST_LANES=1: one lane, every step in turn.
cluster_step() { step cluster python -m pytest -q tests/cluster/tests "${cluster_args[@]}"; }
packaging_step() { step packaging python -m pytest -q -p no:cacheprovider tests/packaging; }
# Every AWX job template of playbooks/awx_configure.yml run as AWX runs it (ansible-runner).
awx_step() { step awx python -m pytest -q -p no:cacheprovider tests/awx; }
molecule_step() { step molecule tests/cluster/run-molecule.sh; }
# The kind scenario's prepare/converge/verify against the local control plane (no create/destroy).
molecule_kind_step() { step molecule-kind python -m pytest -q -p no:cacheprovider tests/estate/test_molecule_kind.py; }
exporter_step() { step exporter python -m pytest -q exporter/tests; }
shared_steps=(packaging_step molecule_step awx_step molecule_kind_step exporter_step)
claims=$(mktemp -d "${TMPDIR:-/tmp}/mtls-test-claims.XXXXXX")
# Runs, in order, each shared step that no lane has claimed yet (mkdir is the atomic claim).
take_steps() {
  local name
  for name in "${shared_steps[@]}"; do
    mkdir "$claims/$name" 2>/dev/null || continue
    "$name"
  done
}
lane2_wanted() { wanted packaging || wanted awx || wanted molecule || wanted molecule-kind; }

lane2_dir=""
stop_lane2_cluster() {
  if [ -n "$lane2_dir" ]; then
    MTLS_CLUSTER_DIR="$lane2_dir" tests/cluster/down.sh >/dev/null 2>&1 || true
    rm -rf "$lane2_dir"
  fi
}
start_lane2_cluster() {
  lane2_dir=$(mktemp -d "${TMPDIR:-/tmp}/mtls-lane2.XXXXXX")
  # Free ports for up.sh only: it saves them in the cluster's ports.env, where down.sh
  # and status.sh find them; the local control plane keeps its own.
  (
    for name in MTLS_ETCD_CLIENT_PORT MTLS_ETCD_PEER_PORT MTLS_APISERVER_PORT MTLS_CONTROLLER_MANAGER_PORT \
                MTLS_SCHEDULER_PORT MTLS_KWOK_PORT; do
      export "$name=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    done
    MTLS_CLUSTER_DIR="$lane2_dir" tests/cluster/up.sh
  )
}
run_lane2() {
  export MTLS_CLUSTER_DIR="$lane2_dir" MTLS_KUBECONFIG="$lane2_dir/kubeconfig" MTLS_LOCAL_KUBECONFIG="$lane2_dir/kubeconfig"
  take_steps
}

if [ "${MTLS_TEST_LANES:-2}" = 2 ] && lane2_wanted && (wanted cluster || wanted exporter); then
  trap 'stop_lane2_cluster; stop_cluster' EXIT
  if run_step lane2-up start_lane2_cluster && [ -s "$lane2_dir/kubeconfig" ]; then
    lane2_log="$lane2_dir.log"
    echo "==> lane 2 runs beside lane 1 on $lane2_dir, taking the steps lane 1 has not begun; its output follows lane 1's"
    ( run_lane2 ) >"$lane2_log" 2>&1 &
    lane2_pid=$!
    cluster_step
    take_steps
    wait "$lane2_pid"
    echo "==> lane 2 output:"
    cat "$lane2_log"
    rm -f "$lane2_log"
  else
    echo "lane 2's cluster did not start (see above); its steps run after lane 1 on the local control plane."
    cluster_step
    take_steps
  fi
  stop_lane2_cluster; lane2_dir=""
else
  cluster_step
  take_steps
fi
rm -rf "$claims"
step rotation tests/rotation/run.sh

echo
echo "step times (docs/performance.md keeps a table of them):"
passed=() failed=()
while read -r name seconds result; do
  printf '  %-16s %6d s  %s\n' "$name" "$seconds" "$result"
  if [ "$result" = passed ]; then passed+=("$name"); else failed+=("$name"); fi
done <"$results"
rm -f "$results"
echo "  total            $(printf '%6d' "$SECONDS") s (wall; the lanes' steps overlap)"
echo "steps passed: ${passed[*]:-none}"
echo "steps failed: ${failed[*]:-none}"
echo "suite: ${#passed[@]} passed, ${#failed[@]} failed"
[ -z "$quick" ] || echo "MTLS_TEST_QUICK=1: this run left out $quick."
[ ${#failed[@]} -eq 0 ]

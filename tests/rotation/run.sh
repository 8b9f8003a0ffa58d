#!/usr/bin/env bash
# Runs the rotation proofs: zero downtime (nginx + mTLS client through all root rotation
# phases), SIGKILL at 30 moments, no key bytes in -vvv --diff logs, and - when the local
# control plane runs - the cluster side of the rotations, the mesh audit, and the
# one-command root rotation of a site.yml estate with handshakes throughout.
# The three file-side proofs run in parallel (they share nothing but the CPU); each is
# bounded by its own loop limits and by the timeout below.
#
#   tests/rotation/run.sh            # MTLS_KUBECONFIG is taken from .cluster/ when the cluster is up
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"
pytest=(timeout 2700 "$repo/.venv/bin/pytest" -p no:cacheprovider -s -q)
logs="$(mktemp -d /tmp/mtls-rotation-proofs.XXXXXX)"

# The playbooks find zerotrust.mtls through ansible.cfg's collections_path.
[[ -e .build/collections/ansible_collections/zerotrust/mtls ]] || scripts/collection-link.sh >/dev/null

if [[ -z "${MTLS_KUBECONFIG:-}" && -f .cluster/kubeconfig ]] && tests/cluster/status.sh >/dev/null 2>&1; then
    export MTLS_KUBECONFIG="$repo/.cluster/kubeconfig"
fi
# The file-side proofs use no cluster: records and Secrets are proven by test_cluster_rotation.py.
export -n MTLS_KUBECONFIG 2>/dev/null || true
cluster_kubeconfig="${MTLS_KUBECONFIG:-}"
unset MTLS_KUBECONFIG

declare -A pids
for proof in test_zero_downtime test_overlap_crl; do
    "${pytest[@]}" "$here/$proof.py" >"$logs/$proof.log" 2>&1 &
    pids[$proof]=$!
done
# The kill test's two proofs, each one process keeping about one core busy, run side by
# side too: in one process the second would run alone at the end of the step.
"${pytest[@]}" "$here/test_kill.py" -k test_sigkill_never_damages_the_pki >"$logs/test_kill.log" 2>&1 &
pids[test_kill]=$!
"${pytest[@]}" "$here/test_kill.py" -k test_batch_commit_keeps_pairs_consistent >"$logs/test_kill_commit.log" 2>&1 &
pids[test_kill_commit]=$!
# The rotation playbooks' leak runs use a throw-away PKI and no cluster.
"${pytest[@]}" "$here/test_leak.py" -k 'not site' >"$logs/test_leak.log" 2>&1 &
pids[test_leak]=$!
if [[ -n "$cluster_kubeconfig" ]]; then
    MTLS_KUBECONFIG="$cluster_kubeconfig" "${pytest[@]}" "$here/test_cluster_rotation.py" >"$logs/test_cluster_rotation.log" 2>&1 &
    pids[test_cluster_rotation]=$!
    # site.yml converges the shared cluster from the inventory's own PKI (as `make run` does).
    MTLS_KUBECONFIG="$cluster_kubeconfig" "${pytest[@]}" "$here/test_leak.py" -k site >"$logs/test_leak_site.log" 2>&1 &
    pids[test_leak_site]=$!
    # The one-command root rotation of a site.yml estate: two clusters with handshakes
    # throughout, then SIGKILLs and resumes. Each test has a cluster B of its own and
    # namespaces of its own on the local control plane, so the two run side by side; the
    # kill test is the step's long pole (30 runs, a playbook at a time).
    # make test's MTLS_TEST_QUICK=1 leaves these two out (and says so).
    if [[ "${MTLS_TEST_QUICK:-0}" != 1 ]]; then
        MTLS_KUBECONFIG="$cluster_kubeconfig" "${pytest[@]}" "$here/test_estate_kill.py" >"$logs/test_estate_kill.log" 2>&1 &
        pids[test_estate_kill]=$!
        MTLS_KUBECONFIG="$cluster_kubeconfig" "${pytest[@]}" "$here/test_estate_rotation.py" >"$logs/test_estate_rotation.log" 2>&1 &
        pids[test_estate_rotation]=$!
    else
        echo "MTLS_TEST_QUICK=1: test_estate_rotation.py and test_estate_kill.py left out"
    fi
else
    echo "cluster: not running - test_cluster_rotation.py skipped (start it with tests/cluster/up.sh)"
fi

status=0
for proof in "${!pids[@]}"; do
    if wait "${pids[$proof]}"; then result=passed; else result=FAILED; status=1; fi
    echo "== $proof: $result"
    grep -E '^(zero-downtime|kill test|commit kill test|leak test|audit|estate rotation|estate kill test):|passed|failed|xfailed|skipped' "$logs/$proof.log" | tail -4
    [[ $result == passed ]] || tail -40 "$logs/$proof.log"
done
echo "logs: $logs"
exit $status

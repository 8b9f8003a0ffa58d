#!/usr/bin/env bash
# Sync-secrets benchmark: one mtls_secret call for 500 TLS Secrets in 50 namespaces
# against a kubernetes.core.k8s loop doing the same work (timed on a subset), printed
# as ratios. Needs the local control plane (tests/cluster/up.sh) or MTLS_KUBECONFIG.
# Usage: benchmarks/sync_secrets/run.sh [extra ansible-playbook args, e.g. -e namespace_count=10]
set -euo pipefail
. "$(dirname "$0")/../cluster-bench.sh" sync_secrets
ANSIBLE_CONFIG="$root/ansible.cfg" "$venv/bin/ansible-playbook" -i localhost, -c local \
  -e ansible_python_interpreter="$venv/bin/python" \
  "$root/benchmarks/sync_secrets/bench.yml" "$@" >"$root/benchmarks/results/sync_secrets.log" 2>&1 || {
    tail -40 "$root/benchmarks/results/sync_secrets.log" >&2; exit 1; }
"$venv/bin/python" - "$BENCH_RESULTS" <<'PY'
import json
import sys

f = json.load(open(sys.argv[1]))
print("sync_secrets: %s TLS Secrets across %s namespaces" % (f["secrets"], f["namespaces"]))
print("  mtls_secret, one call, first write : %8.2f s  (%6.2f ms/Secret, %s created)" % (
    float(f["mtls_secret_first_write_s"]), float(f["mtls_secret_first_write_per_secret_ms"]),
    f["mtls_secret_created"]))
print("  mtls_secret, one call, no change   : %8.2f s  (%6.2f ms/Secret, changed=%s)" % (
    float(f["mtls_secret_rerun_s"]), float(f["mtls_secret_rerun_per_secret_ms"]),
    f["mtls_secret_rerun_changed"]))
if int(f["k8s_loop_subset"]) > 0:
    print("  kubernetes.core.k8s loop, %s Secrets: %8.2f s  (%6.2f ms/Secret; %s s extrapolated to %s)" % (
        f["k8s_loop_subset"], float(f["k8s_loop_first_write_s"]),
        float(f["k8s_loop_first_write_per_secret_ms"]), f["k8s_loop_extrapolated_500_s"], f["secrets"]))
    print("  kubernetes.core.k8s loop, no change: %8.2f s  (%6.2f ms/Secret)" % (
        float(f["k8s_loop_rerun_s"]), float(f["k8s_loop_rerun_per_secret_ms"])))
print("  path: %s" % ("in the controller process (action plugin)" if str(f.get("in_process")) == "True" else "module (mtls_in_process: false)"))
print("  module start-up (one call, nothing to do; mean of 3): %6.2f s; first call of the run: %.2f s" % (
    float(f["module_start_s"]), float(f["module_first_call_s"])))
print("floor, one kubernetes client, 8 threads, same run:")
print("  server-side apply of every Secret  : %8.2f s" % float(f["floor_ssa_8_threads_s"]))
print("  one LIST per namespace             : %8.2f s" % float(f["floor_list_per_namespace_s"]))
print("  one GET per Secret                 : %8.2f s" % float(f["floor_get_8_threads_s"]))
print("first write / SSA floor: %sx (target <= 2)" % f["first_write_vs_ssa_floor"])
print("first write + once-per-run cost of the first call / SSA floor: %sx" % f["first_write_cold_vs_ssa_floor"])
print("no-change rerun / (LIST floor + module start-up): %sx (target <= 2); rerun minus start-up / LIST floor: %sx; "
      "rerun / LIST floor: %sx" % (f["rerun_vs_list_floor_plus_start"], f["rerun_minus_start_vs_list_floor"],
                                   f["rerun_vs_list_floor"]))
if int(f["k8s_loop_subset"]) > 0:
    print("ratio first write (k8s loop / mtls_secret, per Secret): %sx" % f["ratio_first_write"])
    print("ratio no-change rerun (k8s loop / mtls_secret, per Secret): %sx" % f["ratio_rerun"])
PY

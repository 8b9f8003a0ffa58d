#!/usr/bin/env bash
# mesh_policy benchmark: one policy (STRICT PeerAuthentication + AuthorizationPolicy)
# applied to 50 namespaces by one mesh_policy call, beside the floor (floor.py: one
# kubernetes client, 8 threads), a mesh_policy loop and a kubernetes.core.k8s loop (both
# timed on subsets), all in the same run; ansible-playbook start-up timed separately.
# Needs the local control plane (tests/cluster/up.sh) or MTLS_KUBECONFIG.
# Usage: benchmarks/mesh_policy/run.sh [extra ansible-playbook args, e.g. -e loop_subset=0]
set -euo pipefail
. "$(dirname "$0")/../cluster-bench.sh" mesh_policy
log="$root/benchmarks/results/mesh_policy.log"
playbook() {
  ANSIBLE_CONFIG="$root/ansible.cfg" "$venv/bin/ansible-playbook" -i localhost, -c local \
    -e ansible_python_interpreter="$venv/bin/python" "$@"
}
started=$(date +%s.%N)
playbook "$root/benchmarks/mesh_policy/startup.yml" >"$log" 2>&1 || { tail -40 "$log" >&2; exit 1; }
startup=$(echo "$(date +%s.%N) - $started" | bc)
playbook "$root/benchmarks/mesh_policy/bench.yml" "$@" >>"$log" 2>&1 || { tail -40 "$log" >&2; exit 1; }
"$venv/bin/python" - "$BENCH_RESULTS" "$startup" <<'PY'
import json
import sys

f = json.load(open(sys.argv[1]))
f["ansible_playbook_start_s"] = round(float(sys.argv[2]), 3)
json.dump(f, open(sys.argv[1], "w"), indent=4)
n = f["namespaces"]
print("mesh_policy: STRICT PeerAuthentication + AuthorizationPolicy in %s namespaces (%s objects)" % (n, f["objects"]))
if f["one_call"]:
    print("  mesh_policy, one call, first write : %7.2f s  (%s created)" % (
        float(f["mesh_policy_first_write_s"]), f["mesh_policy_created"]))
    print("  mesh_policy, one call, no change   : %7.2f s  (changed=%s)" % (
        float(f["mesh_policy_rerun_s"]), f["mesh_policy_rerun_changed"]))
if int(f["loop_subset"]) > 0:
    print("  mesh_policy loop, %s namespaces     : %7.2f s first, %.2f s no change (changed=%s); "
          "extrapolated to %s: %s s, %s s" % (
              f["loop_subset"], float(f["loop_first_write_s"]), float(f["loop_rerun_s"]),
              f["loop_rerun_changed"], n, f["loop_first_extrapolated_s"], f["loop_rerun_extrapolated_s"]))
if int(f["k8s_loop_subset"]) > 0:
    print("  kubernetes.core.k8s loop, %s namespaces: %7.2f s first, %.2f s no change (changed=%s); "
          "extrapolated to %s: %s s" % (
              f["k8s_loop_subset"], float(f["k8s_loop_first_write_s"]), float(f["k8s_loop_rerun_s"]),
              f["k8s_loop_rerun_changed"], n, f["k8s_loop_first_extrapolated_s"]))
print("  path: %s" % ("in the controller process (action plugin)" if str(f.get("in_process")) == "True" else "module (mtls_in_process: false)"))
print("  module start-up (one call, nothing to do; mean of 3): %5.2f s; first call of the run: %.2f s" % (
    float(f["module_start_s"]), float(f["module_first_call_s"])))
print("  ansible-playbook start-up (one ping task, whole command): %5.2f s" % f["ansible_playbook_start_s"])
print("floor, one kubernetes client, 8 threads, same run:")
print("  server-side apply of every object  : %7.2f s" % float(f["floor_ssa_8_threads_s"]))
print("  one LIST per namespace and kind    : %7.2f s" % float(f["floor_list_per_namespace_s"]))
print("  one GET per object                 : %7.2f s" % float(f["floor_get_8_threads_s"]))
if f["one_call"]:
    print("first write / SSA floor: %sx (target <= 2); first write minus module start-up / SSA floor: %sx" % (
        f["first_write_vs_ssa_floor"], f["first_write_minus_start_vs_ssa_floor"]))
    print("first write + once-per-run cost of the first call / SSA floor: %sx" % f["first_write_cold_vs_ssa_floor"])
    print("no-change rerun / (LIST floor + module start-up): %sx (target <= 2); "
          "rerun minus start-up / LIST floor: %sx; rerun / LIST floor: %sx" % (
              f["rerun_vs_list_floor_plus_start"], f["rerun_minus_start_vs_list_floor"], f["rerun_vs_list_floor"]))
if int(f["loop_subset"]) > 0:
    print("mesh_policy loop, extrapolated first write / SSA floor: %sx" % f["loop_first_vs_ssa_floor"])
if f["one_call"] and int(f["loop_subset"]) > 0:
    print("ratio per namespace, mesh_policy loop / one call: first write %sx, no change %sx" % (
        f["ratio_first_write_loop"], f["ratio_rerun_loop"]))
if f["one_call"] and int(f["k8s_loop_subset"]) > 0:
    print("ratio per namespace, k8s loop / one call: first write %sx, no change %sx" % (
        f["ratio_first_write_k8s"], f["ratio_rerun_k8s"]))
PY

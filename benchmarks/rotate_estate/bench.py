# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of issue 12: the root CA rotation of an estate of two clusters, its client
certificates and (on cluster B) istiod-issued workloads, against a target and the floor.

  bench.py [--clients 1000] [--workloads 200] [--configmaps] [--json PATH]

Cluster A is the running local control plane (MTLS_KUBECONFIG); cluster B is started here
(tests/cluster/up.sh on free loopback ports) and purged at the end. playbooks/site.yml
converges both (timed), playbooks/rotate_root_ca.yml rotates the root once (timed; the
consumer wait task timed apart by the bench_timing callback), site.yml runs again and must
change nothing. Rotation work = the rotation's wall time minus the wall time of the wait
task (deliberate waits). The floor is measured in the same run (floor.py).
"""

import argparse
import json
import os
import shutil
import tempfile
import time
import uuid

from kubernetes import client, config

import estate
import floor
import istiod_workloads

TARGET_S = 120.0


def _namespaces(core, names):
    for name in names:
        core.create_namespace({"metadata": {"name": name}})


def _delete_namespaces(core, names):
    for name in names:
        try:
            core.delete_namespace(name)
        except client.ApiException as error:
            if error.status != 404:
                raise


def _rotation_figures(wall_s, times, clusters):
    """Rotation wall, its deliberate waits (the wait task's wall time; also the modules'
    own `waited`, the longest host of each run), and the work = wall - wait task."""
    waits = [item["waited"] or 0.0 for item in times["waits"]]
    waited_runs = [max(waits[index : index + clusters]) for index in range(0, len(waits), clusters)]
    wait_task_s = sum(times["wait_task_s"])
    return {
        "rotation_wall_s": round(wall_s, 2),
        "wait_task_runs": len(times["wait_task_s"]),
        "wait_task_s": round(wait_task_s, 2),
        "waited_by_module_s": round(sum(waited_runs), 2),
        "rotation_work_s": round(wall_s - wait_task_s, 2),
        "rotation_work_strict_s": round(wall_s - sum(waited_runs), 2),
        "plays": [(name, round(seconds, 2)) for name, seconds in times["plays"]],
        "top_tasks": sorted(((name, round(seconds, 2)) for name, seconds in times["tasks"].items()), key=lambda item: -item[1])[:12],
    }


def _istiod_round(results, key, istiod, identities, trust, root, workdir):
    seconds, chains = istiod_workloads.request_all(istiod, identities, trust, workdir, key)
    chained = istiod_workloads.chained_to(chains, root)
    results[key + "_csr_s"] = round(seconds, 2)
    results[key + "_chained_to_root"] = chained
    if chained != len(identities):
        raise SystemExit("rotate_estate: %d of %d istiod certificates (%s) chain to %s" % (chained, len(identities), key, root))
    return chains


def run(args, workdir, results):
    kube_a = os.environ["MTLS_KUBECONFIG"]
    ns = "rot-%s" % uuid.uuid4().hex[:6]
    log = os.path.join(workdir, "playbooks.log")
    inventory = os.path.join(workdir, "inventory.yml")
    pki = os.path.join(workdir, "pki")
    with estate.cluster_b(workdir) as (kube_b, env_b):
        apis = {"a": config.new_client_from_config(kube_a), "b": config.new_client_from_config(kube_b)}
        cores = dict((name, client.CoreV1Api(api)) for name, api in apis.items())
        a_namespaces = [ns + "-sys", ns + "-istio"] + estate.app_namespaces(ns)
        _namespaces(cores["a"], a_namespaces)
        _namespaces(cores["b"], estate.app_namespaces(ns) + ([ns + "-ips"] if args.workloads else [ns + "-istio"]))
        try:
            estate.write_inventory(inventory, ns, pki, {"a": kube_a, "b": kube_b}, args.clients, "b" if args.workloads else None, args.configmaps)
            results["ansible_playbook_start_s"] = round(estate.run_playbook(inventory, os.path.join(estate.HERE, "startup.yml"), log)[0], 2)
            site = ["-e", "mtls_site_hosts=clusters"]
            results["site_first_s"] = round(estate.run_playbook(inventory, os.path.join(estate.REPO, "playbooks", "site.yml"), log, extra=site)[0], 2)
            trust, root = os.path.join(pki, "trust", "bundle.pem"), os.path.join(pki, "root", "ca.crt")
            if args.workloads:
                istiod = istiod_workloads.start_istiod(cores["a"], apis["b"], env_b, workdir, ns + "-ips")
                identities = istiod_workloads.workloads(ns, args.workloads)
                istiod_workloads.prepare(cores["b"], identities, workdir)
                shutil.copy(root, os.path.join(workdir, "old-root.crt"))
                _istiod_round(results, "istiod_before", istiod, identities, trust, root, workdir)
            timing = os.path.join(workdir, "rotation-timing.json")
            wall, output = estate.run_playbook(inventory, os.path.join(estate.REPO, "playbooks", "rotate_root_ca.yml"), log, timing_file=timing, extra=site)
            if "phases done 5/5" not in output:
                raise SystemExit("rotate_estate: the rotation did not complete in one run (log %s)" % log)
            results.update(_rotation_figures(wall, estate.task_times(timing), 2))
            if args.workloads:
                chains = _istiod_round(results, "istiod_after", istiod, identities, trust, root, workdir)
                results["istiod_after_chained_to_old_root"] = istiod_workloads.chained_to(chains, os.path.join(workdir, "old-root.crt"))
            seconds, output = estate.run_playbook(inventory, os.path.join(estate.REPO, "playbooks", "site.yml"), log, extra=site)
            results["site_after_s"] = round(seconds, 2)
            results["site_after_changed"] = [estate.recap_changed(output, "estate-" + name) for name in ("a", "b")]
            if results["site_after_changed"] != [0, 0]:
                raise SystemExit("rotate_estate: site.yml after the rotation reported changed=%s (a, b), not 0 (log %s)" % (results["site_after_changed"], log))
            apps = estate.app_namespaces(ns)[0]
            results["floor"] = floor.measure(apis, {"a": apps, "b": apps}, args.clients, workdir)
        finally:
            if args.workloads:
                istiod_workloads.stop_istiod(env_b)
            _delete_namespaces(cores["a"], a_namespaces)


def summary(results):
    r, f = results, results["floor"]
    floor_s = f["issue_s"] + f["ssa_8_threads_s"]
    r["floor_s"] = round(floor_s, 2)
    r["work_vs_target"] = round(r["rotation_work_s"] / TARGET_S, 2)
    r["work_vs_floor"] = round(r["rotation_work_s"] / floor_s, 1)
    lines = [
        "rotate_estate: %d clusters, %d client certificates (%d per cluster, Secrets%s), %d istiod workloads; load %s -> %s"
        % (2, r["clients"], r["clients"] // 2, " + env ConfigMaps" if r["configmaps"] else " only", r["workloads"], r["load_start"], r["load_end"]),
        "  ansible-playbook start-up (one ping task)  : %7.2f s" % r["ansible_playbook_start_s"],
        "  site.yml, first converge                   : %7.2f s" % r["site_first_s"],
        "  rotate_root_ca.yml, wall                   : %7.2f s" % r["rotation_wall_s"],
        "  deliberate waits (wait task, %d runs)       : %7.2f s  (the module's own `waited`: %.2f s)"
        % (r["wait_task_runs"], r["wait_task_s"], r["waited_by_module_s"]),
        "  rotation work = wall - waits               : %7.2f s  (wall - `waited`: %.2f s)" % (r["rotation_work_s"], r["rotation_work_strict_s"]),
        "  site.yml after the rotation                : %7.2f s  changed=%s (a, b)" % (r["site_after_s"], r["site_after_changed"]),
    ]
    if r["workloads"]:
        lines.append(
            "  istiod: %d CSRs before %.2f s, after %.2f s (8 at a time); after: %d chain to the new root, %d to the old"
            % (r["workloads"], r["istiod_before_csr_s"], r["istiod_after_csr_s"], r["istiod_after_chained_to_root"], r["istiod_after_chained_to_old_root"])
        )
    lines += ["  per play of the rotation:"] + ["    %7.2f s  %s" % (seconds, name) for name, seconds in r["plays"]]
    lines += ["  slowest tasks of the rotation (summed over hosts' side-by-side runs):"] + ["    %7.2f s  %s" % (s, n) for n, s in r["top_tasks"]]
    lines += [
        "floor, same run: issue %d certificates with cryptography %.2f s + server-side apply %d Secrets, 8 threads %.2f s = %.2f s"
        % (r["clients"], f["issue_s"], r["clients"], f["ssa_8_threads_s"], floor_s),
        "rotation work / target (%.0f s): %sx  -> %s" % (TARGET_S, r["work_vs_target"], "met" if r["rotation_work_s"] <= TARGET_S else "MISSED"),
        "rotation work / floor: %sx" % r["work_vs_floor"],
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000, help="client certificates in all, half per cluster")
    parser.add_argument("--workloads", type=int, default=200, help="istiod workload identities on cluster B (0: no istiod)")
    parser.add_argument("--configmaps", action="store_true", help="also the client_certs role's env ConfigMap per client")
    parser.add_argument("--json", default=os.environ.get("BENCH_RESULTS"))
    args = parser.parse_args()
    results = {"clients": args.clients, "workloads": args.workloads, "configmaps": args.configmaps, "load_start": round(os.getloadavg()[0], 1)}
    results["started"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    workdir = tempfile.mkdtemp(prefix="rotate-estate-")
    try:
        run(args, workdir, results)
    finally:
        results["load_end"] = round(os.getloadavg()[0], 1)
        if args.json and os.path.exists(os.path.join(workdir, "playbooks.log")):
            shutil.copy(os.path.join(workdir, "playbooks.log"), os.path.splitext(args.json)[0] + ".log")
    text = summary(results)
    print(text)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

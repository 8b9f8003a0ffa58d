# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The estate of the rotate_estate benchmark: cluster B (a second tests/cluster instance on
free loopback ports, as tests/rotation/test_estate_rotation.py starts it), the inventory of
the two cluster hosts, and the playbook runs with their per-task timing."""

import contextlib
import json
import os
import re
import subprocess
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "rotation"))
sys.path.insert(0, os.path.join(REPO, "tests", "cluster"))
import cluster_ports  # noqa: E402
import harness  # noqa: E402

CLUSTER_UP = os.path.join(REPO, "tests", "cluster", "up.sh")
CLUSTER_DOWN = os.path.join(REPO, "tests", "cluster", "down.sh")
PYTHON = os.path.join(REPO, ".venv", "bin", "python")


@contextlib.contextmanager
def cluster_b(workdir):
    """Yields (kubeconfig, environment of B) of a second local control plane; purged on exit."""
    env = dict(os.environ, MTLS_CLUSTER_DIR=os.path.join(workdir, "cluster-b"))
    env.update(cluster_ports.port_environment())
    started = subprocess.run([CLUSTER_UP], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, check=False)
    try:
        if started.returncode != 0:
            raise SystemExit("rotate_estate: cluster B did not start:\n%s" % started.stdout.decode()[-3000:])
        yield os.path.join(env["MTLS_CLUSTER_DIR"], "kubeconfig"), env
    finally:
        subprocess.run([CLUSTER_DOWN, "--purge"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=False)


def clients(ns, cluster, count, configmaps):
    """count client certificates of one cluster, their Secrets spread over four namespaces."""
    return [
        {"name": "c%s-%04d" % (cluster, index), "namespace": "%s-apps%d" % (ns, index % 4), "service_account": "c%04d" % index, "configmap": configmaps}
        for index in range(count)
    ]


def app_namespaces(ns):
    return ["%s-apps%d" % (ns, index) for index in range(4)]


def cluster_host(name, ns, kubeconfig, client_count, istiod, configmaps):
    """One cluster: Istio cacerts and the client_certs role. With istiod (it runs on this
    cluster) the root namespace is istio-system and the rotation waits for istiod."""
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": PYTHON,
        "mtls_kubeconfig": kubeconfig,
        "mtls_cluster_name": ns + "-" + name,
        "mtls_environment": "staging",
        "mtls_istio_enabled": True,
        "istio_mtls_root_namespace": "istio-system" if istiod else ns + "-istio",
        "mtls_client_certs_enabled": True,
        "client_certs_clients": clients(ns, name, client_count, configmaps),
        "mtls_rotation_wait_for_istiod": istiod,
    }


def write_inventory(path, ns, pki_dir, kubeconfigs, client_count, istiod_cluster, configmaps):
    """kubeconfigs: {"a": path, "b": path}; client_count is split evenly between them."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": PYTHON}
    per_cluster = client_count // len(kubeconfigs)
    hosts = dict(
        ("estate-" + name, cluster_host(name, ns, kubeconfig, per_cluster, name == istiod_cluster, configmaps))
        for name, kubeconfig in sorted(kubeconfigs.items())
    )
    inventory = {
        "all": {
            "vars": {
                "mtls_pki_dir": pki_dir,
                "mtls_kubeconfig": kubeconfigs["a"],
                # istiod's default trust domain, so its workload identities and ours agree.
                "mtls_trust_domain": "cluster.local",
                "mtls_root_key_passphrase": harness.DEMO_PASSPHRASE.decode(),
                "mtls_intermediate_key_passphrase": harness.DEMO_INTERMEDIATE_PASSPHRASE.decode(),
                "mtls_rotation_namespace": ns + "-sys",
            },
            "children": {"pki": {"hosts": {"localhost": local}}, "clusters": {"hosts": hosts}},
        }
    }
    with open(path, "w") as handle:
        yaml.safe_dump(inventory, handle)


def run_playbook(inventory, playbook, log, timing_file=None, extra=()):
    """One ansible-playbook run, timed as the whole command; its output appended to log.
    Returns (seconds, output); a failed run ends the benchmark."""
    env = harness.playbook_env()
    if timing_file:
        env.update(ANSIBLE_CALLBACK_PLUGINS=os.path.join(HERE, "callback_plugins"), ANSIBLE_CALLBACKS_ENABLED="bench_timing", BENCH_TIMING_FILE=timing_file)
    command = [harness.ANSIBLE_PLAYBOOK, "-i", inventory, playbook] + list(extra)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=3600, check=False)
    seconds = time.perf_counter() - started
    output = result.stdout.decode("utf-8", "replace")
    with open(log, "a") as handle:
        handle.write("### %s (%.1f s, rc %d)\n%s" % (os.path.basename(playbook), seconds, result.returncode, output))
    if result.returncode != 0:
        raise SystemExit("rotate_estate: %s failed (rc %d), log %s:\n%s" % (playbook, result.returncode, log, output[-3000:]))
    return seconds, output


def recap_changed(output, host):
    match = re.search(r"^%s\s*:\s*ok=\d+\s+changed=(\d+)" % re.escape(host), output, re.M)
    if not match:
        raise SystemExit("rotate_estate: no recap line for %s" % host)
    return int(match.group(1))


def task_times(timing_file):
    """From the callback's record: per task name the wall seconds (summed over its runs), per
    play the wall seconds in order, and the consumer wait's task seconds and `waited` results."""
    with open(timing_file) as handle:
        record = json.load(handle)
    events = record["events"]
    tasks, plays, wait_task_s = {}, [], []
    for index, event in enumerate(events[:-1]):
        if event["kind"] == "task":
            seconds = events[index + 1]["at"] - event["at"]
            tasks[event["name"]] = tasks.get(event["name"], 0.0) + seconds
            if event["name"] == record["wait_task"]:
                wait_task_s.append(seconds)
        elif event["kind"] == "play":
            following = next(later for later in events[index + 1 :] if later["kind"] in ("play", "end"))
            plays.append((event["name"], following["at"] - event["at"]))
    return {"tasks": tasks, "plays": plays, "wait_task_s": wait_task_s, "waits": record["waits"]}

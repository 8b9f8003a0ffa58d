# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The floor of the rotate_estate benchmark, measured in the same run: the client certificates
issued with bare `cryptography` in this process (benchmarks/issue_certs' floor: EC P-256 key,
client certificate signed by an intermediate, PEM files), then one TLS Secret per certificate
server-side applied with one `kubernetes` client per cluster on a pool of 8 threads
(benchmarks/kube_floor.py), half of them on each cluster, and deleted again (not timed)."""

import base64
import importlib.util
import os
import sys
import tempfile

from kubernetes import client

from estate import REPO

sys.path.insert(0, os.path.join(REPO, "benchmarks"))
import kube_floor  # noqa: E402


def _issue_certs_module():
    spec = importlib.util.spec_from_file_location("issue_certs_run", os.path.join(REPO, "benchmarks", "issue_certs", "run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def measure(api_clients, namespaces, count, workdir):
    """api_clients: {"a": ApiClient, "b": ApiClient}; namespaces: {"a": ns, "b": ns} (existing).
    Returns {"issue_s": ..., "ssa_8_threads_s": ...}."""
    issue_certs = _issue_certs_module()
    directory = tempfile.mkdtemp(prefix="floor-", dir=workdir)
    paths, ca_key, ca_cert = issue_certs.make_ca(directory)
    names = issue_certs.cert_names(count)
    issue_s = issue_certs.floor(directory, names, ca_key, ca_cert)
    chain, root = _read(paths["cert"]), _read(paths["root"])
    clusters = sorted(api_clients)
    cores = dict((name, client.CoreV1Api(api_clients[name])) for name in clusters)
    for api_client in api_clients.values():
        api_client.configuration.connection_pool_maxsize = kube_floor.THREADS
    jobs = []
    for index, name in enumerate(names):
        cluster = clusters[index % len(clusters)]
        data = {
            "tls.crt": _read(os.path.join(directory, "floor", name + ".crt")) + chain,
            "tls.key": _read(os.path.join(directory, "floor", name + ".key")),
            "ca.crt": root,
        }
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": "floor-" + name, "namespace": namespaces[cluster]},
            "data": dict((key, base64.b64encode(value).decode()) for key, value in data.items()),
        }
        jobs.append((cluster, body))

    def apply(job):
        cluster, body = job
        cores[cluster].patch_namespaced_secret(
            body["metadata"]["name"],
            body["metadata"]["namespace"],
            body,
            field_manager="floor",
            force=True,
            _content_type="application/apply-patch+yaml",
            _preload_content=False,
        ).read()

    def delete(job):
        cluster, body = job
        cores[cluster].delete_namespaced_secret(body["metadata"]["name"], body["metadata"]["namespace"])

    figures = kube_floor.timed_phases((("ssa_8_threads", apply, jobs),), clean_up=(delete, jobs))
    return {"issue_s": round(issue_s, 3), "ssa_8_threads_s": figures["ssa_8_threads"]}

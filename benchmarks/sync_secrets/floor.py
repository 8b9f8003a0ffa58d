# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The floor of Secret delivery: the same Secrets written and read with one `kubernetes`
client in one process, 8 threads, nothing else (no checks, no planning, no Ansible).

  floor.py --kubeconfig K --namespaces ns1,ns2,... --names a,b,... --source-dir D --prefix P

Writes <prefix>-floor-* Secrets (same data as the benchmark's mtls_secret call: tls.crt
with the chain, tls.key, ca.crt) by server-side apply, then reads them back one LIST per
namespace and one GET per Secret, and deletes them again. Prints one JSON object of
seconds: ssa_8_threads, list_per_namespace, get_8_threads.
"""

import argparse
import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client, config


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def main():
    parser = argparse.ArgumentParser()
    for option in ("--kubeconfig", "--namespaces", "--names", "--source-dir", "--prefix"):
        parser.add_argument(option, required=True)
    args = parser.parse_args()
    api_client = config.new_client_from_config(config_file=args.kubeconfig)
    api_client.configuration.connection_pool_maxsize = 8
    core = client.CoreV1Api(api_client)
    namespaces, names = args.namespaces.split(","), args.names.split(",")
    chain, root = _read(args.source_dir + "/inter.crt"), _read(args.source_dir + "/root.crt")

    def manifest(namespace, name):
        data = {"tls.crt": _read("%s/%s.crt" % (args.source_dir, name)) + chain, "tls.key": _read("%s/%s.key" % (args.source_dir, name)), "ca.crt": root}
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": "%s-floor-%s" % (args.prefix, name), "namespace": namespace},
            "data": dict((key, base64.b64encode(value).decode()) for key, value in data.items()),
        }

    jobs = [(namespace, name) for namespace in namespaces for name in names]
    bodies = dict((job, manifest(*job)) for job in jobs)  # built before the clock starts

    def apply(job):
        body = bodies[job]
        core.patch_namespaced_secret(
            body["metadata"]["name"], job[0], body, field_manager="floor", force=True, _content_type="application/apply-patch+yaml", _preload_content=False
        ).read()

    def get(job):
        core.read_namespaced_secret(bodies[job]["metadata"]["name"], job[0], _preload_content=False).read()

    def list_namespace(namespace):
        core.list_namespaced_secret(namespace, _preload_content=False).read()

    figures = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for label, function, items in (("ssa_8_threads", apply, jobs), ("list_per_namespace", list_namespace, namespaces), ("get_8_threads", get, jobs)):
            started = time.perf_counter()
            list(pool.map(function, items))
            figures[label] = round(time.perf_counter() - started, 3)
        list(pool.map(lambda job: core.delete_namespaced_secret(bodies[job]["metadata"]["name"], job[0]), jobs))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

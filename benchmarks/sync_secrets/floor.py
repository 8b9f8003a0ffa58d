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

import base64
import json
import os
import sys

from kubernetes import client

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import kube_floor  # noqa: E402  pylint: disable=wrong-import-position


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def main():
    args, api_client = kube_floor.connect(("--kubeconfig", "--namespaces", "--names", "--source-dir", "--prefix"))
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

    def delete(job):
        core.delete_namespaced_secret(bodies[job]["metadata"]["name"], job[0])

    figures = kube_floor.timed_phases(
        (("ssa_8_threads", apply, jobs), ("list_per_namespace", list_namespace, namespaces), ("get_8_threads", get, jobs)),
        clean_up=(delete, jobs),
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

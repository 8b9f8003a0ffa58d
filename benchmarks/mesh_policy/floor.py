# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The floor of mesh_policy across namespaces: the same Istio objects written and read with
one `kubernetes` client in one process, 8 threads, nothing else (no validation, no
preflight, no planning, no Ansible).

  floor.py --kubeconfig K --namespaces ns1,ns2,... --name N --mode STRICT --allow-namespace A

In every namespace: a PeerAuthentication (mtls.mode) and an AuthorizationPolicy (ALLOW from
namespace A), both named N - the objects of the benchmark's mesh_policy call. Writes them by
server-side apply, reads them back with one LIST per namespace and kind and one GET per
object, deletes them again. Prints one JSON object of seconds: ssa_8_threads,
list_per_namespace, get_8_threads, and objects (how many were written).
"""

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client, config

GROUP, VERSION = "security.istio.io", "v1"
LABELS = {"app.kubernetes.io/managed-by": "zerotrust.mtls"}


def manifests(namespace, name, mode, allow_namespace):
    labels = dict(LABELS, **{"mtls.zerotrust.io/policy-set": name})
    metadata = {"name": name, "namespace": namespace, "labels": labels}
    return [
        ("peerauthentications", {"apiVersion": GROUP + "/" + VERSION, "kind": "PeerAuthentication", "metadata": metadata, "spec": {"mtls": {"mode": mode}}}),
        (
            "authorizationpolicies",
            {
                "apiVersion": GROUP + "/" + VERSION,
                "kind": "AuthorizationPolicy",
                "metadata": metadata,
                "spec": {"action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": [allow_namespace]}}]}]},
            },
        ),
    ]


def main():
    parser = argparse.ArgumentParser()
    for option in ("--kubeconfig", "--namespaces", "--name", "--mode", "--allow-namespace"):
        parser.add_argument(option, required=True)
    args = parser.parse_args()
    api_client = config.new_client_from_config(config_file=args.kubeconfig)
    api_client.configuration.connection_pool_maxsize = 8
    custom = client.CustomObjectsApi(api_client)
    namespaces = args.namespaces.split(",")
    jobs = [(namespace, plural, body) for namespace in namespaces for plural, body in manifests(namespace, args.name, args.mode, args.allow_namespace)]
    plurals = sorted(set(job[1] for job in jobs))

    def apply(job):
        namespace, plural, body = job
        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            plural,
            args.name,
            body,
            field_manager="floor",
            force=True,
            _content_type="application/apply-patch+yaml",
            _preload_content=False,
        ).read()

    def list_namespace(item):
        namespace, plural = item
        custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural, _preload_content=False).read()

    def get(job):
        namespace, plural, _body = job
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, args.name, _preload_content=False).read()

    figures = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for label, function, items in (
            ("ssa_8_threads", apply, jobs),
            ("list_per_namespace", list_namespace, [(namespace, plural) for namespace in namespaces for plural in plurals]),
            ("get_8_threads", get, jobs),
        ):
            started = time.perf_counter()
            list(pool.map(function, items))
            figures[label] = round(time.perf_counter() - started, 3)
        list(pool.map(lambda job: custom.delete_namespaced_custom_object(GROUP, VERSION, job[0], job[1], args.name), jobs))
    figures["objects"] = len(jobs)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

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

import json
import os
import sys

from kubernetes import client

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import kube_floor  # noqa: E402  pylint: disable=wrong-import-position

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
    args, api_client = kube_floor.connect(("--kubeconfig", "--namespaces", "--name", "--mode", "--allow-namespace"))
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

    def delete(job):
        namespace, plural, _body = job
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, args.name)

    figures = kube_floor.timed_phases(
        (
            ("ssa_8_threads", apply, jobs),
            ("list_per_namespace", list_namespace, [(namespace, plural) for namespace in namespaces for plural in plurals]),
            ("get_8_threads", get, jobs),
        ),
        clean_up=(delete, jobs),
    )
    figures["objects"] = len(jobs)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

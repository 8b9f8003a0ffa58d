# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Batches of Kubernetes requests: run them side by side, and choose the creations whose
server-side dry run proves a whole batch of them. Shared by secret_sync (mtls_secret) and
policy_apply (mesh_policy); no AnsibleModule in here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.zerotrust.mtls.plugins.module_utils.kube import ResourceKind
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_access import (
    allowed_in_every_namespace,
    object_admission,
    uniform_rbac,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_errors import KubeError

RESOURCE_QUOTA = ResourceKind("v1", "ResourceQuota", "resourcequotas", True, None)


def run_parallel(function, jobs, workers):
    """Run ``function(job)`` for every job; results in job order. The first error (in job
    order) is raised after all jobs finished, so no job is left half-way."""
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs)))) as pool:
        futures = [pool.submit(function, job) for job in jobs]
    results, errors = [], []
    for future in futures:
        error = future.exception()
        if error is not None:
            errors.append(error)
            results.append(None)
        else:
            results.append(future.result())
    if errors:
        raise errors[0]
    return results


def creations_to_prove(client, creations, workers, only_repeated=False):
    """The creations whose dry run proves that all of ``creations`` will be accepted.

    ``creations`` is a list of (namespace, api_group, resource, entry). Where nothing can
    tell one new object of a resource from another in a namespace - no admission webhook or
    policy selects the resource (kube_access.object_admission) and this user's RBAC grants create
    and patch on all its objects there (kube_access.uniform_rbac) - one dry run per namespace and
    resource stands for all; otherwise every creation is proven. With ``only_repeated``,
    sampling is tried only for the resources of which a namespace gets two or more new
    objects (elsewhere it would cost more requests than it saves). Returns the entries.
    """
    if not creations:
        return []
    counts = {}
    for namespace, group, resource, _entry in creations:
        counts[(namespace, group, resource)] = counts.get((namespace, group, resource), 0) + 1
    resources = sorted(set((group, resource) for (_n, group, resource), count in counts.items() if count > 1 or not only_repeated))
    judged = set((group, resource) for group, resource in resources if object_admission(client, group, resource, "CREATE") != [])
    candidates = sorted(key for key, count in counts.items() if (key[1], key[2]) in set(resources) - judged and (count > 1 or not only_repeated))
    uniform = run_parallel(lambda key: uniform_rbac(client, key[0], key[1], key[2], ("create", "patch")), candidates, workers)
    uniform_keys = set(key for key, flag in zip(candidates, uniform) if flag)
    sampled, seen = [], set()
    for namespace, group, resource, entry in creations:
        key = (namespace, group, resource)
        if key not in uniform_keys:
            sampled.append(entry)
        elif key not in seen:
            seen.add(key)
            sampled.append(entry)
    return sampled


def body_key(manifest):
    """A manifest without its namespace, as text: equal for the copies of one object in
    several namespaces."""
    metadata = dict((k, v) for k, v in manifest["metadata"].items() if k != "namespace")
    return json.dumps(dict(manifest, metadata=metadata), sort_keys=True)


def proof_across_namespaces_cost(creations):
    """Requests that creations_proven_across_namespaces sends (at most)."""
    resources = set((group, resource) for _n, group, resource, _m, _e in creations)
    bodies = set((group, resource, body_key(manifest)) for _n, group, resource, manifest, _e in creations)
    return len(resources) * (2 + 4) + 1 + len(bodies)


def creations_proven_across_namespaces(client, creations, namespaces_by_name, workers):
    """The creations whose dry run proves all of ``creations`` - one per resource and body -
    when nothing can tell the copies of one object in different namespaces apart, else None.

    ``creations`` is a list of (namespace, api_group, resource, manifest, entry), and
    ``namespaces_by_name`` the namespaces as read. The copies are alike when every namespace
    exists and is not terminating, no admission webhook or policy selects the resource
    (kube_access.object_admission), this user may create and patch it in every namespace (one
    SelfSubjectAccessReview per verb, no namespace), and no ResourceQuota is set in the
    namespaces (a quota counts objects per namespace). A schema or CEL rule of the resource
    sees the object, not its namespace, so one dry run of each body proves them all.
    """
    namespaces = set(entry[0] for entry in creations)
    if any(
        (namespaces_by_name.get(namespace) or {}).get("status", {}).get("phase", "Active") != "Active" or namespace not in namespaces_by_name
        for namespace in namespaces
    ):
        return None
    resources = sorted(set((group, resource) for _n, group, resource, _m, _e in creations))
    checks = [("admission", group, resource) for group, resource in resources]
    checks += [(verb, group, resource) for group, resource in resources for verb in ("create", "patch")]
    checks.append(("quota", None, None))

    def check(item):
        what, group, resource = item
        if what == "admission":
            return object_admission(client, group, resource, "CREATE") == []
        if what == "quota":
            try:
                quotas = client.list(RESOURCE_QUOTA)
            except KubeError:
                return False
            return not any((quota.get("metadata") or {}).get("namespace") in namespaces for quota in quotas)
        return allowed_in_every_namespace(client, group, resource, what)

    if not all(run_parallel(check, checks, workers)):
        return None
    proven, seen = [], set()
    for _namespace, group, resource, manifest, entry in creations:
        key = (group, resource, body_key(manifest))
        if key not in seen:
            seen.add(key)
            proven.append(entry)
    return proven

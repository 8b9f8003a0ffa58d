# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Batches of Kubernetes requests: run them side by side, and choose the creations whose
server-side dry run proves a whole batch of them. Shared by secret_sync (mtls_secret) and
policy_sync (mesh_policy); no AnsibleModule in here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.zerotrust.mtls.plugins.module_utils.kube import (
    object_admission,
    uniform_rbac,
)


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
    policy selects the resource (kube.object_admission) and this user's RBAC grants create
    and patch on all its objects there (kube.uniform_rbac) - one dry run per namespace and
    resource stands for all; otherwise every creation is proven. With ``only_repeated``,
    sampling is tried only for the resources of which a namespace gets two or more new
    objects (elsewhere it would cost more requests than it saves). Returns the entries.
    """
    if not creations:
        return []
    counts = {}
    for namespace, group, resource, _entry in creations:
        counts[(namespace, group, resource)] = counts.get((namespace, group, resource), 0) + 1
    resources = sorted(set((group, resource) for (_n, group, resource), count in counts.items()
                           if count > 1 or not only_repeated))
    judged = set((group, resource) for group, resource in resources
                 if object_admission(client, group, resource, "CREATE") != [])
    candidates = sorted(key for key, count in counts.items()
                        if (key[1], key[2]) in set(resources) - judged and (count > 1 or not only_repeated))
    uniform = run_parallel(lambda key: uniform_rbac(client, key[0], key[1], key[2], ("create", "patch")),
                           candidates, workers)
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

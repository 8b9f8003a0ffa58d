# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a mesh policy's plan needs from the cluster, read in the fewest requests.

For each target namespace: the stored objects the policy declares, the objects of its
policy set (prune, state absent), the namespace itself and, before STRICT, the pods the
preflight looks at. A call across namespaces reads what one cluster-wide LIST can give
for all of them first (``prefetch``). Nothing is written here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.mtls.plugins.module_utils.kube import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    NAMESPACE,
    POD,
    kind_for,
    resource_path,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_batch import run_parallel
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_errors import KubeError
from ansible_collections.zerotrust.mtls.plugins.module_utils.policy import (
    POLICY_SET_LABEL,
    pods_without_sidecar,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.policy_manifests import (
    desired_objects,
    managed_kinds,
)


def preflight_applies(params, policy):
    return params["preflight"] != "skip" and policy.strict_requested()


def list_managed(client, policy):
    selector = "%s=%s,%s=%s" % (MANAGED_BY_LABEL, MANAGED_BY_VALUE, POLICY_SET_LABEL, policy.policy_set)
    found = []
    for api_version, kind_name in managed_kinds(policy.mesh):
        kind = kind_for(api_version, kind_name)
        for item in client.list(kind, policy.namespace, selector):
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind_name)
            found.append(item)
    return found


def prefetch(client, params, policies):
    """For a call across namespaces, what one request can read for all of them: the declared
    objects by one LIST per kind and name across the cluster (fieldSelector metadata.name),
    and the namespaces by one LIST. Each is None where this user may not list cluster-wide
    (403): read_namespace then reads per namespace."""
    found = dict(objects=None, namespaces=None)
    if len(policies) < 2:
        return found
    wanted = set(policy.namespace for policy in policies)
    if params["state"] == "present":
        keys = sorted(set((m["apiVersion"], m["kind"], m["metadata"]["name"]) for policy in policies for m in desired_objects(policy)))

        def list_named(key):
            api_version, kind_name, name = key
            kind = kind_for(api_version, kind_name)
            answer = client.request("GET", resource_path(kind), "list", kind, query=[("fieldSelector", "metadata.name=" + name)])
            items = []
            for item in answer.get("items") or []:
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind_name)
                items.append(((kind.plural, item["metadata"].get("namespace"), name), item))
            return items

        try:
            found["objects"] = dict(pair for items in run_parallel(list_named, keys, params["parallel"]) for pair in items if pair[0][1] in wanted)
        except KubeError as error:
            if error.status != 403:
                raise
    try:
        found["namespaces"] = dict((ns["metadata"]["name"], ns) for ns in client.list(NAMESPACE))
    except KubeError as error:
        if error.status != 403:
            raise
    return found


def read_namespace(client, params, policy, found):
    """What one namespace's plan needs, in the fewest requests: the stored objects the policy
    declares (from prefetch, else a GET each), the objects of the set (prune, absent), the
    namespace itself (the preflight, Linkerd's annotation; from prefetch, else a GET) and the
    pods (the preflight). Without prefetch, the namespace is looked up on its own only when
    nothing read proves that it exists."""
    present = params["state"] == "present"
    view = dict(exists=None, namespace_obj=None, existing=[], managed=[], pods_without_sidecar=[])
    if present:
        view["manifests"] = desired_objects(policy)
        for m in view["manifests"]:
            kind = kind_for(m["apiVersion"], m["kind"])
            if found["objects"] is not None:
                existing = found["objects"].get((kind.plural, policy.namespace, m["metadata"]["name"]))
            else:
                existing = client.get(kind, m["metadata"]["name"], policy.namespace)
            view["existing"].append(existing)
    if not present or params["prune"]:
        view["managed"] = list_managed(client, policy)
    needs_namespace = policy.mesh == "linkerd" or (present and preflight_applies(params, policy) and policy.scope != "mesh")
    if found["namespaces"] is not None:
        view["namespace_obj"] = found["namespaces"].get(policy.namespace)
        view["exists"] = view["namespace_obj"] is not None
    elif needs_namespace:
        view["namespace_obj"] = client.get(NAMESPACE, policy.namespace)
        view["exists"] = view["namespace_obj"] is not None
    elif any(view["existing"]) or view["managed"]:
        view["exists"] = True
    else:
        view["exists"] = client.namespace_exists(policy.namespace)
    if view["exists"] is not False and present and preflight_applies(params, policy):
        if policy.scope == "mesh":
            pods = client.list(POD)
            namespaces = dict((ns["metadata"]["name"], ns) for ns in client.list(NAMESPACE))
        else:
            pods = client.list(POD, policy.namespace)
            namespaces = {policy.namespace: view["namespace_obj"]}
        view["pods_without_sidecar"] = pods_without_sidecar(policy, pods, namespaces)
    return view


def read_all(client, params, policies):
    """Every namespace read side by side: (found, views); a missing namespace stops the call."""
    field = "namespaces" if params.get("namespaces") is not None else "namespace"
    found = prefetch(client, params, policies)
    views = run_parallel(lambda policy: read_namespace(client, params, policy, found), policies, params["parallel"])
    for policy, view in zip(policies, views):
        if view["exists"] is False:
            raise KubeError("namespace %s does not exist; create it first or correct %s." % (policy.namespace, field), field=field)
    return found, views

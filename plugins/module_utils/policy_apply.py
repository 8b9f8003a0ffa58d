# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Applying a mesh policy to one or many namespaces: the backend of mesh_policy.

plugins/modules/mesh_policy.py (as a module) and plugins/action/mesh_policy.py (in the
controller process, see plugins/plugin_utils/in_process.py) both import this file. A run
is: decide without the cluster (``policies_from_params``, policy.validate), read every
namespace (policy_read.read_all), plan (``plan_namespace``), prove every write whose
outcome is not certain by a server-side dry run (``prove``), then write (``write``).
Nothing is written before everything is read and proven. The backend interface is the one
module_utils/module_backend.py describes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible_collections.zerotrust.mtls.plugins.module_utils.args_kube_auth import APPLY_SPEC, KUBE_AUTH_SPEC
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube import KubeClient, kind_for
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_batch import (
    creations_proven_across_namespaces,
    creations_to_prove,
    proof_across_namespaces_cost,
    run_parallel,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_connection import ConnectionSettings
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_errors import KubeError
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_fields import apply_needed, comparable, owned_fields
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_validation import validate_namespace_name
from ansible_collections.zerotrust.mtls.plugins.module_utils.policy import (
    LINKERD_INBOUND_ANNOTATION,
    MeshPolicy,
    PolicyError,
    check_names,
    validate,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.policy_manifests import (
    linkerd_namespace_patch,
    objects_to_prune,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.policy_read import preflight_applies, read_all


def policy_from_params(params, namespace=None):
    return MeshPolicy(
        name=params["name"],
        namespace=namespace or params["namespace"] or params["root_namespace"],
        mode=params["mode"],
        selector=params["selector"],
        port_modes=params["port_modes"],
        root_namespace=params["root_namespace"],
        destination_rule=dict(params["destination_rule"]) if params["destination_rule"] else None,
        allow_principals=params["allow_principals"],
        allow_namespaces=params["allow_namespaces"],
        mesh=params["mesh"],
        policy_set=params["policy_set"],
        port=params["port"],
        trust_domain=params["trust_domain"],
    )


def policies_from_params(params):
    """One MeshPolicy per target namespace (O(namespaces), or the one O(namespace))."""
    names = params.get("namespaces")
    if names is None:
        return [policy_from_params(params)]
    if not names:
        raise PolicyError("namespaces is empty; list at least one namespace.", field="namespaces")
    ordered = []
    for index, namespace in enumerate(names):
        try:
            validate_namespace_name(namespace, "namespaces[%d]" % index)
        except KubeError as error:
            raise PolicyError(str(error), field="namespaces")
        if namespace == params["root_namespace"]:
            raise PolicyError(
                "namespaces lists the root namespace %s, where a policy without a "
                "selector is mesh-wide; write the mesh-wide policy in a task of its "
                "own with namespace." % namespace,
                field="namespaces",
            )
        if namespace not in ordered:  # a namespace listed twice is written once
            ordered.append(namespace)
    return [policy_from_params(params, namespace) for namespace in ordered]


def preflight(params, policies, found_by_namespace, warnings):
    """The pods STRICT would cut off (all namespaces), or None when the preflight does not
    apply; raises PreflightError under preflight: fail, adds a warning under warn."""
    if not preflight_applies(params, policies[0]):
        return None
    found = sorted(pod for policy in policies for pod in found_by_namespace[policy.namespace])
    if found and params["preflight"] == "fail":
        proxy = "istio-proxy" if policies[0].mesh == "istio" else "linkerd-proxy"
        raise PreflightError(
            "preflight: %d pod(s) in scope run without the %s sidecar in a namespace that "
            "does not inject one, and STRICT would cut them off: %s; inject the sidecar "
            "and restart them, start with PERMISSIVE, or set preflight: warn."
            % (len(found), proxy, ", ".join(found[:20]) + (" ..." if len(found) > 20 else "")),
            found,
        )
    if found:
        warnings.append("preflight: STRICT applied while %d pod(s) have no sidecar: %s" % (len(found), ", ".join(found[:20])))
    return found


def namespace_view(namespace_obj):
    metadata = (namespace_obj or {}).get("metadata") or {}
    return {"annotations": dict((k, v) for k, v in (metadata.get("annotations") or {}).items() if k == LINKERD_INBOUND_ANNOTATION)}


def object_view(obj):
    if obj is None:
        return None
    view = comparable(obj)
    metadata = view.get("metadata") or {}
    view["metadata"] = dict((k, metadata[k]) for k in ("name", "namespace", "labels") if k in metadata)
    return view


def plan_namespace(params, policy, view):
    """[(manifest, existing, reason)] to apply and [(object, action)] to delete."""
    applies, deletes = [], []
    if params["state"] == "present":
        for manifest, existing in zip(view["manifests"], view["existing"]):
            applies.append((manifest, existing, apply_needed(existing, manifest, owned_fields(existing or {}))))
        namespace_patch = linkerd_namespace_patch(policy)
        if namespace_patch is not None:
            applies.append((namespace_patch, view["namespace_obj"], "namespace"))
        if params["prune"]:
            deletes = [(obj, "pruned") for obj in objects_to_prune(view["managed"], view["manifests"])]
    else:
        deletes = [(obj, "deleted") for obj in view["managed"]]
        if policy.mesh == "linkerd":
            annotations = owned_fields(view["namespace_obj"] or {}).get("f:metadata", {}).get("f:annotations", {})
            if "f:" + LINKERD_INBOUND_ANNOTATION in annotations:
                release = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": policy.namespace}}
                applies.append((release, view["namespace_obj"], "release"))
    return applies, deletes


class PreflightError(PolicyError):
    """preflight: fail found pods STRICT would cut off; ``pods`` lists them."""

    def __init__(self, message, pods):
        super(PreflightError, self).__init__(message, field="preflight")
        self.pods = pods


def prove(client, params, found, applies, deletes):
    """A server-side dry run of every write whose outcome is not certain (an update, the
    Linkerd annotation, a deletion) and of the creations that prove all creations
    (kube_batch.creations_to_prove). Schema (CEL) errors, RBAC, admission and field-manager
    conflicts stop the call here, in every namespace, before anything is stored. What
    would change nothing is neither proven nor written. Returns {id(entry): dry-run answer}."""
    workers, force = params["parallel"], params["force_conflicts"]
    creations = []
    for entry in applies:
        if entry[2] == "created":
            kind = kind_for(entry[0]["apiVersion"], entry[0]["kind"])
            creations.append((entry[0]["metadata"]["namespace"], kind.api_version.rpartition("/")[0], kind.plural, entry[0], entry))
    proving = None
    if found["namespaces"] is not None and len(creations) > proof_across_namespaces_cost(creations):
        proving = creations_proven_across_namespaces(client, creations, found["namespaces"], workers)
    if proving is None:
        proving = creations_to_prove(client, [c[:3] + c[4:] for c in creations], workers, only_repeated=True)
    proven = set(id(entry) for entry in proving)
    to_prove = [entry for entry in applies if entry[2] is not None and (entry[2] != "created" or id(entry) in proven)]
    predicted = dict(
        zip([id(entry) for entry in to_prove], run_parallel(lambda entry: client.apply(entry[0], dry_run=True, force_conflicts=force), to_prove, workers))
    )
    run_parallel(lambda item: _delete(client, item[0], dry_run=True), deletes, workers)
    return predicted


def _delete(client, obj, dry_run=False):
    return client.delete(kind_for(obj["apiVersion"], obj["kind"]), obj["metadata"]["name"], obj["metadata"].get("namespace"), dry_run=dry_run)


def decide_writes(applies, predicted, result, before, after):
    """The manifests that change something, by the proven outcome; reports every object."""
    writes = []
    for entry in applies:
        manifest, existing, reason = entry
        metadata = manifest["metadata"]
        outcome = predicted.get(id(entry), manifest if reason == "created" else existing)
        if manifest["kind"] == "Namespace":
            changed = reason == "release" or namespace_view(existing) != namespace_view(outcome)
            action = "updated" if changed else "unchanged"
            if changed:
                before.append({"namespace": metadata["name"], **namespace_view(existing)})
                after.append({"namespace": metadata["name"], **namespace_view(outcome)})
        else:
            changed = reason is not None and comparable(existing) != comparable(outcome)
            action = ("created" if existing is None else "updated") if changed else "unchanged"
            if changed:
                before.append(object_view(existing))
                after.append(object_view(outcome))
        if changed:
            writes.append(manifest)
        result["objects"].append(dict(kind=manifest["kind"], namespace=metadata.get("namespace", metadata["name"]), name=metadata["name"], action=action))
        result["changed"] = result["changed"] or changed
    return writes


def write(client, params, writes, deletes):
    workers = params["parallel"]
    run_parallel(lambda manifest: client.apply(manifest, force_conflicts=params["force_conflicts"]), writes, workers)
    run_parallel(lambda item: _delete(client, item[0]), deletes, workers)


def run(module, client, policies):
    """Applies ``policies`` for ``module`` (params, check_mode, _diff); returns the result."""
    params = module.params
    warnings = []
    # Read every namespace side by side; nothing is written before all are read and proven.
    found, views = read_all(client, params, policies)
    result = dict(changed=False, objects=[], scope=policies[0].scope)
    missing = preflight(params, policies, dict((policy.namespace, view["pods_without_sidecar"]) for policy, view in zip(policies, views)), warnings)
    if missing is not None:
        result["pods_without_sidecar"] = missing
    applies, deletes = [], []
    for policy, view in zip(policies, views):
        namespace_applies, namespace_deletes = plan_namespace(params, policy, view)
        applies += namespace_applies
        deletes += namespace_deletes
    if params["state"] == "present":
        result["manifests"] = [m for view in views for m in view["manifests"]]

    predicted = prove(client, params, found, applies, deletes)
    before, after = [], []
    writes = decide_writes(applies, predicted, result, before, after)
    if not module.check_mode:
        write(client, params, writes, deletes)
    for obj, action in deletes:
        before.append(object_view(obj))
        result["objects"].append(dict(kind=obj["kind"], namespace=obj["metadata"]["namespace"], name=obj["metadata"]["name"], action=action))
        result["changed"] = True

    if module._diff:
        result["diff"] = dict(before=before, after=after)
    if warnings:
        result["warnings"] = warnings
    return result


def argument_spec():
    spec = dict(
        mesh=dict(type="str", default="istio", choices=["istio", "linkerd"]),
        mode=dict(type="str", choices=["STRICT", "PERMISSIVE", "DISABLE", "UNSET"]),
        namespace=dict(type="str"),
        namespaces=dict(type="list", elements="str"),
        name=dict(type="str", default="default"),
        selector=dict(type="dict"),
        port_modes=dict(type="dict"),
        root_namespace=dict(type="str", default="istio-system"),
        destination_rule=dict(
            type="dict",
            options=dict(
                host=dict(type="str", required=True),
                tls_mode=dict(type="str", default="ISTIO_MUTUAL", choices=["ISTIO_MUTUAL", "MUTUAL", "SIMPLE", "DISABLE"]),
                credential_name=dict(type="str"),
                sni=dict(type="str"),
                subject_alt_names=dict(type="list", elements="str"),
            ),
        ),
        allow_principals=dict(type="list", elements="str", default=[]),
        allow_namespaces=dict(type="list", elements="str", default=[]),
        port=dict(type="int"),
        trust_domain=dict(type="str", default="cluster.local"),
        policy_set=dict(type="str"),
        prune=dict(type="bool", default=False),
        preflight=dict(type="str", default="fail", choices=["fail", "warn", "skip"]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    spec.update(KUBE_AUTH_SPEC)
    spec.update(APPLY_SPEC)
    return spec


VALIDATION_RULES = dict(mutually_exclusive=[("namespace", "namespaces")])

# Policies the mesh would reject or ignore, and refusals of the cluster: one sentence each.
KNOWN_ERRORS = (PolicyError, KubeError)


def failure_result(error):
    result = dict(msg=str(error), changed=False)
    if isinstance(error, PreflightError):
        result["pods_without_sidecar"] = error.pods
    return result


def unexpected_failure_result(error):
    return dict(msg="mesh_policy failed unexpectedly: %s: %s" % (type(error).__name__, error), exception=traceback.format_exc(), changed=False)


def run_module(module):
    """Checks the policy without the cluster, then applies it (see run)."""
    params = module.params
    if not 1 <= params["parallel"] <= 64:
        raise PolicyError("parallel %s is out of range; use 1 to 64." % params["parallel"])
    policies = policies_from_params(params)
    for policy in policies:
        if params["state"] == "present":
            validate(policy)
        else:
            # Removal needs only a valid name and namespace, not a complete policy.
            check_names(policy)
    client = KubeClient(ConnectionSettings.from_params(params), pool_size=max(params["parallel"], 4))
    try:
        return run(module, client, policies)
    finally:
        client.close()

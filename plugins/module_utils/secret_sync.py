# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Delivery of planned Secrets into namespaces: read, decide, prove, then write.

The backend of mtls_secret once its input is checked. It keeps one promise: a call that
cannot complete changes nothing. What could refuse a write (a missing namespace, RBAC,
admission, a field owned by another manager, a Secret whose type cannot change) is found
before the first write, in every namespace. It does so near the cost of the writes alone:

- reads: one LIST per namespace that holds two or more of the Secrets, a GET otherwise
  (and per Secret where this user may get but not list);
- a namespace is looked up only when the dry run of a creation in it answers 404 (a
  LIST of a missing namespace answers an empty list, a Secret that exists proves its
  namespace, and every namespace with a creation gets at least one dry run);
- the proof is a server-side dry run of every update and deletion (field ownership is
  per object), and of creations either every one or, where nothing can tell one new
  Secret from another, one per namespace: no admission webhook or policy selects Secrets
  and this user's RBAC grants create and patch on all Secrets of the namespace (see
  kube_batch.creations_to_prove).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.mtls.plugins.module_utils.kube import SECRET
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_batch import (
    creations_to_prove,
    run_parallel,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_errors import KubeError
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_fields import owned_fields
from ansible_collections.zerotrust.mtls.plugins.module_utils.secret_layouts import LAYOUTS
from ansible_collections.zerotrust.mtls.plugins.module_utils.secret_objects import (
    decoded_data,
    secret_manifest,
    secret_type,
    summarize_data,
    summarize_value,
    write_needed,
)


def read_existing(client, names_by_namespace, workers):
    """{(namespace, name): the Secret or None}, in as few requests as the rights allow."""

    def read_namespace(item):
        namespace, names = item
        if len(names) > 1:
            try:
                found = dict(((secret.get("metadata") or {}).get("name"), secret) for secret in client.list(SECRET, namespace))
                return [((namespace, name), found.get(name)) for name in names]
            except KubeError as error:
                if error.status != 403:
                    raise
                # May get but not list: read the Secrets one by one below.
        return [((namespace, name), client.get(SECRET, name, namespace)) for name in names]

    existing = {}
    for pairs in run_parallel(read_namespace, sorted(names_by_namespace.items()), workers):
        existing.update(pairs)
    return existing


def dry_runs_needed(client, writes, workers):
    """The writes whose dry run proves that all of ``writes`` will be accepted."""

    def is_creation(entry):
        current, desired, _reason = entry[1]
        return current is None and desired is not None

    creations = [(entry[0][0], "", "secrets", entry) for entry in writes if is_creation(entry)]
    others = [entry for entry in writes if not is_creation(entry)]
    return others + creations_to_prove(client, creations, workers)


def secret_view(secret, layout):
    """What diff may show of a Secret: type, labels, annotations and fingerprints."""
    if not secret:
        return {}
    metadata = secret.get("metadata") or {}
    data = decoded_data(secret)
    roles = LAYOUTS.get(layout, {}).get("keys", {})
    return {
        "type": secret.get("type"),
        "labels": metadata.get("labels") or {},
        "annotations": metadata.get("annotations") or {},
        "data": dict((key, summarize_value(roles.get(key, "opaque"), value)) for key, value in sorted(data.items())),
    }


def decide(current, namespace, planned_entry, layout, absent):
    """(current, desired, reason to write or None) for one Secret in one namespace."""
    name, data, labels, annotations = planned_entry
    if absent:
        return current, None, ("delete" if current is not None else None)
    desired = secret_manifest(name, namespace, layout, data, labels, annotations)
    if current is not None and current.get("type") != desired["type"]:
        raise KubeError(
            "Secret %s/%s has type %s but layout %s writes %s, and a Secret's type cannot "
            "change; delete it first (state: absent) or use another name." % (namespace, name, current.get("type"), layout, desired["type"]),
            field="layout",
        )
    return current, desired, write_needed(current, desired, owned_fields(current or {}))


def sync(client, params, namespaces, planned, check_mode=False, diff=False):
    """Deliver ``planned`` [(name, data, labels, annotations)] into ``namespaces``."""
    layout, absent = params["layout"], params["state"] == "absent"
    workers = params["parallel"]
    jobs = [(namespace, entry) for namespace in namespaces for entry in planned]

    # Read. Unreadable Secrets stop the run here, before anything is written anywhere.
    names_by_namespace = dict((namespace, [entry[0] for entry in planned]) for namespace in namespaces)
    existing = read_existing(client, names_by_namespace, workers)
    decisions = [decide(existing[(namespace, entry[0])], namespace, entry, layout, absent) for namespace, entry in jobs]
    writes = [((namespace, entry[0]), state) for (namespace, entry), state in zip(jobs, decisions) if state[2]]

    def write(entry, dry_run):
        (namespace, name), (_current, desired, _reason) = entry
        if absent:
            return client.delete(SECRET, name, namespace, dry_run=dry_run)
        return client.apply(desired, dry_run=dry_run, force_conflicts=params["force_conflicts"])

    def prove(entry):
        try:
            return write(entry, True)
        except KubeError as error:
            # A creation refused with 404: say so plainly when its namespace is missing.
            namespace = entry[0][0]
            if error.status == 404 and entry[1][0] is None and client.namespace_exists(namespace) is False:
                raise KubeError("namespace %s does not exist; create it first or remove it from namespace/namespaces." % namespace)
            raise

    # Prove, then write: a missing namespace, RBAC, admission and conflicts are refused for
    # all namespaces before any of them is changed.
    run_parallel(prove, dry_runs_needed(client, writes, workers), workers)
    if not check_mode:
        run_parallel(lambda entry: write(entry, False), writes, workers)
    return report(jobs, decisions, planned, layout, absent, diff)


def report(jobs, decisions, planned, layout, absent, diff):
    """The result of a run: what happened to each Secret, and the diff when asked."""
    secrets, before, after = [], {}, {}
    for (namespace, (name, _d, _l, _a)), (current, desired, reason) in zip(jobs, decisions):
        if absent:
            action = "deleted" if reason else "absent"
        elif reason is None:
            action = "unchanged"
        else:
            action = "created" if current is None else "updated"
        secrets.append(dict(namespace=namespace, name=name, action=action, reason=reason if reason and not absent else "none"))
        if reason:
            key = "%s/%s" % (namespace, name)
            before[key] = secret_view(current, layout)
            after[key] = {} if absent else secret_view(desired, layout)
    result = dict(changed=any(decision[2] for decision in decisions), secrets=secrets)
    if not absent:
        result["fingerprints"] = dict((name, summarize_data(layout, data)) for name, data, _l, _a in planned)
        result["secret_type"] = secret_type(layout)
    if diff:
        result["diff"] = dict(before=before, after=after)
    return result

# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What could judge one write apart from another: admission webhooks and policies, and RBAC.

The backends prove every write by a server-side dry run before the first real one. Where
nothing here can tell one new object from another, one dry run stands for many
(kube_batch); each function answers "cannot tell" (None or False) when the cluster does
not let this user read the answer, so the callers fall back to proving every write.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.mtls.plugins.module_utils.kube import ResourceKind, resource_path
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_errors import KubeError

# The admission objects that can judge one object differently from its neighbours; read
# only to decide whether a dry run of every write is needed (see object_admission).
ADMISSION_KINDS = (
    ResourceKind("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", False, None),
    ResourceKind("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", False, None),
    ResourceKind("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", "validatingadmissionpolicies", False, None),
    ResourceKind("admissionregistration.k8s.io/v1beta1", "MutatingAdmissionPolicy", "mutatingadmissionpolicies", False, None),
)
SELF_SUBJECT_RULES_REVIEW = ResourceKind("authorization.k8s.io/v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", False, None)
SELF_SUBJECT_ACCESS_REVIEW = ResourceKind("authorization.k8s.io/v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False, None)


def _rules_of(item):
    """The rules of a webhook configuration (all its webhooks) or an admission policy."""
    rules = []
    for webhook in item.get("webhooks") or []:
        rules += webhook.get("rules") or []
    constraints = (item.get("spec") or {}).get("matchConstraints")
    if constraints is not None:
        # A policy without resource rules matches nothing, but say "may judge" rather
        # than trust an unusual shape.
        everything = {"apiGroups": ["*"], "resources": ["*"], "operations": ["*"]}
        rules += constraints.get("resourceRules") or [everything]
    return rules


def rule_covers(rule, group, resource, operation):
    """Whether an admission rule selects ``operation`` on ``group``/``resource``."""
    groups = rule.get("apiGroups") or []
    resources = rule.get("resources") or []
    operations = rule.get("operations") or []
    return (
        (group in groups or "*" in groups)
        and any(r in ("*", "*/*", resource, resource + "/*") for r in resources)
        and (operation in operations or "*" in operations)
    )


def object_admission(client, group, resource, operation):
    """Which webhooks or admission policies may judge one ``resource`` object apart from
    another (a list of names), or None when that cannot be read.

    Without any, what decides the creation of an object is RBAC and the built-in admission
    plugins; where RBAC grants the verbs without naming objects (uniform_rbac), they answer
    alike for every new object of a namespace, so a dry run of one creation per namespace
    proves as much as a dry run of each.
    """
    names = []
    for kind in ADMISSION_KINDS:
        try:
            items = client.list(kind)
        except KubeError as error:
            if error.status == 404 and kind.api_version.endswith("beta1"):
                continue  # the beta API is not served: no such policies
            return None
        names += [
            "%s %s" % (kind.kind, (item.get("metadata") or {}).get("name"))
            for item in items
            if any(rule_covers(rule, group, resource, operation) for rule in _rules_of(item))
        ]
    return names


def _review(client, kind, spec):
    """The status of a self-review of this user, or None when it cannot be asked."""
    review = {"apiVersion": kind.api_version, "kind": kind.kind, "spec": spec}
    try:
        answer = client.request("POST", resource_path(kind), "create", kind, body=review)
    except KubeError:
        return None
    return answer.get("status") or {}


def uniform_rbac(client, namespace, group, resource, verbs):
    """Whether this user holds every verb of ``verbs`` on all ``resource`` objects of the
    namespace, by a rule that names no objects (so it answers alike for any name).

    False when the server cannot say for sure (an incomplete review, or no right to ask).
    """
    status = _review(client, SELF_SUBJECT_RULES_REVIEW, {"namespace": namespace})
    if status is None or status.get("incomplete"):
        return False
    rules = [
        rule
        for rule in status.get("resourceRules") or []
        if not rule.get("resourceNames")
        and (group in (rule.get("apiGroups") or []) or "*" in (rule.get("apiGroups") or []))
        and (resource in (rule.get("resources") or []) or "*" in (rule.get("resources") or []))
    ]
    granted = set()
    for rule in rules:
        granted.update(rule.get("verbs") or [])
    return "*" in granted or set(verbs) <= granted


def allowed_in_every_namespace(client, group, resource, verb):
    """Whether this user may ``verb`` ``resource`` in every namespace (a review without a
    namespace: a cluster-wide grant). False when the server cannot say."""
    status = _review(client, SELF_SUBJECT_ACCESS_REVIEW, {"resourceAttributes": {"group": group, "resource": resource, "verb": verb}})
    return bool((status or {}).get("allowed"))

# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Istio and Linkerd manifests of a mesh policy that policy.validate() accepted.

Every object carries the policy set's labels (MeshPolicy.managed_labels), so the objects a
set no longer declares can be found and pruned. Pure: no Kubernetes calls here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.mtls.plugins.module_utils.policy import (
    LINKERD_INBOUND_ANNOTATION,
    LINKERD_POLICY_FOR_MODE,
    identity_for_linkerd,
    principal_for_istio,
)

ISTIO_API = "security.istio.io/v1"
ISTIO_NETWORKING_API = "networking.istio.io/v1"
LINKERD_API = "policy.linkerd.io"
LINKERD_SERVER_API = LINKERD_API + "/v1beta3"
LINKERD_ALPHA_API = LINKERD_API + "/v1alpha1"


def _metadata(policy, name, namespace=None):
    return {"name": name, "namespace": namespace or policy.namespace, "labels": policy.managed_labels()}


def istio_objects(policy):
    """The Istio manifests of a validated policy."""
    objects = []
    if policy.mode or policy.port_modes:
        spec = {}
        if policy.match_labels:
            spec["selector"] = {"matchLabels": dict(policy.match_labels)}
        if policy.mode:
            spec["mtls"] = {"mode": policy.mode}
        if policy.port_modes:
            spec["portLevelMtls"] = dict((port, {"mode": mode}) for port, mode in sorted(policy.port_modes.items()))
        objects.append({"apiVersion": ISTIO_API, "kind": "PeerAuthentication", "metadata": _metadata(policy, policy.name), "spec": spec})
    rule = policy.destination_rule
    if rule is not None:
        tls = {"mode": rule["tls_mode"]}
        if rule.get("credential_name"):
            tls["credentialName"] = rule["credential_name"]
        if rule.get("sni"):
            tls["sni"] = rule["sni"]
        if rule.get("subject_alt_names"):
            tls["subjectAltNames"] = list(rule["subject_alt_names"])
        objects.append(
            {
                "apiVersion": ISTIO_NETWORKING_API,
                "kind": "DestinationRule",
                "metadata": _metadata(policy, policy.name),
                "spec": {"host": rule["host"], "trafficPolicy": {"tls": tls}},
            }
        )
    if policy.allow_principals or policy.allow_namespaces:
        sources = []
        if policy.allow_principals:
            sources.append({"source": {"principals": [principal_for_istio(p, "allow_principals") for p in policy.allow_principals]}})
        if policy.allow_namespaces:
            sources.append({"source": {"namespaces": list(policy.allow_namespaces)}})
        spec = {"action": "ALLOW", "rules": [{"from": sources}]}
        if policy.match_labels:
            spec["selector"] = {"matchLabels": dict(policy.match_labels)}
        objects.append({"apiVersion": ISTIO_API, "kind": "AuthorizationPolicy", "metadata": _metadata(policy, policy.name), "spec": spec})
    return objects


def linkerd_objects(policy):
    """The Linkerd manifests of a validated policy (the namespace annotation is separate:
    see linkerd_namespace_patch)."""
    objects = []
    selector = {"matchLabels": dict(policy.match_labels)}
    for port, mode in sorted(policy.port_modes.items(), key=lambda item: int(item[0])):
        objects.append(
            {
                "apiVersion": LINKERD_SERVER_API,
                "kind": "Server",
                "metadata": _metadata(policy, "%s-%s" % (policy.name, port)),
                "spec": {"podSelector": selector, "port": int(port), "accessPolicy": LINKERD_POLICY_FOR_MODE[mode]},
            }
        )
    if policy.allow_principals or policy.allow_namespaces:
        identities = [identity_for_linkerd(p, "allow_principals") for p in policy.allow_principals]
        identities += ["*.%s.serviceaccount.identity.linkerd.%s" % (ns, policy.trust_domain) for ns in policy.allow_namespaces]
        objects.append(
            {
                "apiVersion": LINKERD_SERVER_API,
                "kind": "Server",
                "metadata": _metadata(policy, policy.name),
                # deny: only the AuthorizationPolicy below admits clients
                "spec": {"podSelector": selector, "port": int(policy.port), "accessPolicy": "deny"},
            }
        )
        objects.append(
            {"apiVersion": LINKERD_ALPHA_API, "kind": "MeshTLSAuthentication", "metadata": _metadata(policy, policy.name), "spec": {"identities": identities}}
        )
        objects.append(
            {
                "apiVersion": LINKERD_ALPHA_API,
                "kind": "AuthorizationPolicy",
                "metadata": _metadata(policy, policy.name),
                "spec": {
                    "targetRef": {"group": LINKERD_API, "kind": "Server", "name": policy.name},
                    "requiredAuthenticationRefs": [{"group": LINKERD_API, "kind": "MeshTLSAuthentication", "name": policy.name}],
                },
            }
        )
    return objects


def linkerd_namespace_patch(policy, remove=False):
    """Server-side apply body for the namespace default-inbound-policy annotation, or None
    when this policy does not set a namespace mode. Applying it without the annotation
    (remove=True) drops the annotation that field manager zerotrust.mtls owns."""
    if policy.mesh != "linkerd" or policy.mode is None:
        return None
    metadata = {"name": policy.namespace}
    if not remove and policy.mode in LINKERD_POLICY_FOR_MODE:
        metadata["annotations"] = {LINKERD_INBOUND_ANNOTATION: LINKERD_POLICY_FOR_MODE[policy.mode]}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def desired_objects(policy):
    return istio_objects(policy) if policy.mesh == "istio" else linkerd_objects(policy)


def managed_kinds(mesh):
    """(apiVersion, kind) of everything a policy of this mesh may create (for prune)."""
    if mesh == "istio":
        return [(ISTIO_API, "PeerAuthentication"), (ISTIO_NETWORKING_API, "DestinationRule"), (ISTIO_API, "AuthorizationPolicy")]
    return [(LINKERD_ALPHA_API, "AuthorizationPolicy"), (LINKERD_ALPHA_API, "MeshTLSAuthentication"), (LINKERD_SERVER_API, "Server")]


def objects_to_prune(existing, desired):
    """Managed objects of the set that the current policy no longer declares."""
    wanted = set((o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in desired)
    return [o for o in existing if (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) not in wanted]

# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mesh policy model: the module's options as a MeshPolicy, with Istio's and Linkerd's own
rules checked before the API server sees anything (validate), and the pods STRICT would
cut off (the preflight). The manifests of a valid policy are policy_manifests'. Pure: no
Kubernetes calls, no AnsibleModule."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube import MANAGED_BY_LABEL, MANAGED_BY_VALUE
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_errors import KubeError
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_validation import (
    validate_labels,
    validate_namespace_name,
    validate_object_name,
)

PEER_AUTHENTICATION_MODES = ("STRICT", "PERMISSIVE", "DISABLE", "UNSET")
DESTINATION_TLS_MODES = ("ISTIO_MUTUAL", "MUTUAL", "SIMPLE", "DISABLE")
MESHES = ("istio", "linkerd")
POLICY_SET_LABEL = "mtls.zerotrust.io/policy-set"

LINKERD_INBOUND_ANNOTATION = "config.linkerd.io/default-inbound-policy"
# Linkerd's mTLS is always on; the mode only chooses which clients a port admits.
LINKERD_POLICY_FOR_MODE = {"STRICT": "all-authenticated", "PERMISSIVE": "all-unauthenticated"}

# Namespaces that never carry application sidecars; listing their pods would make a
# mesh-wide STRICT preflight fail on every real cluster.
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")

_SPIFFE_ID = re.compile(r"^spiffe://(?P<domain>[a-z0-9._-]+)/ns/(?P<ns>[^/]+)/sa/(?P<sa>[^/]+)$")


class PolicyError(MtlsError):
    """A policy the mesh would reject or ignore; str() is one sentence naming the field."""


class MeshPolicy(object):
    """The module's options, normalised and checked (see validate())."""

    def __init__(
        self,
        name,
        namespace,
        mode=None,
        selector=None,
        port_modes=None,
        root_namespace="istio-system",
        destination_rule=None,
        allow_principals=None,
        allow_namespaces=None,
        mesh="istio",
        policy_set=None,
        port=None,
        trust_domain="cluster.local",
    ):
        self.name = name
        self.namespace = namespace
        self.mode = mode
        self.selector = selector
        self.port_modes = port_modes
        self.root_namespace = root_namespace
        self.destination_rule = destination_rule
        self.allow_principals = allow_principals or []
        self.allow_namespaces = allow_namespaces or []
        self.mesh = mesh
        self.policy_set = policy_set or name
        self.port = port
        self.trust_domain = trust_domain

    @property
    def match_labels(self):
        return normalise_selector(self.selector)

    @property
    def scope(self):
        """mesh, namespace or workload: where a PeerAuthentication of this policy applies."""
        if self.namespace == self.root_namespace and not self.match_labels:
            return "mesh"
        return "workload" if self.match_labels else "namespace"

    def strict_requested(self):
        modes = [self.mode] + list((self.port_modes or {}).values())
        return any(str(m).upper() == "STRICT" for m in modes if m)

    def managed_labels(self):
        return {MANAGED_BY_LABEL: MANAGED_BY_VALUE, POLICY_SET_LABEL: self.policy_set}


def normalise_selector(selector):
    """{'matchLabels': {...}} or a plain label map -> the label map (or {})."""
    if not selector:
        return {}
    if set(selector) == set(["matchLabels"]):
        return dict(selector["matchLabels"] or {})
    return dict(selector)


def normalise_port_modes(port_modes, field="port_modes"):
    """{'8080': 'strict'} -> {'8080': 'STRICT'} after checking ports and modes."""
    out = {}
    for port, mode in (port_modes or {}).items():
        try:
            number = int(str(port))
        except ValueError:
            number = 0
        if not 0 < number <= 65535:
            raise PolicyError("%s key %s is not a port; use a number from 1 to 65535." % (field, port), field=field)
        text = str(mode).upper() if mode is not None else ""
        if text not in PEER_AUTHENTICATION_MODES:
            raise PolicyError("%s.%s mode %r is unknown; use one of %s." % (field, number, mode, ", ".join(PEER_AUTHENTICATION_MODES)), field=field)
        out[str(number)] = text
    return out


def check_names(policy):
    try:
        validate_object_name(policy.name, "name")
        validate_namespace_name(policy.namespace, "namespace")
        validate_namespace_name(policy.root_namespace, "root_namespace")
        validate_object_name(policy.policy_set, "policy_set")
        if len(policy.policy_set) > 63:
            raise KubeError("policy_set %r is longer than 63 characters; it is a label value, shorten it." % policy.policy_set, field="policy_set")
        validate_labels(policy.match_labels, "selector")
    except KubeError as error:
        raise PolicyError(str(error), field=error.field)


def principal_for_istio(principal, field):
    """Istio principals are SPIFFE IDs without the scheme: td/ns/<ns>/sa/<sa>."""
    text = (principal or "").strip()
    if not text:
        raise PolicyError("%s has an empty entry; give SPIFFE IDs like spiffe://cluster.local/ns/shop/sa/web." % field, field=field)
    if text.startswith("spiffe://"):
        if not _SPIFFE_ID.match(text):
            raise PolicyError(
                "%s entry %s is not a workload SPIFFE ID; use spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>." % (field, text), field=field
            )
        return text[len("spiffe://") :]
    if "://" in text:
        raise PolicyError("%s entry %s is not a SPIFFE ID; use spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>." % (field, text), field=field)
    return text


def identity_for_linkerd(principal, field):
    """Linkerd proxy identities: <sa>.<ns>.serviceaccount.identity.linkerd.<trust-domain>."""
    text = (principal or "").strip()
    match = _SPIFFE_ID.match(text)
    if match:
        return "%s.%s.serviceaccount.identity.linkerd.%s" % (match.group("sa"), match.group("ns"), match.group("domain"))
    if not text or "://" in text or "/" in text:
        raise PolicyError(
            "%s entry %r is not a SPIFFE ID or Linkerd identity; use spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>." % (field, principal),
            field=field,
        )
    return text


def validate(policy):
    """Istio's and Linkerd's own rules, so a bad policy never reaches the API server."""
    if policy.mesh not in MESHES:
        raise PolicyError("mesh %s is unknown; use istio or linkerd." % policy.mesh, field="mesh")
    check_names(policy)
    if policy.mode is not None and str(policy.mode).upper() not in PEER_AUTHENTICATION_MODES:
        raise PolicyError("mode %r is unknown; use one of %s." % (policy.mode, ", ".join(PEER_AUTHENTICATION_MODES)), field="mode")
    policy.mode = str(policy.mode).upper() if policy.mode is not None else None
    policy.port_modes = normalise_port_modes(policy.port_modes)
    for index, namespace in enumerate(policy.allow_namespaces):
        try:
            validate_namespace_name(namespace, "allow_namespaces[%d]" % index)
        except KubeError as error:
            raise PolicyError(str(error), field="allow_namespaces")
    if policy.mesh == "istio":
        _validate_istio(policy)
    else:
        _validate_linkerd(policy)
    if not (policy.mode or policy.port_modes or policy.destination_rule or policy.allow_principals or policy.allow_namespaces):
        raise PolicyError("nothing to apply: set mode, port_modes, destination_rule, allow_principals or allow_namespaces.", field="mode")
    return policy


def _validate_istio(policy):
    if policy.port is not None:
        raise PolicyError("port is only used with mesh linkerd; for Istio give port_modes.", field="port")
    if policy.port_modes and not policy.match_labels:
        raise PolicyError(
            "port_modes needs selector: Istio applies port-level mTLS only to workloads picked by a selector; add selector or drop port_modes.",
            field="port_modes",
        )
    if policy.match_labels and policy.namespace == policy.root_namespace:
        raise PolicyError(
            "selector is set on a policy in the root namespace %s, where Istio "
            "ignores it; use the workload's namespace or drop selector." % policy.root_namespace,
            field="selector",
        )
    for index, principal in enumerate(policy.allow_principals):
        principal_for_istio(principal, "allow_principals[%d]" % index)
    rule = policy.destination_rule
    if rule is not None:
        _validate_destination_rule(rule)


def _validate_destination_rule(rule):
    if not rule.get("host"):
        raise PolicyError("destination_rule.host is missing; give the service host, for example web.shop.svc.cluster.local.", field="destination_rule.host")
    mode = str(rule.get("tls_mode") or "ISTIO_MUTUAL").upper()
    if mode not in DESTINATION_TLS_MODES:
        raise PolicyError(
            "destination_rule.tls_mode %r is unknown; use one of %s." % (rule.get("tls_mode"), ", ".join(DESTINATION_TLS_MODES)),
            field="destination_rule.tls_mode",
        )
    rule["tls_mode"] = mode
    credential = rule.get("credential_name")
    if mode == "MUTUAL" and not credential:
        raise PolicyError(
            "destination_rule.credential_name is required for tls_mode MUTUAL; name the Secret with the client certificate (layout tls).",
            field="destination_rule.credential_name",
        )
    if credential and mode in ("ISTIO_MUTUAL", "DISABLE"):
        raise PolicyError(
            "destination_rule.credential_name is not used with tls_mode %s; drop it or use MUTUAL or SIMPLE." % mode, field="destination_rule.credential_name"
        )
    if credential:
        try:
            validate_object_name(credential, "destination_rule.credential_name")
        except KubeError as error:
            raise PolicyError(str(error), field="destination_rule.credential_name")
    if rule.get("sni") and mode == "DISABLE":
        raise PolicyError("destination_rule.sni is not used with tls_mode DISABLE; drop it.", field="destination_rule.sni")


def _validate_linkerd(policy):
    if policy.destination_rule is not None:
        raise PolicyError("destination_rule is Istio-only; with mesh linkerd client TLS is automatic, drop destination_rule.", field="destination_rule")
    if policy.mode == "DISABLE":
        raise PolicyError(
            "mode DISABLE cannot be expressed with mesh linkerd (its mTLS is always on); use PERMISSIVE to admit unauthenticated clients.", field="mode"
        )
    if policy.mode is not None and policy.match_labels:
        raise PolicyError(
            "mode with a selector is not a Linkerd setting; Linkerd's mode is a namespace default, use port_modes with selector for workloads.", field="mode"
        )
    if policy.port_modes and not policy.match_labels:
        raise PolicyError("port_modes needs selector: a Linkerd Server selects pods; add selector or drop port_modes.", field="port_modes")
    for port, mode in policy.port_modes.items():
        if mode not in LINKERD_POLICY_FOR_MODE:
            raise PolicyError("port_modes.%s mode %s cannot be expressed with mesh linkerd; use STRICT or PERMISSIVE." % (port, mode), field="port_modes")
    wants_authorization = bool(policy.allow_principals or policy.allow_namespaces)
    if wants_authorization:
        if not policy.match_labels or policy.port is None:
            raise PolicyError(
                "allow_principals and allow_namespaces with mesh linkerd need "
                "selector and port: Linkerd authorizes clients per Server "
                "(pods and port); add both.",
                field="port",
            )
        if not 0 < int(policy.port) <= 65535:
            raise PolicyError("port %s is not a port; use a number from 1 to 65535." % policy.port, field="port")
        if str(policy.port) in policy.port_modes:
            raise PolicyError(
                "port %s is also in port_modes; a port is either open to a mode or restricted to named clients, not both." % policy.port, field="port_modes"
            )
    elif policy.port is not None:
        raise PolicyError("port is only used with allow_principals or allow_namespaces; add them or drop port.", field="port")
    for index, principal in enumerate(policy.allow_principals):
        identity_for_linkerd(principal, "allow_principals[%d]" % index)


# -- preflight ------------------------------------------------------------------------

SIDECAR_CONTAINER = {"istio": "istio-proxy", "linkerd": "linkerd-proxy"}


def namespace_injects(namespace_obj, mesh):
    """True when new pods of this namespace get a sidecar (so restarting them fixes it)."""
    metadata = (namespace_obj or {}).get("metadata") or {}
    labels = metadata.get("labels") or {}
    if mesh == "istio":
        return labels.get("istio-injection") == "enabled" or bool(labels.get("istio.io/rev"))
    annotations = metadata.get("annotations") or {}
    return annotations.get("linkerd.io/inject") == "enabled"


def pod_has_sidecar(pod, mesh):
    spec = pod.get("spec") or {}
    # Native sidecars (Kubernetes 1.29+) run the proxy as an init container.
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    return any(c.get("name") == SIDECAR_CONTAINER[mesh] for c in containers)


def pods_without_sidecar(policy, pods, namespaces_by_name):
    """'namespace/pod' of the running pods in the policy's scope that STRICT would cut off:
    no proxy container and a namespace that does not inject one."""
    labels = policy.match_labels
    found = []
    for pod in pods:
        metadata = pod.get("metadata") or {}
        namespace = metadata.get("namespace")
        if policy.scope == "mesh":
            if namespace in SYSTEM_NAMESPACES or namespace == policy.root_namespace:
                continue
        elif namespace != policy.namespace:
            continue
        pod_labels = metadata.get("labels") or {}
        if labels and any(pod_labels.get(k) != v for k, v in labels.items()):
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        if (pod.get("spec") or {}).get("hostNetwork"):
            continue  # host-network pods never get a sidecar; STRICT does not apply to them
        if pod_has_sidecar(pod, policy.mesh):
            continue
        if namespace_injects(namespaces_by_name.get(namespace), policy.mesh):
            continue
        found.append("%s/%s" % (namespace, metadata.get("name")))
    return sorted(found)

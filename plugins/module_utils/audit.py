# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit: certificates from files and Secrets with chain and days left, and a
diagnosis of the mesh (what operators' check-ca / check-workload / diagnose scripts do).

Pure functions over PEM bytes and Kubernetes objects as dicts; the module fetches them.
Never handles private keys: Secret keys that hold keys are not even decoded.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64

from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_certs import certificate_summary, load_certificates
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_fingerprints import sha256_fingerprint
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import PkiError
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_verify import verify_chain
from ansible_collections.zerotrust.mtls.plugins.module_utils.policy import SYSTEM_NAMESPACES, pod_has_sidecar
from ansible_collections.zerotrust.mtls.plugins.module_utils.secret_layouts import CERTIFICATE_KEYS as CERT_KEYS
from ansible_collections.zerotrust.mtls.plugins.module_utils.secret_layouts import ROOT_BUNDLE_KEYS

DEFAULT_ROOT_NAMESPACE = "istio-system"


def inspect_pem(source, pem, roots, extra_intermediates, due_seconds, now):
    """One row per certificate source: the first certificate is the subject, the rest
    its chain. Returns a list of row dicts (empty when the PEM holds nothing)."""
    try:
        certs = load_certificates(pem, source)
    except PkiError as exc:
        return [{"source": source, "error": str(exc), "due": True}]
    if not certs:
        return []
    leaf = certs[0]
    summary = certificate_summary(leaf)
    not_after = leaf.not_valid_after_utc
    seconds_left = int((not_after - now).total_seconds())
    row = {
        "source": source,
        "subject": summary["subject"],
        "issuer": summary["issuer"],
        # With the issuer, what a CRL names: audit.yml lists revoked certificates still deployed.
        "serial": summary["serial"],
        "not_after": summary["not_after"],
        "days_left": seconds_left // 86400,
        "seconds_left": seconds_left,
        "is_ca": summary["is_ca"],
        "sha256_fingerprint": summary["sha256_fingerprint"],
        "chain_valid": None,
        "chain_error": None,
    }
    if roots:
        try:
            verify_chain(leaf, list(certs[1:]) + list(extra_intermediates or []), roots, source, at=now)
            row["chain_valid"] = True
        except PkiError as exc:
            row["chain_valid"] = False
            row["chain_error"] = str(exc)
    row["due"] = seconds_left <= due_seconds or row["chain_valid"] is False
    return [row]


def secret_certificates(secret):
    """(source, pem bytes) for every certificate-holding key of a Secret or ConfigMap."""
    metadata = secret.get("metadata") or {}
    base = "%s/%s/%s" % (secret.get("kind", "Secret"), metadata.get("namespace"), metadata.get("name"))
    found = []
    if secret.get("kind") == "ConfigMap":
        for key in ROOT_BUNDLE_KEYS:
            value = (secret.get("data") or {}).get(key)
            if value:
                found.append(("%s[%s]" % (base, key), value.encode("utf-8")))
        return found
    for key in CERT_KEYS:
        value = (secret.get("data") or {}).get(key)
        if not value:
            continue
        try:
            found.append(("%s[%s]" % (base, key), base64.b64decode(value)))
        except (ValueError, TypeError):
            found.append(("%s[%s]" % (base, key), b""))
    return found


def _mode(policy):
    return (((policy.get("spec") or {}).get("mtls") or {}).get("mode") or "UNSET").upper()


def effective_modes(peer_authentications, namespaces, root_namespace=DEFAULT_ROOT_NAMESPACE):
    """{namespace: (mode, origin)}: namespace-wide PeerAuthentication, else mesh-wide, else
    Istio's default PERMISSIVE. Workload-level policies (with a selector) do not count."""
    mesh_mode = None
    by_namespace = {}
    for policy in peer_authentications:
        metadata = policy.get("metadata") or {}
        if (policy.get("spec") or {}).get("selector"):
            continue
        mode = _mode(policy)
        if mode == "UNSET":
            continue
        if metadata.get("namespace") == root_namespace:
            mesh_mode = (mode, "mesh (%s/%s)" % (root_namespace, metadata.get("name")))
        else:
            by_namespace[metadata.get("namespace")] = (mode, "namespace (%s)" % metadata.get("name"))
    return dict((ns, by_namespace.get(ns) or mesh_mode or ("PERMISSIVE", "Istio default")) for ns in namespaces)


def _host_namespaces(host, rule_namespace, namespaces):
    """The namespaces a DestinationRule host can point at."""
    if host in ("*", "*.local", "*.cluster.local", "*.svc.cluster.local"):
        return list(namespaces)
    parts = host.split(".")
    if len(parts) == 1:
        return [rule_namespace]
    if len(parts) >= 2 and (len(parts) == 2 or parts[2] == "svc"):
        return [parts[1]] if parts[1] in namespaces else []
    return []


def destination_rule_modes(rule):
    """Every TLS mode a DestinationRule sets (traffic policy and port-level settings)."""
    policy = (rule.get("spec") or {}).get("trafficPolicy") or {}
    modes = []
    tls = policy.get("tls") or {}
    if tls.get("mode"):
        modes.append(tls["mode"].upper())
    for port in policy.get("portLevelSettings") or []:
        mode = (port.get("tls") or {}).get("mode")
        if mode:
            modes.append(mode.upper())
    return modes


def diagnose_mesh(namespaces, peer_authentications, destination_rules, pods, bundles, root_namespace=DEFAULT_ROOT_NAMESPACE):
    """Per-namespace modes and the contradictions that break traffic, as sentences.

    ``bundles`` maps namespace -> PEM of its istio-ca-root-cert (or None).
    """
    names = sorted(namespaces)
    modes = effective_modes(peer_authentications, names, root_namespace)
    report = dict((ns, {"peer_authentication": modes[ns][0], "origin": modes[ns][1], "destination_rules": {}, "pods_without_sidecar": []}) for ns in names)
    problems = []
    for rule in destination_rules:
        metadata = rule.get("metadata") or {}
        namespace = metadata.get("namespace")
        rule_modes = destination_rule_modes(rule)
        if namespace in report:
            report[namespace]["destination_rules"][metadata.get("name")] = rule_modes
        if "DISABLE" not in rule_modes:
            continue
        host = (rule.get("spec") or {}).get("host") or ""
        for target in _host_namespaces(host, namespace, names):
            if modes[target][0] == "STRICT":
                problems.append(
                    "DestinationRule %s/%s sends plaintext (tls mode DISABLE) to %s in namespace %s, "
                    "which is STRICT, so those requests are rejected." % (namespace, metadata.get("name"), host, target)
                )
    for pod in pods:
        metadata = pod.get("metadata") or {}
        namespace = metadata.get("namespace")
        if namespace not in report or namespace in SYSTEM_NAMESPACES or namespace == root_namespace:
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        if not pod_has_sidecar(pod, "istio"):
            report[namespace]["pods_without_sidecar"].append(metadata.get("name"))
    for namespace in names:
        without = report[namespace]["pods_without_sidecar"]
        if without and report[namespace]["peer_authentication"] == "STRICT":
            problems.append(
                "Namespace %s is STRICT but pod(s) %s have no sidecar, so they cannot reach STRICT "
                "services and nothing enforces mTLS in front of them." % (namespace, ", ".join(sorted(without)))
            )
    groups = {}
    for namespace, pem in sorted((bundles or {}).items()):
        if not pem:
            continue
        try:
            key = tuple(sorted(sha256_fingerprint(c) for c in load_certificates(pem, namespace)))
        except PkiError:
            key = ("unreadable",)
        groups.setdefault(key, []).append(namespace)
        if namespace in report:
            report[namespace]["trust_bundle_roots"] = len(key)
    if len(groups) > 1:
        # Name the roots by a fingerprint prefix: two groups may each hold one root.
        described = [
            "%s (%s)" % (", ".join(members), ", ".join("root %s" % fingerprint[:11] for fingerprint in key))
            for key, members in sorted(groups.items(), key=lambda item: item[1])
        ]
        problems.append("Trust bundles differ between namespaces: %s; workloads across these groups may fail to verify each other." % "; ".join(described))
    return {"namespaces": report, "problems": problems}


def table(rows):
    """The certificate rows as aligned text lines (soonest expiry first)."""
    header = ("DAYS", "CHAIN", "DUE", "SUBJECT", "SOURCE")
    lines = [header]
    for row in sorted(rows, key=lambda r: r.get("seconds_left", -(10**12))):
        chain = {True: "ok", False: "BROKEN", None: "-"}[row.get("chain_valid")]
        if row.get("error"):
            lines.append(("?", "ERROR", "yes", row["error"], row["source"]))
            continue
        lines.append((str(row["days_left"]), chain, "yes" if row["due"] else "no", row["subject"], row["source"]))
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    return ["  ".join(line[i].ljust(widths[i]) for i in range(4)) + "  " + line[4] for line in lines]

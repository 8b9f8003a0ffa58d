# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backend of mtls_audit: it fetches what audit.py inspects, from files and the cluster.

plugins/modules/mtls_audit.py builds its AnsibleModule from ``argument_spec()`` and runs
this file through module_backend.run_as_module. Read-only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os

from ansible_collections.zerotrust.mtls.plugins.module_utils import audit, backend_results
from ansible_collections.zerotrust.mtls.plugins.module_utils.args_kube_auth import KUBE_AUTH_SPEC
from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import MtlsError, read_file
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube import (
    CONFIG_MAP,
    DESTINATION_RULE,
    NAMESPACE,
    PEER_AUTHENTICATION,
    POD,
    SECRET,
    KubeClient,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_connection import ConnectionSettings
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_errors import KubeError
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_certs import load_certificates
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import PkiError, check_cryptography
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_time import parse_duration, utcnow

ISTIO_ROOT_CERT = "istio-ca-root-cert"


def _files(paths):
    found = []
    for path in paths:
        if os.path.isdir(path):
            for pattern in ("*.crt", "*.pem"):
                found.extend(sorted(glob.glob(os.path.join(path, pattern))))
        elif os.path.exists(path):
            found.append(path)
        else:
            raise PkiError("paths", "paths: %s does not exist." % path)
    return found


def _list(client, kind, namespaces):
    if not namespaces:
        return client.list(kind)
    items = []
    for namespace in namespaces:
        items.extend(client.list(kind, namespace))
    return items


def _optional_list(client, kind, namespaces, warnings):
    try:
        return _list(client, kind, namespaces)
    except KubeError as error:
        if error.status == 404:
            warnings.append("%s is not installed in this cluster (%s); the mesh diagnosis skips it." % (kind.kind, error))
            return []
        raise


def _cluster_sources(client, namespaces):
    """([(source, PEM)] of every Secret and istio-ca-root-cert ConfigMap, {namespace: its Istio root bundle})."""
    sources = []
    for secret in _list(client, SECRET, namespaces):
        secret.setdefault("kind", "Secret")
        sources.extend(audit.secret_certificates(secret))
    bundles = {}
    for config_map in _list(client, CONFIG_MAP, namespaces):
        config_map["kind"] = "ConfigMap"
        metadata = config_map.get("metadata") or {}
        if metadata.get("name") == ISTIO_ROOT_CERT:
            bundles[metadata.get("namespace")] = ((config_map.get("data") or {}).get("root-cert.pem") or "").encode()
            sources.extend(audit.secret_certificates(config_map))
    return sources, bundles


def _audit_cluster(params, inspect, warnings):
    """(rows of the cluster's certificates, the mesh diagnosis or None)."""
    client = KubeClient(ConnectionSettings.from_params(params))
    try:
        namespaces = params["namespaces"] or sorted((n.get("metadata") or {}).get("name") for n in client.list(NAMESPACE))
        sources, bundles = _cluster_sources(client, params["namespaces"])
        rows = [row for source, pem in sources for row in inspect(source, pem)]
        if not params["mesh"]:
            return rows, None
        return rows, audit.diagnose_mesh(
            namespaces,
            _optional_list(client, PEER_AUTHENTICATION, params["namespaces"] + ([params["root_namespace"]] if params["namespaces"] else []), warnings),
            _optional_list(client, DESTINATION_RULE, params["namespaces"], warnings),
            _list(client, POD, params["namespaces"]),
            bundles,
            params["root_namespace"],
        )
    finally:
        client.close()


def run_module(module):
    """Audits the files and (with cluster) the cluster of ``module.params``; changes nothing."""
    params = module.params
    if params["mesh"] and not params["cluster"]:
        raise MtlsError("mesh=true needs cluster=true: the mesh is diagnosed from the Kubernetes API.", "mesh")
    check_cryptography()
    now = utcnow()
    due_seconds = int(parse_duration(params["due_within"], "due_within").total_seconds())
    roots = load_certificates(read_file(params["trust_bundle_path"], "trust_bundle_path"), "trust_bundle_path") if params["trust_bundle_path"] else []
    extra = load_certificates(read_file(params["chain_path"], "chain_path"), "chain_path") if params["chain_path"] else []

    def inspect(source, pem):
        return audit.inspect_pem(source, pem, roots, extra, due_seconds, now)

    rows = [row for path in _files(params["paths"]) for row in inspect(path, read_file(path, "paths"))]
    mesh, warnings = None, []
    if params["cluster"]:
        cluster_rows, mesh = _audit_cluster(params, inspect, warnings)
        rows.extend(cluster_rows)
    rows.sort(key=lambda r: r.get("seconds_left", -(10**12)))
    return dict(changed=False, certificates=rows, due=sum(1 for r in rows if r.get("due")), table=audit.table(rows), mesh=mesh, warnings=warnings)


def argument_spec():
    spec = dict(
        paths=dict(type="list", elements="path", default=[]),
        trust_bundle_path=dict(type="path"),
        chain_path=dict(type="path"),
        due_within=dict(type="str", default="14d"),
        cluster=dict(type="bool", default=False),
        namespaces=dict(type="list", elements="str", default=[]),
        mesh=dict(type="bool", default=False),
        root_namespace=dict(type="str", default="istio-system"),
    )
    spec.update(KUBE_AUTH_SPEC)
    return spec


VALIDATION_RULES = {}

# Bad input, unreadable sources and API errors (errors.MtlsError, KubeError among them): one sentence each.
KNOWN_ERRORS = backend_results.KNOWN_ERRORS
failure_result, unexpected_failure_result = backend_results.failure_results("mtls_audit", changed=False)

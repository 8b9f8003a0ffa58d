#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mtls_audit
short_description: Audit every certificate in files and Secrets and diagnose the mesh
version_added: 0.1.0
author:
  - zerotrust.mtls maintainers (@zerotrust)
description:
  - Reads certificates from files (O(paths), directories are searched for C(*.crt) and C(*.pem)) and, with a
    cluster, from Secrets and the C(istio-ca-root-cert) ConfigMaps of O(namespaces), and reports for each its
    subject, days left, whether it is due (inside O(due_within) or its chain is broken) and whether its chain
    verifies to O(trust_bundle_path).
  - With O(mesh=true), diagnoses Istio - the effective PeerAuthentication mode and DestinationRule TLS modes
    per namespace, DestinationRules that send plaintext to STRICT namespaces, STRICT namespaces with pods that
    have no sidecar, and trust bundles that differ between namespaces.
  - Read-only. Secret keys holding private keys (C(tls.key), C(ca-key.pem)) are never decoded or returned.
extends_documentation_fragment:
  - zerotrust.mtls.attributes.info_module
  - zerotrust.mtls.attributes
  - zerotrust.mtls.kube_auth
options:
  paths:
    description: Certificate files or directories to audit; the first certificate of a file is audited, the rest is its chain.
    type: list
    elements: path
    default: []
  trust_bundle_path:
    description: Trusted roots (PEM) each chain must verify to. Without it chains are not checked.
    type: path
  chain_path:
    description: Extra intermediates (PEM) available when verifying.
    type: path
  due_within:
    description: A certificate is due when it expires within this duration (V(14d), V(72h)).
    type: str
    default: 14d
  cluster:
    description: Also read Secrets and ConfigMaps (and with O(mesh) the Istio objects) through the Kubernetes API.
    type: bool
    default: false
  namespaces:
    description: Namespaces to read from the cluster; all namespaces when empty.
    type: list
    elements: str
    default: []
  mesh:
    description: Diagnose the Istio mesh (needs O(cluster=true)).
    type: bool
    default: false
  root_namespace:
    description: Istio's root namespace, where a PeerAuthentication without selector is mesh-wide.
    type: str
    default: istio-system
requirements:
  - cryptography >= 42.0
  - kubernetes >= 30.1.0 (Python client), with O(cluster=true)
seealso:
  - module: zerotrust.mtls.mtls_cert_info
    description: Each certificate and CRL of chosen files, PEM text or one Secret, in detail.
"""

EXAMPLES = r"""
- name: Audit the PKI on disk and the cluster, and diagnose the mesh
  zerotrust.mtls.mtls_audit:
    paths: [/etc/pki/mtls/server, /etc/pki/mtls/client, /etc/pki/mtls/intermediate/ca.crt]
    trust_bundle_path: /etc/pki/mtls/trust/bundle.pem
    due_within: 14d
    cluster: true
    mesh: true
    kubeconfig: ~/.kube/config
  register: audit
"""

RETURN = r"""
certificates:
  description: One row per certificate source (a file, a Secret key, a ConfigMap key), the soonest expiry first.
  returned: always
  type: list
  elements: dict
  contains:
    source:
      description: File path, or C(Secret/<namespace>/<name>[<key>]) / C(ConfigMap/...).
      type: str
    subject:
      description: Subject (RFC 4514).
      type: str
    days_left:
      description: Whole days until expiry.
      type: int
    chain_valid:
      description: Whether the chain verifies to the trust bundle (null when not checked).
      type: bool
    due:
      description: Expires within O(due_within) or has a broken chain.
      type: bool
due:
  description: Number of certificates that are due.
  returned: always
  type: int
table:
  description: The rows as aligned text lines.
  returned: always
  type: list
  elements: str
mesh:
  description: Per namespace modes and the list of problems (sentences); null without O(mesh).
  returned: always
  type: dict
"""

from ansible_collections.zerotrust.mtls.plugins.module_utils import audit_backend, module_backend


def main():
    module_backend.module_main(audit_backend)


if __name__ == "__main__":
    main()

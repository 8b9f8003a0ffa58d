#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mtls_cert_info
short_description: Inspect certificates - names, expiry, renewal state and chain validity
version_added: 0.1.0
author:
  - zerotrust.mtls maintainers (@zerotrust)
description:
  - Reads certificates from files (O(paths)), PEM text (O(content)) or a Kubernetes Secret (O(secret_name)) and
    returns, for each certificate, its
    subject, issuer, SANs, validity, days left, whether it is due for renewal, and - when a trust bundle is given -
    whether its chain verifies.
  - Reads certificate revocation lists too (O(crl_paths), O(crl_content), and the C(ca.crl) / C(ca-crl.pem) keys of the
    Secret) and returns, for each CRL, its issuer, CRL number, dates, revoked serials, whether it is stale (past its
    nextUpdate) and whether its signature verifies against a CA given to the module; for each certificate, whether a
    CRL of its issuer revokes it (RV(certificates[].revoked)).
  - A source may hold several certificates (a chain or fullchain file). Each certificate is reported; the
    certificates that follow it in the same source (and O(chain_path)) serve as intermediates when it is verified.
  - Never changes anything; private keys are never decoded, not even those stored in the same Secret.
extends_documentation_fragment:
  - zerotrust.mtls.kube_auth
  - zerotrust.mtls.attributes
  - zerotrust.mtls.attributes.info_module
options:
  paths:
    description: Certificate files (PEM) to inspect.
    type: list
    elements: path
    default: []
  content:
    description: PEM text holding one or more certificates to inspect.
    type: str
  secret_name:
    description:
      - Read certificates from this Secret. The Kubernetes connection options apply only to this source.
    type: str
  secret_namespace:
    description: Namespace of O(secret_name).
    type: str
    default: default
  secret_keys:
    description:
      - Data keys of the Secret to read, for example V(tls.crt) or V(root-cert.pem).
      - By default every key whose name ends in C(.crt), C(.pem) or C(.cert) and does not contain C(key) - so
        C(tls.crt), C(ca.crt), C(ca-cert.pem), C(cert-chain.pem), C(root-cert.pem), but never C(tls.key) or
        C(ca-key.pem) - plus the CRL keys (names ending in C(.crl) or containing C(crl), such as C(ca.crl) and
        C(ca-crl.pem)), read as CRLs.
      - A key named here whose name contains C(crl) is read as a CRL.
    type: list
    elements: str
    default: []
  chain_path:
    description: Extra intermediate certificates (PEM) used when verifying every certificate.
    type: path
  trust_bundle_path:
    description: Trusted root certificates (PEM) to verify each certificate's chain against.
    type: path
  trust_bundle_content:
    description: Trusted root certificates as PEM text; combined with O(trust_bundle_path) when both are given.
    type: str
  crl_paths:
    description:
      - CRL files (PEM; a file may hold several CRLs, one per CA, as an edge bundle's C(ca.crl) does).
    type: list
    elements: path
    default: []
  crl_content:
    description: PEM text holding one or more CRLs.
    type: str
  renew_before:
    description:
      - The renewal rule that decides RV(certificates[].renewal_due) - a duration before expiry (V(10d)) or a
        percentage of the lifetime left (V(33%)). By default a third of the lifetime left, as M(zerotrust.mtls.mtls_cert)
        uses.
    type: str
requirements:
  - cryptography >= 42.0
seealso:
  - module: zerotrust.mtls.mtls_cert
    description: Issue and renew the certificates inspected here.
  - module: zerotrust.mtls.mtls_crl
    description: Keep the CRLs that decide RV(certificates[].revoked).
  - module: zerotrust.mtls.mtls_audit
    description: Every certificate in files and in the cluster at once, with a diagnosis of the mesh.
"""

EXAMPLES = r"""
- name: Check the server certificates against the root
  zerotrust.mtls.mtls_cert_info:
    paths:
      - /etc/pki/mtls/web.fullchain.crt
      - /etc/pki/mtls/api.crt
    chain_path: /etc/pki/mtls/intermediate.crt
    trust_bundle_path: /etc/pki/mtls/root.crt
  register: info

- name: Fail when anything expires within two weeks or does not verify
  ansible.builtin.assert:
    that:
      - info.certificates | selectattr('days_left', 'lt', 14) | list | length == 0
      - info.certificates | rejectattr('chain_valid') | list | length == 0

- name: Check what the mesh uses - the Istio cacerts Secret
  zerotrust.mtls.mtls_cert_info:
    secret_name: cacerts
    secret_namespace: istio-system
    kubeconfig: ~/.kube/config
  register: mesh_ca

- name: Is the leaked client certificate revoked, and is the CRL fresh?
  zerotrust.mtls.mtls_cert_info:
    paths: [/etc/pki/mtls/clients/ci-runner.crt]
    crl_paths: [/etc/pki/mtls/clusters/prod-eu1/ca.crl]
    trust_bundle_path: /etc/pki/mtls/root/ca.crt
    chain_path: /etc/pki/mtls/clusters/prod-eu1/ca.crt
  register: revocation
  failed_when: not revocation.certificates[0].revoked or revocation.crls[0].stale

- name: Inspect PEM held in a variable
  zerotrust.mtls.mtls_cert_info:
    content: "{{ lookup('ansible.builtin.file', 'client.crt') }}"
    renew_before: 25%
"""

RETURN = r"""
certificates:
  description: One entry per certificate found, in source order.
  returned: always
  type: list
  elements: dict
  contains:
    source:
      description: The file path, C(content) for O(content), or C(secret/<namespace>/<name>/<key>) for a Secret.
      type: str
    index:
      description: Position of the certificate within its source (0 is the first).
      type: int
    subject:
      description: Subject, RFC 4514.
      type: str
      sample: CN=web
    common_name:
      description: Subject common name, or null.
      type: str
    issuer:
      description: Issuer, RFC 4514.
      type: str
    serial:
      description: Serial number, uppercase hex.
      type: str
    not_before:
      description: Start of validity, ISO 8601 UTC.
      type: str
    not_after:
      description: Expiry, ISO 8601 UTC.
      type: str
    days_left:
      description: Whole days until expiry (negative once expired).
      type: int
    seconds_left:
      description: Seconds until expiry (negative once expired).
      type: int
    expired:
      description: Whether the certificate has expired.
      type: bool
    renewal_due:
      description: Whether the certificate is inside its renewal window (see O(renew_before)).
      type: bool
    sha256_fingerprint:
      description: SHA-256 fingerprint, uppercase colon-separated hex.
      type: str
    dns_names:
      description: DNS SANs.
      type: list
      elements: str
    ip_addresses:
      description: IP SANs.
      type: list
      elements: str
    uris:
      description: URI SANs (SPIFFE IDs).
      type: list
      elements: str
    emails:
      description: E-mail SANs.
      type: list
      elements: str
    is_ca:
      description: Whether basicConstraints says CA:TRUE.
      type: bool
    path_length:
      description: basicConstraints pathlen, or null.
      type: int
    key_type:
      description: Key type of the certificate's public key (V(ec_p256), V(rsa2048), ...).
      type: str
    chain_valid:
      description: Whether the certificate verifies against the trust bundle; null when no trust bundle was given.
      type: bool
    chain_error:
      description: Why it does not verify, or null.
      type: str
    revoked:
      description:
        - Whether a CRL of the certificate's issuer lists its serial; null when no CRL of that issuer was given.
        - A CRL whose signature does not verify against a CA given to the module (O(trust_bundle_path),
          O(chain_path), or the inspected certificates) is not used; one whose issuer certificate was not given is.
      type: bool
    revocation:
      description: The CRL entry (C(serial), C(reason), C(revocation_date)) when RV(certificates[].revoked) is true.
      type: dict
crls:
  description: One entry per CRL found, in source order.
  returned: always
  type: list
  elements: dict
  contains:
    source:
      description: The file path, C(crl_content), or C(secret/<namespace>/<name>/<key>).
      type: str
    index:
      description: Position of the CRL within its source.
      type: int
    issuer:
      description: Issuer, RFC 4514.
      type: str
    crl_number:
      description: The CRL number, or null when the CRL has none.
      type: int
    this_update:
      description: thisUpdate, ISO 8601 UTC.
      type: str
    next_update:
      description: nextUpdate, ISO 8601 UTC (null when absent).
      type: str
    seconds_left:
      description: Seconds until nextUpdate (negative once stale).
      type: int
    stale:
      description: Whether nextUpdate has passed - relying parties that check CRLs then refuse every certificate of the CA.
      type: bool
    refresh_due:
      description: Whether less than a third of the CRL's lifetime is left (M(zerotrust.mtls.mtls_crl) re-signs it then).
      type: bool
    signature_valid:
      description: Whether a CA certificate given to the module signed it; null when none has the CRL's issuer name.
      type: bool
    revoked:
      description: Revoked serials, uppercase hex.
      type: list
      elements: str
    revoked_entries:
      description: Revoked entries with C(serial), C(reason) and C(revocation_date).
      type: list
      elements: dict
    sha256_fingerprint:
      description: SHA-256 of the CRL (DER), uppercase colon-separated hex.
      type: str
all_chains_valid:
  description: Whether every certificate verified; null when no trust bundle was given.
  returned: always
  type: bool
"""

from ansible_collections.zerotrust.mtls.plugins.module_utils import cert_info_backend, module_backend


def main():
    module_backend.module_main(cert_info_backend)


if __name__ == "__main__":
    main()

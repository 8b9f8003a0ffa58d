#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mtls_secret
short_description: Deliver certificates and keys into Kubernetes Secrets in the layouts consumers expect
version_added: 0.1.0
author:
  - zerotrust.mtls maintainers (@zerotrust)
description:
  - Writes one Secret, or several (O(secrets)), into one namespace or many (O(namespaces)) in
    one of the layouts that Istio, cert-manager consumers, ingress controllers, Gateway API
    and SPIRE read.
  - Before anything is written it checks that the private key matches the certificate and
    that the certificate chains to the CA delivered with it; bad material fails the task
    with one sentence and no Secret is touched.
  - Existing Secrets are read first (one LIST per namespace holding two or more of them) and
    only those whose data, type, labels or annotations differ are written, with server-side
    apply as field manager C(zerotrust.mtls).
  - All or nothing - before the first write, every update and deletion is sent as a
    server-side dry run (RBAC, admission, field-manager conflicts), and so is every creation,
    or one creation per namespace where nothing can tell one new Secret from another (no
    admission webhook or policy selects Secrets, and RBAC grants create and patch on every
    Secret of the namespace, as a SelfSubjectRulesReview shows).
  - Diffs show per Secret its data keys as certificate and public-key fingerprints (never key
    bytes), its labels and its annotations; return values show the same fingerprints.
extends_documentation_fragment:
  - zerotrust.mtls.attributes
  - zerotrust.mtls.attributes.in_process_action
  - zerotrust.mtls.kube_auth
  - zerotrust.mtls.kube_apply
options:
  name:
    description:
      - Name of the Secret. Required unless O(secrets) is given.
    type: str
  namespace:
    description:
      - Namespace to write the Secret(s) to. Exactly one of O(namespace) and O(namespaces).
    type: str
  namespaces:
    description:
      - Write the same Secret(s) to each of these namespaces in one call.
      - All namespaces must exist; a missing one fails the task before anything is written (it is looked up
        where a Secret is to be created).
    type: list
    elements: str
  layout:
    description:
      - V(tls) writes C(tls.crt) (certificate and intermediates), C(tls.key) and, when a CA is
        given, C(ca.crt); the Secret type is C(kubernetes.io/tls).
      - V(istio_cacerts) writes Istio's plugged-in CA files C(ca-cert.pem), C(ca-key.pem),
        C(cert-chain.pem) (CA certificate, intermediates, root), C(root-cert.pem) (may hold
        several roots during a rotation) and with a CRL C(ca-crl.pem).
      - V(ca_bundle) writes C(ca.crt) and with a CRL C(ca.crl).
      - V(spire_upstream) writes C(tls.crt) (the upstream CA and its intermediates, for the
        disk UpstreamAuthority's C(cert_file_path)), C(tls.key) (C(key_file_path)) and
        C(bundle.crt) (the roots, C(bundle_file_path)).
      - V(generic) writes O(data) as it is.
      - Every layout except V(tls) has type C(Opaque).
    type: str
    choices: [ tls, istio_cacerts, ca_bundle, spire_upstream, generic ]
    default: tls
  cert_path:
    description:
      - PEM certificate file; intermediates may follow the certificate in the same file.
      - For V(istio_cacerts) and V(spire_upstream) this is the intermediate CA certificate.
    type: path
  cert_content:
    description: PEM certificate as a string, instead of O(cert_path).
    type: str
  key_path:
    description:
      - PEM private key file of the certificate. An encrypted key needs O(key_passphrase).
      - The Secret always receives the key unencrypted (PKCS#8), because consumers (istiod,
        cert-manager, SPIRE, ingress controllers) read it as it is.
    type: path
  key_content:
    description: PEM private key as a string, instead of O(key_path).
    type: str
  key_passphrase:
    description:
      - Passphrase of an encrypted O(key_path) or O(key_content). The key is decrypted in
        memory only, to be written into the Secret; it is never written to disk unencrypted.
      - A key that is not encrypted is delivered as it is, so one passphrase can be given for
        keys that are encrypted in some places and not yet in others (while they are converted).
    type: str
  chain_path:
    description:
      - PEM intermediates between the certificate and the root, leaf side first. A root at
        the end is accepted and moved to the trust bundle.
    type: path
  chain_content:
    description: Intermediates as a string, instead of O(chain_path).
    type: str
  ca_path:
    description:
      - PEM root certificate(s) the chain must verify to; several roots are allowed (rotation).
    type: path
  ca_content:
    description: Root certificate(s) as a string, instead of O(ca_path).
    type: str
  crl_path:
    description:
      - PEM certificate revocation list(s) (V(istio_cacerts) and V(ca_bundle) only); one file may hold the CRLs of
        several CAs, as M(zerotrust.mtls.mtls_crl) writes them, concatenated.
      - Checked against the CAs delivered in the same Secret before anything is written - each CRL must be signed by
        one of them and not be past its nextUpdate, and each of these CAs (for V(istio_cacerts), the CA and its
        chain up to its root) must have a CRL, because nginx and Envoy refuse every certificate of a chain in
        which one CA has no CRL or a stale one.
    type: path
  crl_content:
    description: PEM CRL as a string, instead of O(crl_path).
    type: str
  data:
    description:
      - Map of Secret key to content for V(generic). Values are never shown; diffs show digests.
    type: dict
  secrets:
    description:
      - Several Secrets in one call, each written to every namespace. Source options not set
        in an item are taken from the top level (for example a shared O(ca_path)); item
        O(secrets[].labels) and O(secrets[].annotations) are added to the top-level ones.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the Secret.
        type: str
        required: true
      cert_path:
        description: As O(cert_path).
        type: path
      cert_content:
        description: As O(cert_content).
        type: str
      key_path:
        description: As O(key_path).
        type: path
      key_content:
        description: As O(key_content).
        type: str
      key_passphrase:
        description: As O(key_passphrase).
        type: str
      chain_path:
        description: As O(chain_path).
        type: path
      chain_content:
        description: As O(chain_content).
        type: str
      ca_path:
        description: As O(ca_path).
        type: path
      ca_content:
        description: As O(ca_content).
        type: str
      crl_path:
        description: As O(crl_path).
        type: path
      crl_content:
        description: As O(crl_content).
        type: str
      data:
        description: As O(data).
        type: dict
      labels:
        description: Labels of this Secret, added to O(labels).
        type: dict
      annotations:
        description: Annotations of this Secret, added to O(annotations).
        type: dict
  labels:
    description: Labels to set on the Secret(s), for example so the expiry exporter finds them.
    type: dict
    default: {}
  annotations:
    description: Annotations to set on the Secret(s).
    type: dict
    default: {}
  state:
    description: V(absent) deletes the named Secret(s) from the namespace(s); sources are not needed then.
    type: str
    choices: [ present, absent ]
    default: present
seealso:
  - module: zerotrust.mtls.mtls_cert
  - module: zerotrust.mtls.mtls_ca
"""

EXAMPLES = r"""
- name: Gateway certificate as a kubernetes.io/tls Secret
  zerotrust.mtls.mtls_secret:
    name: gateway-tls
    namespace: istio-ingress
    layout: tls
    cert_path: /etc/pki/mtls/gateway.crt
    key_path: /etc/pki/mtls/gateway.key
    chain_path: /etc/pki/mtls/intermediate.crt
    ca_path: /etc/pki/mtls/root.crt
    labels:
      mtls.zerotrust.io/watch: "true"
    kubeconfig: ~/.kube/prod

- name: Istio plugged-in CA (cacerts) from the cluster intermediate
  zerotrust.mtls.mtls_secret:
    name: cacerts
    namespace: istio-system
    layout: istio_cacerts
    cert_path: /etc/pki/mtls/cluster-a/ca.crt
    key_path: /etc/pki/mtls/cluster-a/ca.key
    ca_path: /etc/pki/mtls/roots.pem

- name: The trust bundle in every application namespace
  zerotrust.mtls.mtls_secret:
    name: mesh-ca
    namespaces: [shop, payments, search]
    layout: ca_bundle
    ca_path: /etc/pki/mtls/roots.pem

- name: Many client certificates into many namespaces in one call
  zerotrust.mtls.mtls_secret:
    namespaces: "{{ tenant_namespaces }}"
    secrets:
      - name: client-a
        cert_path: /etc/pki/mtls/clients/a.crt
        key_path: /etc/pki/mtls/clients/a.key
      - name: client-b
        cert_path: /etc/pki/mtls/clients/b.crt
        key_path: /etc/pki/mtls/clients/b.key
    ca_path: /etc/pki/mtls/roots.pem

- name: Remove the old bundle
  zerotrust.mtls.mtls_secret:
    name: mesh-ca-old
    namespaces: [shop, payments]
    state: absent
"""

RETURN = r"""
secrets:
  description: One entry per Secret and namespace, in the order of O(namespaces) then names.
  returned: always
  type: list
  elements: dict
  contains:
    namespace:
      description: Namespace of the Secret.
      type: str
      sample: istio-system
    name:
      description: Name of the Secret.
      type: str
      sample: cacerts
    action:
      description: V(created), V(updated), V(unchanged), V(deleted) or V(absent) (nothing to delete).
      type: str
      sample: created
    reason:
      description: Why it was written (V(created), V(data), V(type), V(labels), V(annotations)) or V(none).
      type: str
      sample: data
  sample:
    - namespace: istio-system
      name: cacerts
      action: created
      reason: created
fingerprints:
  description:
    - Per Secret name, what each data key holds, as certificate SHA-256 fingerprints, public-key
      fingerprints (C(sha256:...)) for private keys, or a digest of other values.
  returned: when O(state=present)
  type: dict
  sample:
    cacerts:
      ca-cert.pem: ["AB:CD:..."]
      ca-key.pem: "sha256:3f5a..."
secret_type:
  description: The Secret type of the layout.
  returned: when O(state=present)
  type: str
  sample: Opaque
"""

from ansible_collections.zerotrust.mtls.plugins.module_utils import module_backend, secret_delivery


def main():
    module_backend.module_main(secret_delivery)


if __name__ == "__main__":
    main()

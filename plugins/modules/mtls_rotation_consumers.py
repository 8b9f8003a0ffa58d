#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mtls_rotation_consumers
short_description: Make istiod, cert-manager and SPIRE follow a CA rotation, and wait until they have
version_added: 0.1.0
description:
  - The consumer step of a CA rotation (C(playbooks/rotate_root_ca.yml) runs it after each converge of the
    estate's roles). The roles deliver the new trust bundle and intermediate; this module waits until the
    programs that read them hold them, so the next phase never starts over a consumer that is behind.
  - B(istiod) - the C(istio-ca-root-cert) ConfigMap that istiod writes into every namespace must hold exactly
    the roots of O(trusted_roots_path), in each namespace of O(istio_root_namespaces).
  - B(SPIRE) - the bundle ConfigMap of SPIRE's C(k8sbundle) notifier (O(spire_bundle)) must hold every root of
    O(trusted_roots_path). SPIRE keeps a retired root until it expires, so more roots are accepted.
  - B(cert-manager) - every Certificate whose issuer is O(cert_manager_issuer) must be Ready with a certificate
    signed by O(signing_ca_path) in its Secret. cert-manager re-issues only at a Certificate's C(renewBefore),
    so with O(renew) the module asks it to re-issue the others now, the way C(cmctl renew) does (an C(Issuing)
    condition with reason C(ManuallyTriggered) on the Certificate's status), once per Certificate and run.
  - Polls every O(poll_interval) seconds; fails after O(timeout) seconds naming each consumer that is not
    there and what it holds instead. A rerun continues where this run stopped.
  - Never reads a private key; the C(tls.key) of the Secrets it reads is not decoded.
extends_documentation_fragment:
  - zerotrust.mtls.kube_auth
  - zerotrust.mtls.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads only; RV(renewed) lists the Certificates it would ask cert-manager to re-issue, RV(pending)
        the consumers that are not there yet. Does not wait.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Once every consumer holds what the rotation expects, a run changes nothing.
options:
  trusted_roots_path:
    description:
      - PEM file of the roots the consumers must hold now - the trust bundle the C(ca) role writes
        (C(mtls_trust_bundle_path)), which holds the old and the new root during a root rotation.
    type: path
    required: true
  signing_ca_path:
    description:
      - Certificate of the CA that must have signed every cert-manager certificate (the cluster's active
        intermediate). Required with O(cert_manager_issuer).
    type: path
  cert_manager_issuer:
    description:
      - The cert-manager issuer whose Certificates must carry certificates of O(signing_ca_path).
        Certificates of other issuers are left alone. Omit to leave cert-manager out.
    type: dict
    suboptions:
      name:
        description: Name of the issuer (the C(cert_manager) role's ClusterIssuer is C(mtls-ca)).
        type: str
        required: true
      kind:
        description: Kind of the issuer, as in a Certificate's C(issuerRef.kind).
        type: str
        choices: [ClusterIssuer, Issuer]
        default: ClusterIssuer
      group:
        description: API group of the issuer, as in a Certificate's C(issuerRef.group).
        type: str
        default: cert-manager.io
  cert_manager_namespaces:
    description:
      - Namespaces whose Certificates are checked. Empty means every namespace (one cluster-wide list).
    type: list
    elements: str
    default: []
  renew:
    description:
      - Ask cert-manager to re-issue a Certificate whose Secret holds a certificate of another CA (or none).
        With V(false) the module only waits.
    type: bool
    default: true
  istio_root_namespaces:
    description:
      - Namespaces whose C(istio-ca-root-cert) ConfigMap must hold exactly the roots of O(trusted_roots_path).
        Empty leaves istiod out.
    type: list
    elements: str
    default: []
  spire_bundle:
    description:
      - SPIRE's bundle ConfigMap, which must hold every root of O(trusted_roots_path). Omit to leave SPIRE out.
    type: dict
    suboptions:
      namespace:
        description: Namespace of the ConfigMap (the C(spire) role's C(spire_namespace)).
        type: str
        required: true
      name:
        description: Name of the ConfigMap (the notifier's C(config_map)).
        type: str
        default: spire-bundle
      key:
        description: Key of the bundle in the ConfigMap.
        type: str
        default: bundle.crt
  wait_for_absent:
    description:
      - What a missing C(istio-ca-root-cert) or SPIRE bundle ConfigMap means. With V(false) the consumer is taken
        as not deployed (it never ran there) and not waited for; with V(true) the module waits for it to appear.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for the consumers before failing. V(0) checks once.
    type: int
    default: 120
  poll_interval:
    description: Seconds between two checks.
    type: float
    default: 2.0
author:
  - zerotrust.mtls maintainers (@zerotrust)
seealso:
  - module: zerotrust.mtls.mtls_trust_bundle
  - module: zerotrust.mtls.mtls_rotation_state
"""

EXAMPLES = r"""
- name: Wait until istiod, SPIRE and cert-manager follow the new intermediate (phase 3 of a root rotation)
  zerotrust.mtls.mtls_rotation_consumers:
    kubeconfig: /etc/kubernetes/admin.conf
    trusted_roots_path: /etc/pki/mtls/trust/bundle.pem
    signing_ca_path: /etc/pki/mtls/clusters/prod-eu/ca.crt
    cert_manager_issuer:
      name: mtls-ca
    istio_root_namespaces: [istio-system]
    spire_bundle:
      namespace: spire
    timeout: 300

- name: Only look (nothing is renewed)
  zerotrust.mtls.mtls_rotation_consumers:
    trusted_roots_path: /etc/pki/mtls/trust/bundle.pem
    istio_root_namespaces: [istio-system, payments]
    timeout: 0
  check_mode: true
  register: consumers
"""

RETURN = r"""
consumers:
  description: Each consumer checked, as found by the last check.
  returned: always
  type: list
  elements: dict
  contains:
    consumer:
      description: C(istiod), C(spire) or C(cert-manager).
      type: str
    name:
      description: The object checked, as C(<namespace>/<name>).
      type: str
    done:
      description: Whether it holds what the rotation expects.
      type: bool
    detail:
      description: What it holds, in words.
      type: str
    status:
      description:
        - cert-manager entries only - V(ready), V(stale) (asked to re-issue), V(issuing) or V(not ready).
      type: str
      returned: for cert-manager Certificates
  sample:
    - {consumer: istiod, name: istio-system/istio-ca-root-cert, done: true, detail: "2 root(s), as expected"}
renewed:
  description: The Certificates (C(<namespace>/<name>)) cert-manager was (or in check mode would be) asked to re-issue.
  returned: always
  type: list
  elements: str
pending:
  description: Consumers that are not there yet (check mode; empty after a successful wait).
  returned: always
  type: list
  elements: str
waited:
  description: Seconds spent waiting.
  returned: always
  type: float
"""

from ansible_collections.zerotrust.mtls.plugins.module_utils import consumer_sync, module_backend


def main():
    module_backend.module_main(consumer_sync)


if __name__ == "__main__":
    main()

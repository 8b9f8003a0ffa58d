#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: mtls_trust_bundle
short_description: Write the trust bundles the estate publishes, following the root CA rotation state
version_added: 1.3.0
author:
  - zerotrust.mtls maintainers (@zerotrust)
description:
  - Computes what the estate trusts at this moment from the PKI directory and the state of a root CA
    rotation (C(<pki_dir>/rotation/root_ca.state.json), written by C(playbooks/rotate_root_ca.yml)), and
    writes it to files the roles publish from.
  - Outside a rotation that is the active root (C(<pki_dir>/root/ca.crt)). From the moment phase 1 of a
    rotation is recorded until phase 5 completes, it is the old and the new root, so a C(playbooks/site.yml)
    run at any moment of a rotation publishes both and never narrows trust before the rotation does.
  - With O(ca_dir), also the chains (the CA below each root, then the root) for edge client-certificate
    validation, and the CRLs of every CA of those chains.
  - Certificates are written oldest first, each once, so a file changes only when the set of certificates does.
options:
  pki_dir:
    description: The PKI directory (C(mtls_pki_dir)) holding C(root/) and the cluster CAs.
    type: path
    required: true
  rotation_dir:
    description: Where the rotation state lives. Default C(<pki_dir>/rotation), where the rotation playbooks keep it.
    type: path
  ca_dir:
    description:
      - The CA below the root whose chains and CRLs are wanted, relative to O(pki_dir), for example
        V(clusters/prod-eu1). Required with O(chain_path), O(crl_path) or O(active_crl_path).
    type: str
  roots_path:
    description: File to write the trusted roots to (PEM). Not written when omitted.
    type: path
  roots_copies:
    description: More files that get the same roots (client trust stores on this host).
    type: list
    elements: path
    default: []
  chain_path:
    description: File to write the trusted chains to (PEM, CA then root, per generation).
    type: path
  crl_path:
    description:
      - File to write the CRLs of every CA of the chains to (PEM, one block per CRL).
      - Removed when no CA of the chains has a CRL, so nothing delivers a CRL that no longer applies.
    type: path
  active_crl_path:
    description:
      - File to write the CRLs of every trusted root and of the active CA below them (not the other generation's
        CA) to - what a Secret that delivers the active CA alone with the roots carries (Istio's C(cacerts),
        whose C(ca-crl.pem) may only hold CRLs of CAs it delivers).
      - Removed when there is no such CRL.
    type: path
  mode:
    description: File mode of the files written, as an octal string.
    type: raw
    default: '0644'
attributes:
  check_mode:
    support: full
    details:
      - Nothing is written; RV(changed_paths) lists the files that would be written or removed.
  diff_mode:
    support: full
  idempotent:
    support: full
extends_documentation_fragment:
  - zerotrust.mtls.attributes
"""

EXAMPLES = r"""
- name: Trust bundles of cluster prod-eu1 as the rotation state says
  zerotrust.mtls.mtls_trust_bundle:
    pki_dir: /etc/pki/mtls
    ca_dir: clusters/prod-eu1
    roots_path: /etc/pki/mtls/trust/bundle.pem
    chain_path: /etc/pki/mtls/clusters/prod-eu1/trust-chain.pem
    crl_path: /etc/pki/mtls/clusters/prod-eu1/trust-chain.crl
  register: trust
"""

RETURN = r"""
overlap:
  description: True while a root rotation holds the old and the new root (phase 1 done, phase 5 not).
  returned: always
  type: bool
rotation:
  description: The root rotation's id, status and last completed phase; null when none ever ran.
  returned: always
  type: dict
  sample: {id: 20261203T101500Z, status: in_progress, phase_completed: 2}
roots:
  description: The trusted roots, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    subject:
      description: Subject, RFC 4514.
      type: str
    sha256_fingerprint:
      description: SHA-256 of the certificate (DER), uppercase colon-separated hex.
      type: str
roots_pem:
  description: The trusted roots as PEM (public certificates), what O(roots_path) holds.
  returned: always
  type: str
chain:
  description: The certificates of O(chain_path), in order.
  returned: when O(ca_dir) is given
  type: list
  elements: dict
crl_count:
  description: How many CRLs O(crl_path) holds.
  returned: when O(ca_dir) is given
  type: int
changed_paths:
  description: The files that were (or in check mode would be) written or removed.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.zerotrust.mtls.plugins.module_utils import module_backend, trust_bundle


def main():
    module_backend.module_main(trust_bundle)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: mtls_trust_bundle
short_description: Write the trust bundles the estate publishes, following the root CA rotation state
version_added: 1.3.0
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
extends_documentation_fragment:
  - zerotrust.mtls.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
author:
  - zerotrust.mtls maintainers (@zerotrust)
'''

EXAMPLES = r'''
- name: Trust bundles of cluster prod-eu1 as the rotation state says
  zerotrust.mtls.mtls_trust_bundle:
    pki_dir: /etc/pki/mtls
    ca_dir: clusters/prod-eu1
    roots_path: /etc/pki/mtls/trust/bundle.pem
    chain_path: /etc/pki/mtls/clusters/prod-eu1/trust-chain.pem
    crl_path: /etc/pki/mtls/clusters/prod-eu1/trust-chain.crl
  register: trust
'''

RETURN = r'''
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
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zerotrust.mtls.plugins.module_utils import files
from ansible_collections.zerotrust.mtls.plugins.module_utils import pki
from ansible_collections.zerotrust.mtls.plugins.module_utils import rotation as rot
from ansible_collections.zerotrust.mtls.plugins.module_utils import trust_bundle as trust


def _planned_files(params, found):
    """[(path, content or None to remove, what it holds)] and the result fields."""
    roots = trust.trusted_roots(found)
    roots_pem = pki.certificates_pem(roots)
    planned = [(path, roots_pem, trust.describe(roots))
               for path in ([params['roots_path']] if params['roots_path'] else []) + params['roots_copies']]
    result = dict(roots=trust.describe(roots), roots_pem=roots_pem.decode('ascii'))
    if params['ca_dir']:
        chain = trust.trusted_chains(found)
        crls = trust.trusted_crls(found)
        result.update(chain=trust.describe(chain), crl_count=crls.count(b'-----BEGIN X509 CRL-----'))
        if params['chain_path']:
            planned.append((params['chain_path'], pki.certificates_pem(chain), result['chain']))
        if params['crl_path']:
            planned.append((params['crl_path'], crls or None, '%d CRLs' % result['crl_count']))
        if params['active_crl_path']:
            active = trust.trusted_crls(found, active_ca_only=True)
            planned.append((params['active_crl_path'], active or None,
                            '%d CRLs' % active.count(b'-----BEGIN X509 CRL-----')))
    return planned, result


def run(module):
    params = module.params
    for field in ('chain_path', 'crl_path', 'active_crl_path'):
        if params[field] and not params['ca_dir']:
            raise rot.RotationError("%s needs ca_dir, the CA below the root (such as clusters/<name>)." % field)
    mode = files.parse_mode(params['mode'], files.CERT_MODE, 'mode')
    found, state = trust.generations(params['pki_dir'], params['ca_dir'], params['rotation_dir'])
    planned, result = _planned_files(params, found)
    changed_paths = []
    before, after = {}, {}
    for path, content, holds in planned:
        if content is None:
            if files.read_if_exists(path) is None:
                continue
            before[path], after[path] = 'present', 'absent'
        elif files.needs_write(path, content, mode):
            before[path] = 'present' if files.read_if_exists(path) is not None else 'absent'
            after[path] = holds
        else:
            continue
        changed_paths.append(path)
        if not module.check_mode:
            if content is None:
                files.remove(path)
            else:
                # trust/ is new in an estate converged before this module existed.
                if not os.path.isdir(os.path.dirname(path)):
                    os.makedirs(os.path.dirname(path), 0o755)
                files.atomic_write(path, content, mode, field=path)
    result.update(changed=bool(changed_paths), changed_paths=changed_paths, overlap=trust.overlap_active(state),
                  rotation=trust.rotation_summary(state))
    if module._diff:
        result['diff'] = {'before': before, 'after': after}
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            pki_dir=dict(type='path', required=True),
            rotation_dir=dict(type='path'),
            ca_dir=dict(type='str'),
            roots_path=dict(type='path'),
            roots_copies=dict(type='list', elements='path', default=[]),
            chain_path=dict(type='path'),
            crl_path=dict(type='path'),
            active_crl_path=dict(type='path'),
            mode=dict(type='raw', default='0644'),
        ),
        supports_check_mode=True,
    )
    if not pki.HAS_CRYPTOGRAPHY:
        module.fail_json(msg="mtls_trust_bundle needs the Python cryptography library; install it on the host.")
    try:
        module.exit_json(**run(module))
    except (pki.PkiError, files.FileError, rot.RotationError) as exc:
        module.fail_json(msg=str(exc), field=getattr(exc, 'field', None))


if __name__ == '__main__':
    main()

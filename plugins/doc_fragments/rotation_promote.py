# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The promote and archive options (spec: module_utils/rotation_promote.py) of
    # mtls_rotation_promote, and of mtls_rotation_state, where they are deprecated.
    DOCUMENTATION = r"""
options:
  promote:
    description:
      - CA file sets to install into their active paths. The pair in C(dest) is copied into C(archive_dir)
        first when it holds another key.
      - The certificate, key and chain are switched in one rename when they share a directory (the layout
        M(zerotrust.mtls.mtls_ca) writes), otherwise back to back.
    type: list
    elements: dict
    default: []
    suboptions:
      source:
        description: Dict with C(cert), C(key) and optional C(chain) paths of the CA to install.
        type: dict
        required: true
      dest:
        description: Dict with C(cert), C(key) and optional C(chain) paths to install it to.
        type: dict
        required: true
      archive_dir:
        description: Where the replaced CA is kept.
        type: path
        required: true
      carry_crls:
        description:
          - Move the replaced CA's CRLs (C(ca.crl), C(chain.crl) beside C(dest.cert)) into C(archive_dir) with it,
            so they are not taken for the new CA's. The root CA rotation sets it; the trust bundles deliver the
            archived CRLs while the old root stays trusted (M(zerotrust.mtls.mtls_trust_bundle)).
        type: bool
        default: false
      key_passphrase:
        description: Passphrase of the source key, used only to check that it matches its certificate.
        type: str
  archive:
    description:
      - CA file sets to move into an archive directory (copied, verified, then removed from their place).
      - Runs after O(promote).
    type: list
    elements: dict
    default: []
    suboptions:
      cert:
        description: Certificate path.
        type: path
        required: true
      key:
        description: Key path.
        type: path
      chain:
        description: Chain path.
        type: path
      archive_dir:
        description: Archive directory (created C(0700)).
        type: path
        required: true
"""

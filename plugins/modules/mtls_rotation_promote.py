#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mtls_rotation_promote
short_description: Install staged CAs into their active paths and archive retired ones during a rotation
version_added: 0.1.0
author:
  - zerotrust.mtls maintainers (@zerotrust)
description:
  - The file work between two phases of a CA rotation (C(playbooks/rotate_root_ca.yml),
    C(playbooks/rotate_intermediate.yml)) - O(promote) makes a staged CA the active one, O(archive) moves a
    retired CA out of the way. Record the phase afterwards with M(zerotrust.mtls.mtls_rotation_state)
    (O(zerotrust.mtls.mtls_rotation_state#module:operation=complete_phase)); a run cut in between repeats
    the moves, which are idempotent.
  - The CA key that is replaced or archived is never deleted - it is copied into the archive directory
    (mode C(0700), key C(0600)) and the copy is checked before the original goes.
  - Every source is checked (its paths named, its key readable and matching its certificate) before
    anything moves, so a bad entry fails the task with nothing moved.
  - Never reads a private key into its result or diff.
extends_documentation_fragment:
  - zerotrust.mtls.attributes
  - zerotrust.mtls.rotation_promote
attributes:
  check_mode:
    support: full
    details:
      - Nothing is written; RV(promoted) and RV(archived) list the paths that would change.
  diff_mode:
    support: full
    details:
      - For each changed path, where its content comes from or goes to; never key material.
  idempotent:
    support: full
    details:
      - Promoting a CA that is already in place, or archiving one that is already gone, changes nothing.
requirements:
  - cryptography >= 42.0
seealso:
  - module: zerotrust.mtls.mtls_rotation_state
  - module: zerotrust.mtls.mtls_ca
"""

EXAMPLES = r"""
- name: Make the new root the active one (the old root goes to the archive with its CRLs)
  zerotrust.mtls.mtls_rotation_promote:
    promote:
      - source: {cert: /etc/pki/mtls/rotation/next/root/ca.crt, key: /etc/pki/mtls/rotation/next/root/ca.key}
        dest: {cert: /etc/pki/mtls/root/ca.crt, key: /etc/pki/mtls/root/ca.key}
        archive_dir: /etc/pki/mtls/rotation/previous/root
        carry_crls: true

- name: Then record the phase
  zerotrust.mtls.mtls_rotation_state:
    rotation: root_ca
    operation: complete_phase
    phase: 3
    state_path: /etc/pki/mtls/rotation/root_ca.state.json

- name: Move the staging copies into the archive
  zerotrust.mtls.mtls_rotation_promote:
    archive:
      - cert: /etc/pki/mtls/rotation/next/root/ca.crt
        key: /etc/pki/mtls/rotation/next/root/ca.key
        archive_dir: /etc/pki/mtls/archive/root_ca-20261122T160000Z/new-root-staging
"""

RETURN = r"""
promoted:
  description:
    - Paths that were (or would be) replaced by O(promote), and the replaced CA's CRLs moved with
      O(promote[].carry_crls).
  returned: always
  type: list
  elements: str
archived:
  description: Paths that were (or would be) moved into an archive by O(archive).
  returned: always
  type: list
  elements: str
"""

from ansible_collections.zerotrust.mtls.plugins.module_utils import module_backend, rotation_promote


def main():
    module_backend.module_main(rotation_promote)


if __name__ == "__main__":
    main()

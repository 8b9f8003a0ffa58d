# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Descriptions of the module attributes; modules only state their support level.

    The other fragments of this file state it for a kind of module, as community.crypto's
    attributes fragment does: ``zerotrust.mtls.attributes.info_module``.
    """

    DOCUMENTATION = r'''
options: {}
attributes:
  check_mode:
    description: Can run in check mode and predict exactly whether it would change anything, without changing it.
  diff_mode:
    description:
      - Returns what changed (or would change in check mode) in diff mode.
      - The diff shows serials, fingerprints and dates, never PEM of private keys.
  idempotent:
    description:
      - When run twice in a row with the same arguments, the second run reports C(changed=false)
        and changes nothing.
'''

    # Modules that only read: mtls_cert_info, mtls_audit.
    INFO_MODULE = r'''
options: {}
attributes:
  check_mode:
    support: full
    details:
      - Read-only; behaves the same in check mode.
  diff_mode:
    support: N/A
    details:
      - Read-only; there is never a difference to show.
  idempotent:
    support: full
'''

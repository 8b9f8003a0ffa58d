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

    DOCUMENTATION = r"""
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
"""

    # Modules that write files and renew what they wrote once it is due (mtls_ca, mtls_cert,
    # mtls_crl); each says in idempotent's details what it renews and when.
    RENEWS = r"""
options: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: partial
"""

    # Modules whose action plugin runs the module's backend in the controller's process.
    IN_PROCESS_ACTION = r"""
options: {}
attributes:
  action:
    description: Has an action plugin that runs in the controller's process when the target is the controller.
    support: full
    details:
      - When the task runs on the controller as the controller's user (connection C(local), no C(become),
        no C(async), no C(environment)), the action plugin runs this module's code directly in the worker
        process Ansible forks for the task. That skips a new Python interpreter, the module payload and a
        JSON round trip of the arguments and the result, which for a 1,000-certificate no-change run is most
        of the time. Arguments are validated with the same specification, the result is the same, and
        no_log values are masked the same way.
      - Set the variable C(mtls_in_process=false) to always run it as an ordinary module, for example to use
        the C(ansible_python_interpreter) of the host instead of the controller's Python.
"""

    # Modules that only read: mtls_cert_info, mtls_audit.
    INFO_MODULE = r"""
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
"""

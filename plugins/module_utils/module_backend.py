# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way a module runs its backend (issuance, secret delivery, mesh policy).

A backend is a module_utils file with ``argument_spec()``, ``VALIDATION_RULES``,
``run_module(ctx)``, ``KNOWN_ERRORS``, ``failure_result(exc)`` and
``unexpected_failure_result(exc)``. The module builds its AnsibleModule from the first two
and calls run_as_module() (module_main does both); the action plugin of the same name runs
the same backend in the controller process (plugins/plugin_utils/in_process.py), so both
paths answer alike.
A backend never calls ``fail_json``, ``exit_json`` or ``warn``: it raises one of
KNOWN_ERRORS, and returns its warnings in the result's ``warnings`` list.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule


def run_as_module(module, backend):
    """Exits ``module`` (an AnsibleModule) with what ``backend`` returns or raises."""
    try:
        result = backend.run_module(module)
    except backend.KNOWN_ERRORS as exc:
        module.fail_json(**backend.failure_result(exc))
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(**backend.unexpected_failure_result(exc))
    for warning in result.pop("warnings", None) or []:
        module.warn(warning)
    module.exit_json(**result)


def module_main(backend):
    """The main() of a module whose argument spec and work are all ``backend``'s."""
    module = AnsibleModule(argument_spec=backend.argument_spec(), supports_check_mode=True, **backend.VALIDATION_RULES)
    run_as_module(module, backend)

# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs a module's work inside the controller's worker process.

When a task targets the controller itself (connection ``local``, no become, no async,
no ``environment``), running the module as a separate Python process costs more than
the work of a 1,000-certificate no-change run: a new interpreter, the AnsiballZ
payload, importing ``ansible.module_utils.basic``, and a JSON round trip of the whole
``certs`` list and of the result. The worker process Ansible forks for the task already
has all of that loaded, so the action plugin calls the module's code directly
(ansible.netcommon does the same for network modules).

The module path and this one must behave identically, so this file only uses what
AnsibleModule itself uses: the public ArgumentSpecValidator with the module's own spec
and rules, ``remove_values`` for no_log masking, and the controller-to-module JSON
profile so the module code sees exactly the types it would get as a module. A module
opts in by providing ``argument_spec()``, ``VALIDATION_RULES``, ``run_module(ctx)``,
``KNOWN_ERRORS``, ``failure_result(exc)`` and ``unexpected_failure_result(exc)``.

Set the variable ``mtls_in_process: false`` to force the ordinary module path.
"""

from __future__ import annotations

import json

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError
from ansible.module_utils.parsing.convert_bool import boolean

try:  # ansible-core 2.19+: the JSON profiles modules receive their arguments with
    from ansible.module_utils.common.json import Direction, get_module_decoder, get_module_encoder
except ImportError:  # older ansible-core: always use the module path
    Direction = get_module_decoder = get_module_encoder = None

OPT_OUT_VARIABLE = "mtls_in_process"
_LOCAL_TRANSPORTS = frozenset(("local", "ansible.builtin.local"))
_PROFILE = "legacy"  # what ansible-core 2.19 sends modules


class ModuleContext(object):
    """What run_module(ctx) reads from an AnsibleModule."""

    __slots__ = ("params", "check_mode", "_diff")

    def __init__(self, params, check_mode, diff):
        self.params = params
        self.check_mode = check_mode
        self._diff = diff


def why_not_in_process(action, task_vars):
    """None when ``action``'s task may run in this process, else the reason it may not.

    Anything that would make the module run somewhere or as someone else, or see a
    different environment, keeps the ordinary path.
    """
    if get_module_encoder is None:
        return "ansible-core older than 2.19"
    opt_in = (task_vars or {}).get(OPT_OUT_VARIABLE, True)
    if not boolean(action._templar.template(opt_in), strict=False):
        return "%s is false" % OPT_OUT_VARIABLE
    if getattr(action._connection, "transport", None) not in _LOCAL_TRANSPORTS:
        return "the connection is not local"
    if action._play_context.become:
        return "become is set"
    if action._task.async_val:
        return "the task is async"
    environment = {}
    action._compute_environment_string(environment)  # the task's, its block's and play's, templated
    if environment:
        return "the task sets an environment"
    return None


def _as_module_arguments(args):
    # The same encoding a module run gets (tagged strings become plain ones, and so on),
    # without which the validator would also deep-copy every tagged value.
    encoder = get_module_encoder(_PROFILE, Direction.CONTROLLER_TO_MODULE)
    decoder = get_module_decoder(_PROFILE, Direction.CONTROLLER_TO_MODULE)
    return json.loads(json.dumps(dict(args), cls=encoder), cls=decoder)


def run_module(module, module_name, args, check_mode, diff):
    """The result the module would have returned for ``args``, computed in this process."""
    params = _as_module_arguments(args)
    validation = ArgumentSpecValidator(module.argument_spec(), **module.VALIDATION_RULES).validate(params)
    no_log_values = validation._no_log_values  # pylint: disable=protected-access  # what AnsibleModule uses too
    if validation.error_messages:
        msg = validation.errors.msg
        if isinstance(validation.errors[0], UnsupportedError):
            msg = "Unsupported parameters for (%s) module: %s" % (module_name, msg)
        result = dict(failed=True, msg=msg)
    else:
        try:
            result = module.run_module(ModuleContext(validation.validated_parameters, check_mode, diff))
        except module.KNOWN_ERRORS as exc:
            result = dict(module.failure_result(exc), failed=True)
        except Exception as exc:  # pylint: disable=broad-except
            result = dict(module.unexpected_failure_result(exc), failed=True)
    result.setdefault("invocation", {"module_args": validation.validated_parameters})
    if no_log_values:
        # As AnsibleModule does: mask no_log values everywhere, but keep booleans and None.
        # (Without any there is nothing to mask, and walking 1,000 result entries costs.)
        preserved = dict((key, value) for key, value in result.items() if value is None or isinstance(value, bool))
        result = remove_values(result, no_log_values)
        result.update(preserved)
    return result

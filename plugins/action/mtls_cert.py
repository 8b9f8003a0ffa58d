# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for zerotrust.mtls.mtls_cert, and the base of the other in-process actions.

A batch of 1,000 certificates costs more in starting a module process than in the
work itself, so when the task runs on the controller (connection local, no become,
async or environment) the backend the module calls (module_utils/issuance.py) runs here,
in the worker process; otherwise, or with ``mtls_in_process: false``, the module runs the
ordinary way. See plugins/plugin_utils/in_process.py. Nothing here imports a module file:
the module and this action both import the backend.
"""

from __future__ import annotations

import json
import re

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.zerotrust.mtls.plugins.module_utils import issuance
from ansible_collections.zerotrust.mtls.plugins.plugin_utils import in_process

display = Display()

# A private key in PEM, or base64 of one (a Secret's data): never part of a result.
_PRIVATE_KEY_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S)
_BASE64_PEM_PREFIX = "LS0tLS1CRUdJT"  # base64 of "-----BEGIN"
_BASE64_TOKEN = re.compile(r"LS0tLS1CRUdJT[A-Za-z0-9+/=]*")
MASK = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def _mask_string(value):
    value = _PRIVATE_KEY_PEM.sub(MASK, value)
    return _BASE64_TOKEN.sub(MASK, value) if _BASE64_PEM_PREFIX in value else value


def _mask(value):
    if isinstance(value, str):
        return _mask_string(value)
    if isinstance(value, dict):
        return dict((key, _mask(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [_mask(item) for item in value]
    return value


def without_key_material(result):
    """``result`` with every private key (PEM, or base64 of PEM) replaced by the no_log mask.

    The backends return fingerprints, never key bytes, and no_log parameters are masked by
    in_process.run_module as AnsibleModule masks them; this is the last guard for text the
    backend did not write itself (an exception's message, an API server's answer) before a
    result reaches callbacks and logs. Only a result that holds such text is walked.
    """
    text = json.dumps(result, default=str)
    if "PRIVATE KEY-----" not in text and _BASE64_PEM_PREFIX not in text:
        return result
    return _mask(result)


class BackendAction(ActionBase):
    """Runs ``BACKEND`` in this process for controller tasks, else the module ``MODULE``.

    The subclasses (this file's ActionModule, mtls_secret's, mesh_policy's) name the two.
    The linear strategy loads a task's action class in the main process before it forks
    the worker, so what a backend imports (the kubernetes client: about 0.3 s) is imported
    once per ansible-playbook run, not once per task.
    """

    BACKEND = None
    MODULE = None

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super(BackendAction, self).run(tmp, task_vars)
        del tmp  # no effect since ansible-core 2.x

        reason = in_process.why_not_in_process(self, task_vars)
        if reason is None:
            display.vvv("%s: running in the controller process" % self.MODULE)
            result.update(
                without_key_material(
                    in_process.run_module(self.BACKEND, self._task.resolved_action or self.MODULE, self._task.args, self._task.check_mode, self._task.diff)
                )
            )
            return result

        display.vvv("%s: running as a module (%s)" % (self.MODULE, reason))
        wrap_async = self._task.async_val and not self._connection.has_native_async
        result.update(self._execute_module(module_name=self.MODULE, task_vars=task_vars, wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result


class ActionModule(BackendAction):
    BACKEND = issuance
    MODULE = "zerotrust.mtls.mtls_cert"

# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for zerotrust.mtls.mtls_cert.

A batch of 1,000 certificates costs more in starting a module process than in the
work itself, so when the task runs on the controller (connection local, no become,
async or environment) the module's code runs here, in the worker process; otherwise,
or with ``mtls_in_process: false``, the module runs the ordinary way.
See plugins/plugin_utils/in_process.py.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.zerotrust.mtls.plugins.modules import mtls_cert
from ansible_collections.zerotrust.mtls.plugins.plugin_utils import in_process

display = Display()


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # no effect since ansible-core 2.x

        reason = in_process.why_not_in_process(self, task_vars)
        if reason is None:
            display.vvv('mtls_cert: running in the controller process')
            result.update(in_process.run_module(mtls_cert, self._task.resolved_action or 'zerotrust.mtls.mtls_cert',
                                                self._task.args, self._task.check_mode, self._task.diff))
            return result

        display.vvv('mtls_cert: running as a module (%s)' % reason)
        wrap_async = self._task.async_val and not self._connection.has_native_async
        result.update(self._execute_module(module_name='zerotrust.mtls.mtls_cert', task_vars=task_vars,
                                           wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures the unit tests share.

``run``: the JSON result of the test file's ``MODULE``.main() for the given module
arguments, as Ansible would run it (``check_mode`` and ``diff`` become the
``_ansible_*`` flags; ``RUN_DEFAULTS`` in the test file sets the file's usual ``diff``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest
from ansible.module_utils.testing import patch_module_args


@pytest.fixture
def run(capsys, request):
    module = request.module.MODULE
    defaults = getattr(request.module, "RUN_DEFAULTS", {})

    def result_of(check_mode=False, diff=None, **args):
        args["_ansible_check_mode"] = check_mode
        args["_ansible_diff"] = defaults.get("diff", False) if diff is None else diff
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                module.main()
        return json.loads(capsys.readouterr().out)

    return result_of

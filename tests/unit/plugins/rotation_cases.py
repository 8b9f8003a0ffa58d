# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the tests of mtls_rotation_state and mtls_rotation_promote share: a module run,
and a CA pair written where a rotation keeps one."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.zerotrust.mtls.plugins.module_utils import pki

DAY = datetime.timedelta(days=1)


def run_module(module, capsys, check_mode=False, diff=False, **args):
    """The JSON result of ``module``.main() for ``args``."""
    args["_ansible_check_mode"] = check_mode
    args["_ansible_diff"] = diff
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def write_ca(directory, name, passphrase=None):
    """A CA as <directory>/ca.crt and ca.key (0600); its {'cert', 'key'} paths."""
    key = pki.generate_private_key()
    cert = pki.build_ca(key, name, 3650 * DAY, path_length=1)
    directory.mkdir(parents=True)
    (directory / "ca.crt").write_bytes(pki.certificate_pem(cert))
    (directory / "ca.key").write_bytes(pki.private_key_pem(key, passphrase=passphrase))
    os.chmod(str(directory / "ca.key"), 0o600)
    return {"cert": str(directory / "ca.crt"), "key": str(directory / "ca.key")}

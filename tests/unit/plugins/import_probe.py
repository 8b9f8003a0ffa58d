# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a fresh Python imports along with one of the collection's plugins."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys


def kubernetes_modules_after_importing(name):
    """The kubernetes client's modules a new interpreter holds after importing
    ``plugins.<name>`` (for example ``modules.mtls_secret``), sorted."""
    code = (
        "import importlib, json, sys\n"
        "importlib.import_module('ansible_collections.zerotrust.mtls.plugins.%s')\n"
        "print(json.dumps(sorted(name for name in sys.modules if name == 'kubernetes' or name.startswith('kubernetes.'))))\n" % name
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in sys.path if path))
    output = subprocess.run([sys.executable, "-c", code], check=True, env=env, stdout=subprocess.PIPE, universal_newlines=True).stdout
    return json.loads(output)

# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the tests of the Kubernetes modules share: a module run against a closed port, and
the recording part of the fake API clients."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import threading

import pytest
from ansible.module_utils.testing import patch_module_args


def closed_port():
    """A loopback port nothing listens on: a request that gets there fails "cannot reach"."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_module(module, capsys, **args):
    """The result of ``module``.main() for ``args``, pointed at a closed port unless ``host`` is given."""
    args.setdefault("host", "http://127.0.0.1:%d" % closed_port())
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


class RecordingClient(object):
    """Records every call (from many threads) as a tuple whose first item is the verb."""

    def __init__(self):
        self.calls = []
        self._lock = threading.Lock()

    def _record(self, *call):
        with self._lock:
            self.calls.append(call)

    def count(self, verb):
        return len([call for call in self.calls if call[0] == verb])

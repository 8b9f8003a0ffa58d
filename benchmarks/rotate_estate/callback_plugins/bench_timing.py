# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Records when each play and task of a playbook run starts, and the `waited` seconds of the
rotation's consumer wait, as JSON in $BENCH_TIMING_FILE (the rotate_estate benchmark).

Under the linear strategy a task ends when the next one starts, so the start times give
every task's wall time, including what all hosts spent in it side by side.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
name: bench_timing
type: aggregate
short_description: start time of every play and task, for benchmarks/rotate_estate
description: Writes the start times and the consumer wait's results to $BENCH_TIMING_FILE.
requirements: [enabled in ANSIBLE_CALLBACKS_ENABLED]
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase

WAIT_TASK = "Wait until istiod, SPIRE and cert-manager follow the rotation on this cluster"


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timing"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.events = []
        self.waits = []

    def _mark(self, kind, name):
        self.events.append({"kind": kind, "name": name, "at": time.time()})

    def v2_playbook_on_play_start(self, play):
        self._mark("play", play.get_name())

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._mark("task", task.get_name())

    def v2_playbook_on_handler_task_start(self, task):
        self._mark("task", task.get_name())

    def v2_runner_on_ok(self, result):
        if result._task.get_name() == WAIT_TASK:
            self.waits.append({"host": result._host.get_name(), "waited": result._result.get("waited"), "at": time.time()})

    def v2_playbook_on_stats(self, stats):
        self._mark("end", "")
        path = os.environ.get("BENCH_TIMING_FILE")
        if path:
            with open(path, "w") as handle:
                json.dump({"events": self.events, "waits": self.waits, "wait_task": WAIT_TASK}, handle)

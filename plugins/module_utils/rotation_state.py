# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backend of mtls_rotation_state: decide what the state of a rotation becomes, then
write it - the state file first (authoritative), then its ConfigMap mirror.

A failure is raised before anything is written: the phase is checked against the state
before the deprecated ``promote``/``archive`` options move files, and the files move
before the phase is recorded, so a crash in between repeats the (idempotent) moves
instead of recording work that was not done. No AnsibleModule in here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.zerotrust.mtls.plugins.module_utils import backend_results, files, rotation_promote
from ansible_collections.zerotrust.mtls.plugins.module_utils import rotation as rot
from ansible_collections.zerotrust.mtls.plugins.module_utils import rotation_configmaps as configmaps
from ansible_collections.zerotrust.mtls.plugins.module_utils.args_kube_auth import KUBE_AUTH_SPEC

VALIDATION_RULES = {}

# A state file, phase, ConfigMap or CA file to fix, the API server's refusal: MtlsError and
# its subclasses (RotationError, KubeError, PkiError, FileError), one sentence each.
KNOWN_ERRORS = backend_results.KNOWN_ERRORS
failure_result, unexpected_failure_result = backend_results.failure_results("mtls_rotation_state", changed=False)

OPERATIONS = ("read", "start", "complete_phase", "record")

# promote and archive moved to mtls_rotation_promote; here they keep working until 1.0.0.
DEPRECATED_IN = dict(removed_in_version="1.0.0", removed_from_collection="zerotrust.mtls")


def argument_spec():
    spec = dict(
        rotation=dict(type="str", required=True),
        operation=dict(type="str", default="read", choices=list(OPERATIONS)),
        state_path=dict(type="path"),
        phase=dict(type="int"),
        phase_count=dict(type="int"),
        restart_completed=dict(type="bool", default=False),
        stop_after_phase=dict(type="int"),
        data=dict(type="dict", default={}),
        promote=dict(rotation_promote.argument_spec()["promote"], **DEPRECATED_IN),
        archive=dict(rotation_promote.argument_spec()["archive"], **DEPRECATED_IN),
        state_configmap=dict(type="dict"),
        record_configmap=dict(type="dict"),
        success=dict(type="bool", default=True),
    )
    spec.update(KUBE_AUTH_SPEC)
    return spec


def decide_state(params, rotation, before, now):
    """The state after the operation: ``before`` itself when it does not change."""
    operation = params["operation"]
    if operation == "start":
        if before is not None and not (before.get("status") == "complete" and params["restart_completed"]):
            return before
        if not params["phase_count"]:
            raise rot.RotationError("phase_count is required to start a rotation.", "phase_count")
        return rot.new_state(rotation, now, params["phase_count"], params["data"])
    if operation == "complete_phase":
        if before is None:
            raise rot.RotationError(
                "phase %s cannot be recorded: %s holds no rotation; run operation=start first." % (params["phase"], params["state_path"]), "state_path"
            )
        if params["phase"] is None:
            raise rot.RotationError("phase is required with operation=complete_phase.", "phase")
        return rot.complete_phase(before, params["phase"], now, params["data"])[0]
    return before


def write_state(path, state, backup):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    # Keep the previous state beside it, so a broken edit can be undone by hand.
    files.atomic_write(path, rot.state_json(state), 0o600, backup=backup)


def state_diff(before, after):
    return dict(before=rot.state_json(before).decode() if before else "", after=rot.state_json(after).decode() if after else "")


def run_state(module, rotation, now):
    """read, start and complete_phase: the state file, the files it moves, its ConfigMap."""
    params = module.params
    if not params["state_path"]:
        raise rot.RotationError("state_path is required unless operation is record.", "state_path")
    before = rot.load_state(params["state_path"])
    state = decide_state(params, rotation, before, now)
    plan = rot.plan(rotation, state, params["stop_after_phase"], params["restart_completed"])
    promoted, archived = [], []
    if params["operation"] == "complete_phase":
        promoted, archived = rotation_promote.move_files(params["promote"], params["archive"], module.check_mode)
    changed = state is not before or bool(promoted or archived)
    if state is not before and not module.check_mode:
        write_state(params["state_path"], state, backup=before is not None)
    if state is not None and params["state_configmap"]:
        name, namespace = configmaps.configmap_ref(params["state_configmap"], "state_configmap")
        changed = configmaps.sync_data(configmaps.client_for(params), name, namespace, rot.state_configmap_data(state), module.check_mode) or changed
    result = dict(changed=changed, state=state, promoted=promoted, archived=archived, plan=plan)
    if module._diff:
        result["diff"] = state_diff(before, state)
    return result


def run_record(module, rotation, now):
    """record: the run record the exporter reads, in record_configmap only."""
    params = module.params
    name, namespace = configmaps.configmap_ref(params["record_configmap"], "record_configmap")
    changed, record = configmaps.record_run(configmaps.client_for(params), name, namespace, rotation, params["success"], now, module.check_mode)
    return dict(changed=changed, state=None, promoted=[], archived=[], record=record)


def run_module(module):
    """The result of the operation ``module.params`` asks for (in check mode: predicted)."""
    rotation = rot.validate_rotation_name(module.params["rotation"])
    if module.params["operation"] == "record":
        return run_record(module, rotation, time.time())
    return run_state(module, rotation, time.time())

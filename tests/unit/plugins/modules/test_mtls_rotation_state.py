# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mtls_rotation_state: start, resume, promote with archive, check mode, clear failures."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.zerotrust.mtls.plugins.module_utils import rotation_state
from ansible_collections.zerotrust.mtls.plugins.modules import mtls_rotation_state
from ansible_collections.zerotrust.mtls.tests.unit.plugins import rotation_cases


def run(capsys, **args):
    return rotation_cases.run_module(mtls_rotation_state, capsys, **args)


_ca = rotation_cases.write_ca


@pytest.fixture
def state_path(tmp_path, capsys):
    """The state file of a five-phase root_ca rotation that has started."""
    path = str(tmp_path / "state.json")
    run(capsys, rotation="root_ca", operation="start", state_path=path, phase_count=5)
    return path


def complete_phase(capsys, state_path, phase, **args):
    return run(capsys, rotation="root_ca", operation="complete_phase", phase=phase, state_path=state_path, **args)


def rotation_cas(tmp_path, old_passphrase=None, new_passphrase=None):
    """(active, staged): the CA pair in use (root/) and the one to promote (next/)."""
    return _ca(tmp_path / "root", "Old", passphrase=old_passphrase), _ca(tmp_path / "next", "New", passphrase=new_passphrase)


def promote_into_active(tmp_path, active, staged, **extra):
    """The promote option: ``staged`` over ``active``, which is archived to previous/."""
    return [dict({"source": staged, "dest": active, "archive_dir": str(tmp_path / "previous")}, **extra)]


def test_start_resume_and_complete(tmp_path, capsys):
    state_path = str(tmp_path / "rotation" / "root_ca.state.json")
    result = run(capsys, rotation="root_ca", operation="start", state_path=state_path, phase_count=2, check_mode=True)
    assert result["changed"] is True and not os.path.exists(state_path)
    result = run(capsys, rotation="root_ca", operation="start", state_path=state_path, phase_count=2, data={"old_root_sha256": "AA"})
    assert result["changed"] is True and result["state"]["phase_completed"] == 0
    assert os.stat(state_path).st_mode & 0o777 == 0o600
    again = run(capsys, rotation="root_ca", operation="start", state_path=state_path, phase_count=2)
    assert again["changed"] is False and again["state"]["id"] == result["state"]["id"]
    complete_phase(capsys, state_path, 1)
    done = complete_phase(capsys, state_path, 2)
    assert done["state"]["status"] == "complete"
    assert complete_phase(capsys, state_path, 2)["changed"] is False


def test_phase_out_of_order_fails_with_one_sentence(state_path, capsys):
    before = open(state_path).read()
    result = complete_phase(capsys, state_path, 3)
    assert result["failed"] is True and "phase 1 must run first" in result["msg"]
    assert open(state_path).read() == before


def test_promote_in_check_mode_and_for_real(tmp_path, capsys, state_path):
    active, staged = rotation_cas(tmp_path, old_passphrase="old-passphrase-123", new_passphrase="new-passphrase-123")
    old_key = open(active["key"], "rb").read()
    promote = promote_into_active(tmp_path, active, staged, key_passphrase="new-passphrase-123")
    predicted = complete_phase(capsys, state_path, 1, promote=promote, check_mode=True)
    assert predicted["changed"] is True and predicted["promoted"] == [active["cert"], active["key"]]
    assert open(active["key"], "rb").read() == old_key
    result = complete_phase(capsys, state_path, 1, promote=promote)
    assert result["promoted"] == predicted["promoted"] and result["state"]["phase_completed"] == 1
    assert open(str(tmp_path / "previous" / "ca.key"), "rb").read() == old_key
    assert "new-passphrase-123" not in json.dumps(result)
    assert complete_phase(capsys, state_path, 1, promote=promote)["changed"] is False


def test_wrong_passphrase_changes_nothing(tmp_path, capsys, state_path):
    active, staged = rotation_cas(tmp_path, new_passphrase="new-passphrase-123")
    result = complete_phase(capsys, state_path, 1, promote=promote_into_active(tmp_path, active, staged, key_passphrase="wrong-passphrase"))
    assert result["failed"] is True and "promote source" in result["msg"]
    assert json.load(open(state_path))["phase_completed"] == 0 and not os.path.exists(str(tmp_path / "previous"))


def test_record_needs_a_configmap(tmp_path, capsys):
    result = run(capsys, rotation="root_ca", operation="record", record_configmap={"name": "x"})
    assert result["failed"] is True and result["msg"] == "record_configmap must be a dict with name and namespace."


def test_promote_and_archive_still_work(tmp_path, capsys, state_path):
    active, staged = rotation_cas(tmp_path)
    result = complete_phase(
        capsys, state_path, 1, promote=promote_into_active(tmp_path, active, staged), archive=[dict(staged, archive_dir=str(tmp_path / "archive"))]
    )
    assert result["promoted"] == [active["cert"], active["key"]]
    assert result["archived"] == [staged["cert"], staged["key"]] and result["state"]["phase_completed"] == 1


def _deprecations(params):
    """What AnsibleModule reports as deprecated for ``params`` (a module run in the same
    process as controller code hands them to Display instead of its result)."""
    validated = ArgumentSpecValidator(rotation_state.argument_spec()).validate(params)
    return sorted((item["msg"], item["version"], item["collection_name"]) for item in validated._deprecations)


def test_promote_and_archive_are_deprecated_with_a_version_and_collection():
    pair = {"cert": "/x/ca.crt", "key": "/x/ca.key"}
    given = dict(
        rotation="root_ca",
        operation="complete_phase",
        phase=1,
        state_path="/x/state.json",
        promote=[{"source": pair, "dest": pair, "archive_dir": "/x/previous"}],
        archive=[dict(pair, archive_dir="/x/archive")],
    )
    assert _deprecations(given) == [
        ("Param 'archive' is deprecated. See the module docs for more information", "1.0.0", "zerotrust.mtls"),
        ("Param 'promote' is deprecated. See the module docs for more information", "1.0.0", "zerotrust.mtls"),
    ]


def test_a_phase_out_of_order_moves_no_file(tmp_path, capsys, state_path):
    active, staged = rotation_cas(tmp_path)
    old_cert = open(active["cert"], "rb").read()
    result = complete_phase(capsys, state_path, 2, promote=promote_into_active(tmp_path, active, staged))
    assert result["failed"] is True and "phase 1 must run first" in result["msg"]
    assert open(active["cert"], "rb").read() == old_cert and not os.path.exists(str(tmp_path / "previous"))


def test_without_promote_no_deprecation():
    assert _deprecations(dict(rotation="root_ca", operation="start", state_path="/x/state.json", phase_count=5)) == []


def test_read_returns_the_plan_of_the_next_run(tmp_path, capsys):
    state_path = str(tmp_path / "state.json")
    fresh = run(capsys, rotation="root_ca", state_path=state_path, stop_after_phase=2)
    assert fresh["changed"] is False and fresh["state"] is None
    assert fresh["plan"]["pending"] == fresh["plan"]["phases"][:2] and fresh["plan"]["next_phase"] == 1
    run(capsys, rotation="root_ca", operation="start", state_path=state_path, phase_count=5)
    complete_phase(capsys, state_path, 1)
    resumed = run(capsys, rotation="root_ca", state_path=state_path)
    assert resumed["plan"]["next_phase"] == 2 and len(resumed["plan"]["pending"]) == 4
    assert run(capsys, rotation="client_certs", state_path=str(tmp_path / "other.json"))["plan"] is None
    bad = run(capsys, rotation="root_ca", state_path=state_path, stop_after_phase=9)
    assert bad["failed"] is True and bad["msg"] == "stop_after_phase must be a phase number from 1 to 5, got 9."

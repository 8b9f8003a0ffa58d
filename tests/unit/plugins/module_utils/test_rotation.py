# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rotation.py: phase bookkeeping, run records, and CA promotion that never loses a key."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os

import pytest

from ansible_collections.zerotrust.mtls.plugins.module_utils import pki
from ansible_collections.zerotrust.mtls.plugins.module_utils import rotation as rot

DAY = datetime.timedelta(days=1)
NOW = 1795363200  # 2026-11-22T16:00:00Z


def _ca(directory, name):
    key = pki.generate_private_key()
    cert = pki.build_ca(key, name, 3650 * DAY, path_length=1)
    os.makedirs(str(directory), exist_ok=True)
    pair = {"cert": str(directory / "ca.crt"), "key": str(directory / "ca.key")}
    with open(pair["cert"], "wb") as handle:
        handle.write(pki.certificate_pem(cert))
    with open(pair["key"], "wb") as handle:
        handle.write(pki.private_key_pem(key))
    os.chmod(pair["key"], 0o600)
    return pair, pki.key_fingerprint(key)


def test_phases_complete_in_order_and_repeat_idempotently():
    state = rot.new_state("root_ca", NOW, 5, {"old_root_sha256": "AA"})
    assert state["id"] == "20261122T160000Z" and state["phase_completed"] == 0
    state, changed = rot.complete_phase(state, 1, NOW + 1, {"new_root_sha256": "BB"})
    assert changed and state["phase_completed"] == 1 and state["data"] == {"old_root_sha256": "AA", "new_root_sha256": "BB"}
    again, changed = rot.complete_phase(state, 1, NOW + 2)
    assert not changed and again is state
    with pytest.raises(rot.RotationError, match="only completed phase 1, so phase 2 must run first"):
        rot.complete_phase(state, 3, NOW + 3)
    for phase in (2, 3, 4, 5):
        state, changed = rot.complete_phase(state, phase, NOW + phase)
    assert state["status"] == "complete" and [h["phase"] for h in state["history"]] == [1, 2, 3, 4, 5]


def test_pending_phases_honour_the_gate_and_completion():
    phases = rot.ROOT_CA_PHASES
    assert [n for n, _text in rot.pending_phases(None, phases)] == [1, 2, 3, 4, 5]
    state, _unused = rot.complete_phase(rot.new_state("root_ca", NOW, 5), 1, NOW)
    assert [n for n, _text in rot.pending_phases(state, phases, stop_after=3)] == [2, 3]
    state["status"] = "complete"
    assert rot.pending_phases(state, phases) == []


def test_the_plan_lists_the_phases_to_do_up_to_the_gate():
    plan = rot.plan("root_ca", None)
    assert plan["phase_count"] == 5 and plan["next_phase"] == 1 and plan["pending"] == plan["phases"]
    assert plan["phases"][0] == "phase 1: create the new root CA and its intermediate"
    assert plan["phases"][4] == "phase 5: remove the old root from every bundle and archive the old CA"
    state, _unused = rot.complete_phase(rot.new_state("root_ca", NOW, 5), 1, NOW)
    gated = rot.plan("root_ca", state, stop_after=3)
    assert [text.split(":")[0] for text in gated["pending"]] == ["phase 2", "phase 3"] and gated["next_phase"] == 2
    assert rot.plan("root_ca", state, stop_after=1)["pending"] == [] and rot.plan("client_certs", state) is None
    assert rot.plan("intermediate", None)["phase_count"] == 3, "rotate_intermediate.yml takes its phase count from the plan"


def test_a_complete_rotation_plans_nothing_unless_a_new_one_starts():
    state = rot.new_state("root_ca", NOW, 5)
    for phase in (1, 2, 3, 4, 5):
        state, _unused = rot.complete_phase(state, phase, NOW + phase)
    assert rot.plan("root_ca", state)["pending"] == [] and rot.plan("root_ca", state)["next_phase"] is None
    assert rot.plan("root_ca", state, restart_completed=True)["pending"] == rot.plan("root_ca", None)["phases"]


@pytest.mark.parametrize("gate", [0, 6])
def test_a_gate_outside_the_phases_is_one_sentence(gate):
    with pytest.raises(rot.RotationError, match=r"^stop_after_phase must be a phase number from 1 to 5, got %d\.$" % gate):
        rot.plan("root_ca", None, stop_after=gate)


def test_state_file_round_trip_and_clear_errors(tmp_path):
    path = tmp_path / "state.json"
    assert rot.load_state(str(path)) is None
    state = rot.new_state("root_ca", NOW, 5)
    path.write_bytes(rot.state_json(state))
    assert rot.load_state(str(path)) == state
    path.write_text('{"phase_completed": "two"}')
    with pytest.raises(rot.RotationError, match="has no integer phase_completed"):
        rot.load_state(str(path))
    path.write_text("{broken")
    with pytest.raises(rot.RotationError, match="is not valid JSON"):
        rot.load_state(str(path))


def test_configmap_data_is_all_strings():
    state, _unused = rot.complete_phase(rot.new_state("root_ca", NOW, 5, {"leaves": 3}), 1, NOW)
    data = rot.state_configmap_data(state)
    assert all(isinstance(v, str) for v in data.values())
    assert data["phase_completed"] == "1" and data["data.leaves"] == "3" and data["status"] == "in_progress"


def test_run_records_follow_the_exporter_format():
    data = rot.record_run({}, "root_ca", True, NOW)
    assert data == {"root_ca.last_success": str(NOW), "root_ca.failures_total": "0"}
    data = rot.record_run(data, "root_ca", False, NOW + 10)
    data = rot.record_run(data, "root_ca", False, NOW + 20)
    assert data["root_ca.failures_total"] == "2" and data["root_ca.last_failure"] == str(NOW + 20)
    assert data["root_ca.last_success"] == str(NOW)
    other = rot.record_run(data, "audit", True, NOW)
    assert other["root_ca.failures_total"] == "2" and other["audit.failures_total"] == "0"
    with pytest.raises(rot.RotationError, match="only hold letters"):
        rot.record_run({}, "root.ca", True, NOW)


def test_bundle_keeps_each_root_once(tmp_path):
    first, _unused = _ca(tmp_path / "a", "Root A")
    second, _unused = _ca(tmp_path / "b", "Root B")
    pem_a = open(first["cert"], "rb").read()
    pem_b = open(second["cert"], "rb").read()
    bundle = rot.bundle_pem([pem_a, pem_b, pem_a])
    assert bundle.count(b"BEGIN CERTIFICATE") == 2
    with pytest.raises(rot.RotationError, match="holds no certificate"):
        rot.bundle_pem([b"", None])


def test_promote_archives_the_replaced_key_first(tmp_path):
    old, old_fp = _ca(tmp_path / "active", "Old Root")
    new, new_fp = _ca(tmp_path / "next", "New Root")
    archive = str(tmp_path / "archive")
    assert rot.promote_pair(new, old, archive, dry_run=True) == [old["cert"], old["key"]]
    assert not os.path.exists(archive), "a dry run writes nothing"
    changed = rot.promote_pair(new, old, archive)
    assert changed == [old["cert"], old["key"]]
    assert open(old["key"], "rb").read() == open(new["key"], "rb").read()
    archived_key = os.path.join(archive, "ca.key")
    assert pki.key_fingerprint(pki.load_private_key(open(archived_key, "rb").read(), "k")) == old_fp
    assert os.stat(archived_key).st_mode & 0o777 == 0o600 and os.stat(archive).st_mode & 0o777 == 0o700
    assert os.stat(old["key"]).st_mode & 0o777 == 0o600
    assert rot.promote_pair(new, old, archive) == [], "promoting again changes nothing"
    assert new_fp


def test_promote_switches_certificate_and_key_in_one_rename(tmp_path):
    old, _old_fp = _ca(tmp_path / "active", "Old Root")
    new, new_fp = _ca(tmp_path / "next", "New Root")
    (tmp_path / "active" / "other.txt").write_text("not ours")
    rot.promote_pair(new, old, str(tmp_path / "archive"))
    # Both visible names are symlinks into the one version ..data points to: a crash
    # shows the old pair or the new pair, never a mix.
    for path in (old["cert"], old["key"]):
        assert os.path.islink(path) and os.readlink(path).startswith("..data/")
    key = pki.load_private_key(open(old["key"], "rb").read(), "k")
    cert = pki.load_certificate(open(old["cert"], "rb").read(), "c")
    assert pki.key_matches_certificate(key, cert) and pki.key_fingerprint(key) == new_fp
    assert (tmp_path / "active" / "other.txt").read_text() == "not ours"
    assert os.stat(old["key"]).st_mode & 0o777 == 0o600


def test_promote_refuses_a_mismatched_source(tmp_path):
    active, _unused = _ca(tmp_path / "active", "Active")
    first, _unused = _ca(tmp_path / "x", "X")
    second, _unused = _ca(tmp_path / "y", "Y")
    before = open(active["key"], "rb").read()
    with pytest.raises(rot.RotationError, match="does not match the certificate"):
        rot.promote_pair({"cert": first["cert"], "key": second["key"]}, active, str(tmp_path / "archive"))
    assert open(active["key"], "rb").read() == before and not os.path.exists(str(tmp_path / "archive"))


def test_archive_move_keeps_a_copy_before_removing(tmp_path):
    pair, fingerprint = _ca(tmp_path / "previous", "Previous")
    archive = str(tmp_path / "archive" / "old-root")
    assert rot.archive_move(pair, archive) == [pair["cert"], pair["key"]]
    assert not os.path.exists(pair["key"])
    key = pki.load_private_key(open(os.path.join(archive, "ca.key"), "rb").read(), "k")
    assert pki.key_fingerprint(key) == fingerprint
    assert rot.archive_move(pair, archive) == [], "a second run finds nothing left to move"


def test_archive_never_overwrites_a_different_archived_key(tmp_path):
    first, first_fp = _ca(tmp_path / "one", "One")
    second, second_fp = _ca(tmp_path / "two", "Two")
    archive = str(tmp_path / "archive")
    rot.archive_copy(first, archive)
    rot.archive_copy(second, archive)
    keys = sorted(name for name in os.listdir(archive) if name.startswith("ca.key"))
    fingerprints = set(pki.key_fingerprint(pki.load_private_key(open(os.path.join(archive, n), "rb").read(), n)) for n in keys)
    assert fingerprints == {first_fp, second_fp}

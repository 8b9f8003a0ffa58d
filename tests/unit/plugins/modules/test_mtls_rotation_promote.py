# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mtls_rotation_promote: promote and archive real CA files; check mode, idempotence, refusals."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.zerotrust.mtls.plugins.modules import mtls_rotation_promote
from ansible_collections.zerotrust.mtls.tests.unit.plugins import rotation_cases
from ansible_collections.zerotrust.mtls.tests.unit.plugins.file_snapshots import directory_snapshot


def run(capsys, **args):
    return rotation_cases.run_module(mtls_rotation_promote, capsys, **args)


_ca = rotation_cases.write_ca


def _mode(path):
    return os.stat(str(path)).st_mode & 0o777


def test_promote_check_mode_real_run_and_rerun(tmp_path, capsys):
    active = _ca(tmp_path / "root", "Old", passphrase="old-passphrase-123")
    staged = _ca(tmp_path / "next", "New", passphrase="new-passphrase-123")
    old_key = open(active["key"], "rb").read()
    new_key = open(staged["key"], "rb").read()
    args = dict(promote=[{"source": staged, "dest": active, "archive_dir": str(tmp_path / "previous"), "key_passphrase": "new-passphrase-123"}])
    before = directory_snapshot(tmp_path)
    predicted = run(capsys, check_mode=True, **args)
    assert predicted["changed"] is True and predicted["promoted"] == [active["cert"], active["key"]]
    assert predicted["archived"] == []
    assert directory_snapshot(tmp_path) == before and not os.path.exists(str(tmp_path / "previous"))

    result = run(capsys, **args)
    assert result["changed"] is True and result["promoted"] == predicted["promoted"]
    assert open(active["key"], "rb").read() == new_key
    assert open(str(tmp_path / "previous" / "ca.key"), "rb").read() == old_key
    assert _mode(active["key"]) == 0o600 and _mode(tmp_path / "previous" / "ca.key") == 0o600
    assert _mode(tmp_path / "previous") == 0o700
    assert "new-passphrase-123" not in json.dumps(result)

    again = run(capsys, **args)
    assert again["changed"] is False and again["promoted"] == [] and again["archived"] == []
    assert run(capsys, check_mode=True, **args)["changed"] is False


def test_a_missing_source_fails_with_one_sentence_and_moves_nothing(tmp_path, capsys):
    first_active, first_staged = _ca(tmp_path / "a" / "root", "A old"), _ca(tmp_path / "a" / "next", "A new")
    second_active = _ca(tmp_path / "b" / "root", "B old")
    missing = {"cert": str(tmp_path / "b" / "next" / "ca.crt"), "key": str(tmp_path / "b" / "next" / "ca.key")}
    before = directory_snapshot(tmp_path)
    result = run(
        capsys,
        promote=[
            {"source": first_staged, "dest": first_active, "archive_dir": str(tmp_path / "a" / "previous")},
            {"source": missing, "dest": second_active, "archive_dir": str(tmp_path / "b" / "previous")},
        ],
    )
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"] == "promote source: %s or %s is missing." % (missing["cert"], missing["key"])
    assert result["msg"].count(". ") == 0 and result["msg"].endswith(".")
    assert directory_snapshot(tmp_path) == before
    assert not os.path.exists(str(tmp_path / "a" / "previous"))


def test_an_entry_without_key_path_fails_naming_it(tmp_path, capsys):
    active, staged = _ca(tmp_path / "root", "Old"), _ca(tmp_path / "next", "New")
    before = directory_snapshot(tmp_path)
    result = run(capsys, promote=[{"source": {"cert": staged["cert"]}, "dest": active, "archive_dir": str(tmp_path / "previous")}])
    assert result["failed"] is True and result["msg"] == "promote[0].source must name cert and key paths."
    assert result["field"] == "promote[0].source"
    assert directory_snapshot(tmp_path) == before


def test_wrong_passphrase_moves_nothing_and_leaks_nothing(tmp_path, capsys):
    active = _ca(tmp_path / "root", "Old")
    staged = _ca(tmp_path / "next", "New", passphrase="new-passphrase-123")
    before = directory_snapshot(tmp_path)
    result = run(capsys, promote=[{"source": staged, "dest": active, "archive_dir": str(tmp_path / "previous"), "key_passphrase": "wrong-passphrase"}])
    assert result["failed"] is True and "promote source" in result["msg"]
    assert "wrong-passphrase" not in json.dumps(result)
    assert directory_snapshot(tmp_path) == before


def test_archive_check_mode_real_run_and_rerun(tmp_path, capsys):
    staged = _ca(tmp_path / "next", "Staged copy")
    content = directory_snapshot(tmp_path / "next")
    args = dict(archive=[dict(staged, archive_dir=str(tmp_path / "archive" / "new-root-staging"))])
    predicted = run(capsys, check_mode=True, **args)
    assert predicted["changed"] is True and predicted["archived"] == [staged["cert"], staged["key"]]
    assert directory_snapshot(tmp_path / "next") == content and not os.path.exists(str(tmp_path / "archive"))
    result = run(capsys, **args)
    assert result["archived"] == predicted["archived"] and result["promoted"] == []
    assert not os.path.exists(staged["cert"]) and not os.path.exists(staged["key"])
    assert directory_snapshot(tmp_path / "archive" / "new-root-staging") == content
    assert _mode(tmp_path / "archive" / "new-root-staging" / "ca.key") == 0o600
    assert run(capsys, **args)["changed"] is False


def test_check_mode_predicts_the_crls_carried_to_the_archive(tmp_path, capsys):
    active, staged = _ca(tmp_path / "root", "Old"), _ca(tmp_path / "next", "New")
    (tmp_path / "root" / "ca.crl").write_bytes(b"old CRL")
    args = dict(promote=[{"source": staged, "dest": active, "archive_dir": str(tmp_path / "previous"), "carry_crls": True}])
    predicted = run(capsys, check_mode=True, **args)
    assert os.path.exists(str(tmp_path / "root" / "ca.crl"))
    result = run(capsys, **args)
    assert predicted["promoted"] == result["promoted"]
    assert str(tmp_path / "root" / "ca.crl") in result["promoted"]
    assert open(str(tmp_path / "previous" / "ca.crl"), "rb").read() == b"old CRL"


def test_diff_names_paths_never_key_material(tmp_path, capsys):
    active, staged = _ca(tmp_path / "root", "Old"), _ca(tmp_path / "next", "New")
    result = run(capsys, check_mode=True, diff=True, promote=[{"source": staged, "dest": active, "archive_dir": str(tmp_path / "previous")}])
    assert result["diff"]["before"] == {active["cert"]: "present", active["key"]: "present"}
    assert result["diff"]["after"] == {active["cert"]: "from %s" % staged["cert"], active["key"]: "from %s" % staged["key"]}
    assert "PRIVATE KEY" not in json.dumps(result)

# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mtls_ca's pair atomicity: cert_path, key_path and chain_path of one directory in the
versioned layout (files.VersionedBatch) - one rename switches the pair."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import shutil
import stat

import pytest

from ansible_collections.zerotrust.mtls.plugins.module_utils import files, pki
from ansible_collections.zerotrust.mtls.plugins.modules import mtls_ca
from ansible_collections.zerotrust.mtls.tests.unit.plugins.file_snapshots import directory_snapshot

NAMES = ("ca.crt", "ca.key", "chain.pem")


MODULE = mtls_ca
RUN_DEFAULTS = {"diff": True}


def ca_args(directory, **extra):
    args = dict(cert_path=str(directory / "ca.crt"), key_path=str(directory / "ca.key"), chain_path=str(directory / "chain.pem"), common_name="Versioned Root")
    args.update(extra)
    return args


def pair(directory):
    """(certificate, key) read through the visible names; asserts they match."""
    cert = pki.load_certificate((directory / "ca.crt").read_bytes(), "cert")
    key = pki.load_private_key((directory / "ca.key").read_bytes(), "key")
    assert pki.key_matches_certificate(key, cert)
    return cert, key


def assert_versioned(directory):
    for name in NAMES:
        assert os.readlink(str(directory / name)) == "..data/" + name
    assert files.current_version(str(directory)) is not None
    assert stat.S_IMODE(os.stat(str(directory / "ca.key")).st_mode) == 0o600
    pair(directory)


def test_created_in_the_versioned_layout_and_idempotent(tmp_path, run):
    created = run(**ca_args(tmp_path))
    assert created["changed"] and created["reason"] == "created" and created["layout"] == "versioned"
    assert_versioned(tmp_path)
    before = directory_snapshot(tmp_path)
    for check_mode in (True, False):
        again = run(check_mode=check_mode, **ca_args(tmp_path))
        assert again["changed"] is False and again["reason"] == "unchanged"
    assert directory_snapshot(tmp_path) == before


def test_rekey_switches_the_pair_in_one_rename(tmp_path, run, monkeypatch):
    run(**ca_args(tmp_path))
    old_cert, old_key = pair(tmp_path)
    old_key_bytes = (tmp_path / "ca.key").read_bytes()
    renames = []
    real_rename = os.rename

    def recording_rename(src, dst):
        # Just before the one switch, the visible pair is still the old, complete one.
        if os.path.basename(dst) == files.DATA_LINK:
            cert, _key = pair(tmp_path)
            assert cert.serial_number == old_cert.serial_number
        renames.append(os.path.basename(dst))
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", recording_rename)
    forced = run(**ca_args(tmp_path, force=True))
    monkeypatch.setattr(os, "rename", real_rename)
    assert forced["changed"] and forced["reason"] == "forced"
    # Only the key's backup copy and ..data are renamed into place; never a visible name.
    assert renames.count(files.DATA_LINK) == 1
    assert not set(renames) & set(NAMES)
    assert [name for name in renames if name != files.DATA_LINK] == [os.path.basename(path) for path in forced["backup_files"]]
    new_cert, new_key = pair(tmp_path)
    assert pki.key_fingerprint(new_key) != pki.key_fingerprint(old_key)
    assert new_cert.serial_number != old_cert.serial_number
    assert_versioned(tmp_path)
    # The old key is kept, 0600; only one version directory is left.
    (backup,) = forced["backup_files"]
    assert backup.startswith(str(tmp_path / "ca.key.")) and open(backup, "rb").read() == old_key_bytes
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    assert len([n for n in os.listdir(str(tmp_path)) if n.startswith("..") and n != files.DATA_LINK]) == 1


def _make_plain(directory):
    """Turn the versioned layout back into plain files (the layout of older releases)."""
    contents = dict((name, ((directory / name).read_bytes(), stat.S_IMODE(os.stat(str(directory / name)).st_mode))) for name in NAMES)
    version = files.current_version(str(directory))
    for name in NAMES:
        os.unlink(str(directory / name))
    os.unlink(str(directory / files.DATA_LINK))
    shutil.rmtree(str(directory / version))
    for name, (content, mode) in contents.items():
        (directory / name).write_bytes(content)
        os.chmod(str(directory / name), mode)
    return contents


def test_plain_files_are_converted_once_without_changing_a_byte(tmp_path, run):
    created = run(**ca_args(tmp_path))
    contents = _make_plain(tmp_path)
    before = directory_snapshot(tmp_path)
    predicted = run(check_mode=True, **ca_args(tmp_path))
    assert predicted["changed"] is True and predicted["reason"] == "files_updated"
    assert directory_snapshot(tmp_path) == before, "check mode wrote something"
    converted = run(**ca_args(tmp_path))
    assert converted["changed"] is True and converted["reason"] == "files_updated"
    assert converted["serial"] == created["serial"] and converted["backup_files"] == []
    assert "PRIVATE" not in json.dumps(converted)
    assert_versioned(tmp_path)
    for name, (content, mode) in contents.items():
        assert (tmp_path / name).read_bytes() == content
        assert stat.S_IMODE(os.stat(str(tmp_path / name)).st_mode) == mode
    for check_mode in (True, False):
        again = run(check_mode=check_mode, **ca_args(tmp_path))
        assert again["changed"] is False and again["reason"] == "unchanged"


def test_renewal_of_plain_files_converts_and_keeps_the_key(tmp_path, run):
    created = run(**ca_args(tmp_path))
    contents = _make_plain(tmp_path)
    renewed = run(**ca_args(tmp_path, renew_before="3651d"))
    assert renewed["reason"] == "renewed" and renewed["key_fingerprint"] == created["key_fingerprint"]
    assert_versioned(tmp_path)
    assert (tmp_path / "ca.key").read_bytes() == contents["ca.key"][0]


def test_other_files_and_subdirectories_are_left_exactly_as_they_are(tmp_path, run):
    (tmp_path / "README").write_text("not ours\n")
    (tmp_path / "serial.txt").write_text("42\n")
    os.chmod(str(tmp_path / "serial.txt"), 0o640)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner.crt").write_text("inner\n")
    (tmp_path / ".hidden").write_text("hidden\n")
    os.symlink("README", str(tmp_path / "readme-link"))
    # Another writer's temp file (a live pid: ours) and a dead writer's temp file of another name.
    (tmp_path / (".other.crt.%d.0.tmp" % os.getpid())).write_text("busy\n")
    (tmp_path / ".other.crt.999999999.0.tmp").write_text("not ours to remove\n")
    others = directory_snapshot(tmp_path)
    run(**ca_args(tmp_path))
    run(**ca_args(tmp_path, force=True))
    run(**ca_args(tmp_path, common_name="Renamed Root"))
    assert_versioned(tmp_path)
    after = directory_snapshot(tmp_path)
    assert dict((k, v) for k, v in after.items() if k in others) == others
    ours = set(after) - set(others)
    assert all(k in NAMES or k.startswith("..") or k.startswith("ca.key.") for k in ours), ours
    # The version holds only the names this module manages.
    assert sorted(os.listdir(str(tmp_path / files.DATA_LINK))) == sorted(NAMES)


def test_leftovers_of_killed_runs_are_removed_and_not_a_change(tmp_path, run):
    run(**ca_args(tmp_path))
    dead = "..20200101T000000.000000Z.999999999.0"
    (tmp_path / dead).mkdir()
    (tmp_path / dead / "ca.key").write_text("half written")
    os.symlink(dead, str(tmp_path / "..data_tmp.999999999.0"))
    (tmp_path / ".ca.crt.999999999.3.tmp").write_text("x")
    (tmp_path / ".ca.crt.999999999.probe").write_text("")
    predicted = run(check_mode=True, **ca_args(tmp_path))
    assert predicted["changed"] is False and predicted["leftovers_removed"] == 4
    assert (tmp_path / dead).is_dir()
    cleaned = run(**ca_args(tmp_path))
    assert cleaned["changed"] is False and cleaned["leftovers_removed"] == 4
    assert not (tmp_path / dead).exists() and not os.path.lexists(str(tmp_path / "..data_tmp.999999999.0"))
    assert [n for n in os.listdir(str(tmp_path)) if n.endswith((".tmp", ".probe"))] == []
    assert_versioned(tmp_path)


@pytest.mark.parametrize("fail_on", ["switch", "flush"])
def test_failure_mid_commit_leaves_the_old_complete_pair(tmp_path, run, monkeypatch, fail_on):
    run(**ca_args(tmp_path))
    old = dict((name, (tmp_path / name).read_bytes()) for name in NAMES)
    old_version = files.current_version(str(tmp_path))
    real_rename, real_fsync = os.rename, os.fsync

    def failing_rename(src, dst):
        if fail_on == "switch" and os.path.basename(dst) == files.DATA_LINK:
            raise OSError(errno.EIO, "injected I/O error", dst)
        return real_rename(src, dst)

    def failing_fsync(descriptor):
        if fail_on == "flush" and stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(errno.EIO, "injected I/O error")
        return real_fsync(descriptor)

    monkeypatch.setattr(os, "rename", failing_rename)
    monkeypatch.setattr(os, "fsync", failing_fsync)
    failed = run(**ca_args(tmp_path, force=True))
    monkeypatch.setattr(os, "rename", real_rename)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert failed.get("failed") is True and "injected I/O error" in failed["msg"]
    assert "nothing visible changed" in failed["msg"]
    assert "PRIVATE" not in json.dumps(failed)
    for name in NAMES:
        assert (tmp_path / name).read_bytes() == old[name]
    assert files.current_version(str(tmp_path)) == old_version
    assert [n for n in os.listdir(str(tmp_path)) if n.startswith("..") and n != files.DATA_LINK] == [old_version]
    assert_versioned(tmp_path)
    # The next run does what the failed one could not.
    forced = run(**ca_args(tmp_path, force=True))
    assert forced["changed"] and (tmp_path / "ca.key").read_bytes() != old["ca.key"]
    assert_versioned(tmp_path)


def test_different_directories_keep_one_file_per_rename(tmp_path, run):
    (tmp_path / "certs").mkdir()
    (tmp_path / "keys").mkdir()
    args = dict(cert_path=str(tmp_path / "certs" / "ca.crt"), key_path=str(tmp_path / "keys" / "ca.key"), common_name="Split Root")
    created = run(**args)
    assert created["changed"] and created["layout"] == "files"
    for path in (args["cert_path"], args["key_path"]):
        assert not os.path.islink(path)
    assert run(**args)["changed"] is False


def test_state_absent_removes_the_hidden_key_too(tmp_path, run):
    (tmp_path / "keep.txt").write_text("keep\n")
    run(**ca_args(tmp_path))
    removed = run(state="absent", **dict((k, v) for k, v in ca_args(tmp_path).items() if k != "common_name"))
    assert removed["changed"] and removed["reason"] == "removed"
    assert sorted(os.listdir(str(tmp_path))) == sorted(["keep.txt"] + [os.path.basename(p) for p in removed["backup_files"]])
    (backup,) = removed["backup_files"]
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600


def test_reserved_names_are_refused_naming_the_field(tmp_path, run):
    failed = run(**ca_args(tmp_path, key_path=str(tmp_path / "..data")))
    assert failed.get("failed") is True and failed["field"] == "key_path" and "reserved" in failed["msg"]
    assert os.listdir(str(tmp_path)) == []

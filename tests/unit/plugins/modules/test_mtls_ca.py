# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mtls_ca run as Ansible runs it (module args, check mode, diff) against real files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from ansible_collections.zerotrust.mtls.plugins.module_utils import pki
from ansible_collections.zerotrust.mtls.plugins.modules import mtls_ca
from ansible_collections.zerotrust.mtls.tests.unit.plugins.file_snapshots import directory_snapshot

PASSPHRASE = "correct horse battery staple"


MODULE = mtls_ca
RUN_DEFAULTS = {"diff": True}


def ca_files(tmp_path, stem):
    """cert_path, key_path and chain_path of the CA <stem> in ``tmp_path``."""
    return dict(cert_path=str(tmp_path / (stem + ".crt")), key_path=str(tmp_path / (stem + ".key")), chain_path=str(tmp_path / (stem + ".chain.crt")))


def root_args(tmp_path, **extra):
    args = dict(ca_files(tmp_path, "root"), common_name="Unit Root", organization="Unit", key_passphrase=PASSPHRASE, path_length=1)
    args.update(extra)
    return args


def inter_args(tmp_path, **extra):
    args = dict(
        ca_files(tmp_path, "int"),
        common_name="Unit Intermediate",
        parent_cert_path=str(tmp_path / "root.crt"),
        parent_key_path=str(tmp_path / "root.key"),
        parent_key_passphrase=PASSPHRASE,
        valid_for="365d",
    )
    args.update(extra)
    return args


def test_root_check_mode_then_create_then_idempotent(tmp_path, run):
    predicted = run(check_mode=True, **root_args(tmp_path))
    assert predicted["changed"] is True and predicted["reason"] == "created"
    assert os.listdir(str(tmp_path)) == []
    created = run(**root_args(tmp_path))
    assert created["changed"] is True and created["reason"] == "created"
    assert stat.S_IMODE(os.stat(str(tmp_path / "root.key")).st_mode) == 0o600
    assert (tmp_path / "root.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    cert = pki.load_certificate((tmp_path / "root.crt").read_bytes(), "x")
    assert created["serial"] == "%X" % cert.serial_number
    assert created["sha256_fingerprint"] == pki.sha256_fingerprint(cert)
    assert created["subject"] == "CN=Unit Root,O=Unit"
    assert created["cert_pem"] == created["chain_pem"] == (tmp_path / "root.chain.crt").read_text()
    assert created["is_root"] is True
    text = json.dumps(created)
    assert "PRIVATE KEY" not in text and PASSPHRASE not in text
    before = directory_snapshot(tmp_path)
    for check_mode in (True, False):
        again = run(check_mode=check_mode, **root_args(tmp_path))
        assert again["changed"] is False and again["reason"] == "unchanged"
        assert again["serial"] == created["serial"]
    assert directory_snapshot(tmp_path) == before


def test_intermediate_chain_and_openssl(tmp_path, run):
    run(**root_args(tmp_path))
    created = run(**inter_args(tmp_path))
    assert created["changed"] and created["reason"] == "created" and created["is_root"] is False
    chain = pki.load_certificates((tmp_path / "int.chain.crt").read_bytes(), "x")
    assert [c.subject.rfc4514_string() for c in chain] == ["CN=Unit Intermediate", "CN=Unit Root,O=Unit"]
    pki.verify_chain(chain[0], [], [chain[1]], "chain")
    assert pki.basic_constraints(chain[0]) == (True, 0)
    assert run(**inter_args(tmp_path))["changed"] is False


def test_renewal_keeps_the_key(tmp_path, run):
    first = run(**root_args(tmp_path))
    renewed = run(**root_args(tmp_path, renew_before="3651d"))
    assert renewed["changed"] and renewed["reason"] == "renewed"
    assert renewed["serial"] != first["serial"]
    assert renewed["key_fingerprint"] == first["key_fingerprint"]
    assert renewed["diff"]["before"]["serial"] == first["serial"]
    assert renewed["diff"]["after"]["serial"] == renewed["serial"]
    assert "PRIVATE" not in json.dumps(renewed["diff"])


def test_key_type_change_makes_a_new_key_and_always_backs_up_the_old(tmp_path, run):
    first = run(**root_args(tmp_path))
    old_key = (tmp_path / "root.key").read_bytes()
    changed = run(**root_args(tmp_path, key_type="ec_p384", backup=False))
    assert changed["reason"] == "drift" and changed["key_fingerprint"] != first["key_fingerprint"]
    key_backups = [p for p in changed["backup_files"] if p.startswith(str(tmp_path / "root.key"))]
    assert len(key_backups) == 1
    with open(key_backups[0], "rb") as handle:
        assert handle.read() == old_key
    assert stat.S_IMODE(os.stat(key_backups[0]).st_mode) == 0o600


def test_force_is_reported_and_backs_up(tmp_path, run):
    first = run(**root_args(tmp_path))
    forced = run(**root_args(tmp_path, force=True))
    assert forced["reason"] == "forced" and forced["key_fingerprint"] != first["key_fingerprint"]
    assert any(p.startswith(str(tmp_path / "root.key.")) for p in forced["backup_files"])


def test_subject_change_is_drift_with_the_same_key(tmp_path, run):
    first = run(**root_args(tmp_path))
    drift = run(**root_args(tmp_path, common_name="Renamed Root"))
    assert drift["reason"] == "drift" and drift["key_fingerprint"] == first["key_fingerprint"]


@pytest.mark.parametrize(
    "change, field, fragment",
    [
        (dict(parent_key_passphrase="wrong"), "parent_key_passphrase", "cannot be decrypted"),
        (dict(parent_key_passphrase=None), "parent_key_passphrase", "is encrypted"),
        (dict(valid_for="5000d"), "valid_for", "shorten valid_for or renew the CA"),
        (dict(path_length=1), "path_length", "at most 0"),
        (dict(valid_for="-3d"), "valid_for", "positive"),
        (dict(key_type="dsa"), None, "key_type"),
    ],
)
def test_bad_intermediate_requests_fail_and_change_nothing(tmp_path, run, change, field, fragment):
    run(**root_args(tmp_path, path_length=1, valid_for="3650d"))
    before = directory_snapshot(tmp_path)
    result = run(**inter_args(tmp_path, **change))
    assert result["failed"] is True
    assert fragment in result["msg"]
    if field:
        assert result["field"] == field and field in result["msg"]
    assert directory_snapshot(tmp_path) == before


def test_parent_with_pathlen_zero_cannot_sign_an_intermediate(tmp_path, run):
    run(**root_args(tmp_path, path_length=0))
    before = directory_snapshot(tmp_path)
    result = run(**inter_args(tmp_path))
    assert result["failed"] and result["field"] == "parent_cert_path" and "pathlen 0" in result["msg"]
    assert directory_snapshot(tmp_path) == before


def test_parent_that_is_not_a_ca(tmp_path, run):
    run(**root_args(tmp_path))
    issuer = pki.Issuer(
        pki.load_certificate((tmp_path / "root.crt").read_bytes(), "x"), pki.load_private_key((tmp_path / "root.key").read_bytes(), "x", PASSPHRASE)
    )
    leaf_key = pki.generate_private_key()
    leaf = pki.build_leaf(issuer, pki.LeafSpec("not-a-ca"), leaf_key)
    (tmp_path / "leaf.crt").write_bytes(pki.certificate_pem(leaf))
    (tmp_path / "leaf.key").write_bytes(pki.private_key_pem(leaf_key))
    result = run(**inter_args(tmp_path, parent_cert_path=str(tmp_path / "leaf.crt"), parent_key_path=str(tmp_path / "leaf.key"), parent_key_passphrase=None))
    assert result["failed"] and result["field"] == "parent_cert_path" and "not a CA" in result["msg"]
    assert not (tmp_path / "int.crt").exists()


def test_unreadable_existing_ca_key_is_an_error_not_a_new_key(tmp_path, run):
    run(**root_args(tmp_path))
    before = directory_snapshot(tmp_path)
    result = run(**root_args(tmp_path, key_passphrase="not it"))
    assert result["failed"] and result["field"] == "key_passphrase" and result["msg"].startswith("key_path ")
    assert directory_snapshot(tmp_path) == before


def test_state_absent_removes_with_key_backup(tmp_path, run):
    run(**root_args(tmp_path))
    predicted = run(check_mode=True, state="absent", cert_path=str(tmp_path / "root.crt"), key_path=str(tmp_path / "root.key"))
    assert predicted["changed"] and (tmp_path / "root.key").exists()
    removed = run(state="absent", cert_path=str(tmp_path / "root.crt"), key_path=str(tmp_path / "root.key"), chain_path=str(tmp_path / "root.chain.crt"))
    assert removed["changed"] and removed["reason"] == "removed"
    assert not (tmp_path / "root.key").exists() and not (tmp_path / "root.crt").exists()
    assert len(removed["backup_files"]) == 1 and ".key." in removed["backup_files"][0]
    again = run(state="absent", cert_path=str(tmp_path / "root.crt"), key_path=str(tmp_path / "root.key"))
    assert again["changed"] is False and again["reason"] == "absent"


def test_key_mode_drift_is_fixed_without_reissuing(tmp_path, run):
    first = run(**root_args(tmp_path))
    os.chmod(str(tmp_path / "root.key"), 0o644)
    predicted = run(check_mode=True, **root_args(tmp_path))
    assert predicted["changed"] and predicted["reason"] == "files_updated"
    fixed = run(**root_args(tmp_path))
    assert fixed["changed"] and fixed["serial"] == first["serial"]
    assert stat.S_IMODE(os.stat(str(tmp_path / "root.key")).st_mode) == 0o600


def test_plain_key_is_encrypted_once_with_a_backup(tmp_path, run):
    """An intermediate left unencrypted by an older release is encrypted in place: same key,
    same certificate, a backup of the plain key, then nothing to do."""
    run(**root_args(tmp_path))
    plain_args = inter_args(tmp_path)
    created = run(**plain_args)
    assert created["changed"] is True
    plain_key = (tmp_path / "int.key").read_bytes()
    assert plain_key.startswith(b"-----BEGIN PRIVATE KEY-----")
    cert_before = (tmp_path / "int.crt").read_bytes()
    before = directory_snapshot(tmp_path)

    encrypted_args = inter_args(tmp_path, key_passphrase="intermediate passphrase")
    predicted = run(check_mode=True, **encrypted_args)
    assert predicted["changed"] is True and predicted["reason"] == "key_encrypted"
    assert predicted["diff"]["before"]["key_encrypted"] is False
    assert predicted["diff"]["after"]["key_encrypted"] is True
    assert directory_snapshot(tmp_path) == before

    converted = run(**encrypted_args)
    assert converted["changed"] is True and converted["reason"] == "key_encrypted"
    new_key = (tmp_path / "int.key").read_bytes()
    assert new_key.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(os.stat(str(tmp_path / "int.key")).st_mode) == 0o600
    same = pki.load_private_key(new_key, "k", "intermediate passphrase")
    assert pki.key_fingerprint(same) == created["key_fingerprint"] == converted["key_fingerprint"]
    assert (tmp_path / "int.crt").read_bytes() == cert_before
    assert len(converted["backup_files"]) == 1
    with open(converted["backup_files"][0], "rb") as handle:
        assert handle.read() == plain_key
    assert stat.S_IMODE(os.stat(converted["backup_files"][0]).st_mode) == 0o600
    assert "PRIVATE KEY" not in json.dumps(converted)

    rerun = run(**encrypted_args)
    assert rerun["changed"] is False and rerun["reason"] == "unchanged"
    assert (tmp_path / "int.key").read_bytes() == new_key


def test_encrypted_key_with_the_wrong_passphrase_is_never_rewritten(tmp_path, run):
    run(**root_args(tmp_path))
    run(**inter_args(tmp_path, key_passphrase="intermediate passphrase"))
    before = directory_snapshot(tmp_path)
    failed = run(**inter_args(tmp_path, key_passphrase="another passphrase"))
    assert failed["failed"] is True and failed["field"] == "key_passphrase"
    assert "cannot be decrypted with the given passphrase (key_passphrase)" in failed["msg"]
    assert directory_snapshot(tmp_path) == before

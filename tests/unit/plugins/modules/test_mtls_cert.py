# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mtls_cert, single and batch, run as Ansible runs it against real files and a real CA."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os
import shutil
import stat
import subprocess

import pytest
from cryptography import x509

from ansible_collections.zerotrust.mtls.plugins.module_utils import pki
from ansible_collections.zerotrust.mtls.plugins.modules import mtls_cert

OPENSSL = shutil.which("openssl")
DAY = datetime.timedelta(days=1)


MODULE = mtls_cert


def snapshot(directory):
    result = {}
    for name in sorted(os.listdir(str(directory))):
        path = os.path.join(str(directory), name)
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                result[name] = (handle.read(), stat.S_IMODE(os.stat(path).st_mode))
    return result


def make_ca(directory, name="ca", days=365, passphrase="pw", path_length=0, **kwargs):
    key = pki.generate_private_key()
    cert = pki.build_ca(key, "Unit CA " + name, days * DAY, path_length=path_length, **kwargs)
    (directory / (name + ".crt")).write_bytes(pki.certificate_pem(cert))
    (directory / (name + ".key")).write_bytes(pki.private_key_pem(key, passphrase))
    return cert


@pytest.fixture
def pki_dir(tmp_path):
    ca_dir = tmp_path / "ca"
    ca_dir.mkdir()
    make_ca(ca_dir)
    out = tmp_path / "out"
    out.mkdir()
    return tmp_path


def ca_args(base, name="ca"):
    return dict(ca_cert_path=str(base / "ca" / (name + ".crt")), ca_key_path=str(base / "ca" / (name + ".key")), ca_key_passphrase="pw")


def single(base, **extra):
    args = ca_args(base)
    args.update(
        cert_path=str(base / "out" / "web.crt"),
        key_path=str(base / "out" / "web.key"),
        common_name="web",
        dns_names=["web.example.com"],
        ip_addresses=["127.0.0.1"],
        uris=["spiffe://example.org/ns/default/sa/web"],
        usage="server",
    )
    args.update(extra)
    return args


def batch(base, count=20, **extra):
    args = ca_args(base)
    args.update(dest_dir=str(base / "out"), usage="client", certs=[{"name": "client-%03d" % i} for i in range(count)])
    args.update(extra)
    return args


def test_single_check_mode_create_and_idempotent(pki_dir, run):
    predicted = run(check_mode=True, **single(pki_dir))
    assert predicted["changed"] and predicted["reason"] == "missing" and predicted["serial"] is None
    assert os.listdir(str(pki_dir / "out")) == []
    created = run(diff=True, **single(pki_dir))
    assert created["changed"] and created["reason"] == "missing"
    cert = pki.load_certificate((pki_dir / "out" / "web.crt").read_bytes(), "x")
    key = pki.load_private_key((pki_dir / "out" / "web.key").read_bytes(), "x")
    assert pki.key_matches_certificate(key, cert)
    assert created["serial"] == "%X" % cert.serial_number and created["key_fingerprint"] == pki.key_fingerprint(key)
    assert stat.S_IMODE(os.stat(str(pki_dir / "out" / "web.key")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(pki_dir / "out" / "web.crt")).st_mode) == 0o644
    assert created["diff"]["after"]["web"]["serial"] == created["serial"]
    assert "PRIVATE" not in json.dumps(created) and '"pw"' not in json.dumps(created)
    summary = pki.certificate_summary(cert)
    assert summary["dns_names"] == ["web.example.com"] and summary["uris"] == ["spiffe://example.org/ns/default/sa/web"]
    before = snapshot(pki_dir / "out")
    for check_mode in (True, False):
        again = run(check_mode=check_mode, **single(pki_dir))
        assert again["changed"] is False and again["reason"] == "unchanged" and again["serial"] == created["serial"]
    assert snapshot(pki_dir / "out") == before


@pytest.mark.skipif(OPENSSL is None, reason="openssl is needed to cross-check the chain")
def test_fullchain_and_chain_files_verify_with_openssl(tmp_path, run):
    root_key = pki.generate_private_key()
    root_cert = pki.build_ca(root_key, "Chain Root", 3650 * DAY, path_length=1)
    inter_key = pki.generate_private_key()
    inter_cert = pki.build_ca(inter_key, "Chain Intermediate", 365 * DAY, issuer=pki.Issuer(root_cert, root_key), path_length=0)
    (tmp_path / "root.crt").write_bytes(pki.certificate_pem(root_cert))
    (tmp_path / "int.crt").write_bytes(pki.certificate_pem(inter_cert))
    (tmp_path / "int.key").write_bytes(pki.private_key_pem(inter_key))
    result = run(
        ca_cert_path=str(tmp_path / "int.crt"),
        ca_key_path=str(tmp_path / "int.key"),
        ca_chain_path=str(tmp_path / "root.crt"),
        cert_path=str(tmp_path / "c.crt"),
        key_path=str(tmp_path / "c.key"),
        chain_path=str(tmp_path / "c.chain.crt"),
        fullchain_path=str(tmp_path / "c.full.crt"),
        common_name="c",
        usage="client",
    )
    assert result["changed"]
    chain = pki.load_certificates((tmp_path / "c.chain.crt").read_bytes(), "x")
    assert [c.subject for c in chain] == [inter_cert.subject, root_cert.subject]
    full = pki.load_certificates((tmp_path / "c.full.crt").read_bytes(), "x")
    assert full[0].serial_number == int(result["serial"], 16) and full[1:] == chain
    done = subprocess.run(
        [
            OPENSSL,
            "verify",
            "-x509_strict",
            "-purpose",
            "sslclient",
            "-CAfile",
            str(tmp_path / "root.crt"),
            "-untrusted",
            str(tmp_path / "c.chain.crt"),
            str(tmp_path / "c.crt"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_batch_create_rerun_and_targeted_reissue(pki_dir, run):
    out = pki_dir / "out"
    predicted = run(check_mode=True, **batch(pki_dir))
    assert predicted["changed"] and predicted["summary"] == {"missing": 20}
    assert os.listdir(str(out)) == []
    created = run(**batch(pki_dir))
    assert created["summary"] == {"missing": 20}
    # The versioned layout: 40 visible symlinks into ..data, plus ..data and one version directory.
    visible = [name for name in os.listdir(str(out)) if not name.startswith(".")]
    assert len(visible) == 40 and all(os.readlink(str(out / name)) == "..data/" + name for name in visible)
    assert len(os.listdir(str(out))) == 42
    assert all(entry["changed"] and entry["serial"] for entry in created["certs"])
    assert run(**batch(pki_dir))["changed"] is False
    serial_of = dict((entry["name"], entry["serial"]) for entry in created["certs"])

    # Three different problems on three items; the other 17 must stay untouched.
    os.unlink(str(out / "client-001.key"))
    (out / "client-002.crt").write_bytes(b"not a certificate")
    other_key = pki.generate_private_key()
    (out / "client-003.key").write_bytes(pki.private_key_pem(other_key))
    args = batch(pki_dir)
    args["certs"][4].update(dns_names=["four.example.com"])
    args["certs"][5].update(usage="server")
    args["certs"][6].update(key_type="ed25519")
    args["certs"][7].update(common_name="renamed")
    expected = {
        "client-001": "missing",
        "client-002": "unreadable",
        "client-003": "key_mismatch",
        "client-004": "sans_changed",
        "client-005": "usage_changed",
        "client-006": "key_type_changed",
        "client-007": "subject_changed",
    }
    predicted = run(check_mode=True, **args)
    result = run(**args)
    for outcome in (predicted, result):
        reasons = dict((entry["name"], entry["reason"]) for entry in outcome["certs"] if entry["changed"])
        assert reasons == expected
    for entry in result["certs"]:
        if entry["name"] in expected:
            assert entry["serial"] != serial_of[entry["name"]]
        else:
            assert entry["serial"] == serial_of[entry["name"]] and entry["reason"] == "unchanged"
    ed_key = pki.load_private_key((out / "client-006.key").read_bytes(), "x")
    assert pki.key_type_of(ed_key) == "ed25519"
    assert run(**args)["changed"] is False


def test_new_ca_means_issuer_changed(pki_dir, run):
    run(**batch(pki_dir, count=3))
    make_ca(pki_dir / "ca", name="other")
    args = batch(pki_dir, count=3)
    args.update(ca_args(pki_dir, "other"))
    result = run(**args)
    assert result["summary"] == {"issuer_changed": 3}


def test_renewal_rotates_the_key_unless_told_not_to(pki_dir, run):
    first = run(**single(pki_dir))
    key_before = (pki_dir / "out" / "web.key").read_bytes()
    kept = run(**single(pki_dir, renew_before="31d", rotate_key=False))
    assert kept["reason"] == "renewal_due" and kept["serial"] != first["serial"]
    assert kept["key_fingerprint"] == first["key_fingerprint"]
    assert (pki_dir / "out" / "web.key").read_bytes() == key_before
    rotated = run(**single(pki_dir, renew_before="31d"))
    assert rotated["reason"] == "renewal_due" and rotated["key_fingerprint"] != first["key_fingerprint"]


def test_default_renewal_window_is_a_third(pki_dir, run):
    run(**single(pki_dir, valid_for="30d"))
    cert = pki.load_certificate((pki_dir / "out" / "web.crt").read_bytes(), "x")
    due = pki.renewal_time(cert)
    assert abs((cert.not_valid_after_utc - due) - (cert.not_valid_after_utc - cert.not_valid_before_utc) / 3) < DAY / 1000


def test_force_and_backup(pki_dir, run):
    first = run(**single(pki_dir))
    old_key = (pki_dir / "out" / "web.key").read_bytes()
    forced = run(**single(pki_dir, force=True, backup=True))
    assert forced["reason"] == "forced" and forced["serial"] != first["serial"]
    key_backup = [p for p in forced["backup_files"] if "/web.key." in p]
    assert len(key_backup) == 1 and stat.S_IMODE(os.stat(key_backup[0]).st_mode) == 0o600
    with open(key_backup[0], "rb") as handle:
        assert handle.read() == old_key


def test_mode_only_change_is_files_updated(pki_dir, run):
    first = run(**single(pki_dir))
    os.chmod(str(pki_dir / "out" / "web.key"), 0o640)
    predicted = run(check_mode=True, **single(pki_dir))
    assert predicted["changed"] and predicted["reason"] == "files_updated"
    fixed = run(**single(pki_dir))
    assert fixed["reason"] == "files_updated" and fixed["serial"] == first["serial"]
    assert stat.S_IMODE(os.stat(str(pki_dir / "out" / "web.key")).st_mode) == 0o600
    assert run(**single(pki_dir))["changed"] is False


def test_batch_chain_files(pki_dir, run):
    result = run(**batch(pki_dir, count=2, write_chain=True, write_fullchain=True))
    assert result["changed"]
    out = pki_dir / "out"
    ca_pem = (pki_dir / "ca" / "ca.crt").read_bytes()
    assert (out / "client-000.chain.crt").read_bytes() == ca_pem
    assert (out / "client-000.fullchain.crt").read_bytes() == (out / "client-000.crt").read_bytes() + ca_pem
    assert run(**batch(pki_dir, count=2, write_chain=True, write_fullchain=True))["changed"] is False


@pytest.mark.parametrize(
    "mutate, field, fragment",
    [
        (lambda certs: certs[3].update(ip_addresses=["999.1.1.1"]), "certs[3].ip_addresses", "not a valid IPv4"),
        (lambda certs: certs[2].update(uris=["spiffe://Bad/x"]), "certs[2].uris", "trust domain"),
        (lambda certs: certs[1].update(dns_names=["bad..name"]), "certs[1].dns_names", "not a valid DNS name"),
        (lambda certs: certs[4].update(name="client-000"), "certs[4].name", "used twice"),
        (lambda certs: certs[4].update(name="../escape"), "certs[4].name", "file name stem"),
        (lambda certs: certs[0].update(valid_for="400d"), "certs[0].valid_for", "shorten valid_for or renew the CA"),
        (lambda certs: certs[0].update(valid_for="0d"), "certs[0].valid_for", "longer than zero"),
    ],
)
def test_bad_batch_item_fails_before_anything_is_written(pki_dir, run, mutate, field, fragment):
    run(**batch(pki_dir, count=6))
    for name in ("client-000", "client-005"):  # make work that a half-run would do
        os.unlink(str(pki_dir / "out" / (name + ".crt")))
    before = snapshot(pki_dir / "out")
    args = batch(pki_dir, count=6)
    mutate(args["certs"])
    result = run(**args)
    assert result["failed"] is True and result["field"] == field, result
    assert fragment in result["msg"] and result["msg"].startswith(field)
    assert snapshot(pki_dir / "out") == before
    assert not [n for n in os.listdir(str(pki_dir / "out")) if n.endswith(".tmp")]


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(ca_key_passphrase="wrong"), "ca_key_passphrase"),
        (dict(ca_key_passphrase=None), "ca_key_passphrase"),
        (dict(ca_cert_path="/nonexistent/ca.crt"), "ca_cert_path"),
        (dict(renew_before="often"), "renew_before"),
        (dict(mode="rwx"), "mode"),
        (dict(common_name=None), "common_name"),
        (dict(cert_path="/nonexistent/dir/web.crt"), "cert_path"),
    ],
)
def test_bad_single_input_names_the_field(pki_dir, run, change, field):
    result = run(**single(pki_dir, **change))
    assert result["failed"] is True and result["field"] == field, result
    assert field in result["msg"]
    assert os.listdir(str(pki_dir / "out")) == []


def test_ca_key_not_matching_ca_cert(pki_dir, run):
    make_ca(pki_dir / "ca", name="other")
    result = run(**single(pki_dir, ca_key_path=str(pki_dir / "ca" / "other.key")))
    assert result["failed"] and result["field"] == "ca_key_path" and "does not match" in result["msg"]


def test_expired_ca_is_refused(pki_dir, run):
    key = pki.generate_private_key()
    old = pki.build_ca(key, "Old CA", 10 * DAY, now=datetime.datetime.now(datetime.timezone.utc) - 20 * DAY)
    (pki_dir / "ca" / "old.crt").write_bytes(pki.certificate_pem(old))
    (pki_dir / "ca" / "old.key").write_bytes(pki.private_key_pem(key, "pw"))
    args = single(pki_dir)
    args.update(ca_args(pki_dir, "old"))
    result = run(**args)
    assert result["failed"] and result["field"] == "ca_cert_path" and "expired" in result["msg"]


def test_name_constrained_ca_refuses_outside_names(tmp_path, run):
    (tmp_path / "ca").mkdir()
    (tmp_path / "out").mkdir()
    make_ca(tmp_path / "ca", permitted_dns_domains=["example.com"])
    ok = run(**single(tmp_path, uris=[]))
    assert ok["changed"]
    refused = run(**single(tmp_path, dns_names=["web.example.net"], uris=[], force=True))
    assert refused["failed"] and refused["field"] == "dns_names" and "permitted" in refused["msg"]


def test_rsa_leaf_has_key_encipherment(pki_dir, run):
    run(**single(pki_dir, key_type="rsa2048"))
    cert = pki.load_certificate((pki_dir / "out" / "web.crt").read_bytes(), "x")
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment

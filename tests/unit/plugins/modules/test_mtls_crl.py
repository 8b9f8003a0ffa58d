# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mtls_crl run as Ansible runs it (module args, check mode, diff) against real files.

Every refusal is checked against a snapshot (content, mode, symlinks) of the whole
directory before and after: a refused request must leave nothing behind.
"""

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

from ansible_collections.zerotrust.mtls.plugins.module_utils import crl as crl_utils
from ansible_collections.zerotrust.mtls.plugins.module_utils import pki
from ansible_collections.zerotrust.mtls.plugins.modules import mtls_crl
from ansible_collections.zerotrust.mtls.tests.unit.plugins.file_snapshots import directory_snapshot

PASSPHRASE = "crl unit passphrase"
DAY = datetime.timedelta(days=1)
OPENSSL = shutil.which("openssl")


MODULE = mtls_crl
RUN_DEFAULTS = {"diff": True}


def write(path, content, mode=0o644):
    with open(str(path), "wb") as handle:
        handle.write(content)
    os.chmod(str(path), mode)


@pytest.fixture
def pki_dir(tmp_path):
    """root (encrypted key) -> intermediate (encrypted key) -> two clients; a foreign root with a client."""
    now = pki.utcnow()
    root_key = pki.generate_private_key()
    root = pki.Issuer(pki.build_ca(root_key, "CRL Root", 3650 * DAY, path_length=1, now=now), root_key)
    int_key = pki.generate_private_key()
    inter = pki.Issuer(pki.build_ca(int_key, "CRL Intermediate", 365 * DAY, issuer=root, path_length=0, now=now), int_key, [root.cert])
    foreign_key = pki.generate_private_key()
    foreign = pki.Issuer(pki.build_ca(foreign_key, "CRL Intermediate", 365 * DAY, now=now), foreign_key)
    write(tmp_path / "root.crt", pki.certificate_pem(root.cert))
    write(tmp_path / "root.key", pki.private_key_pem(root_key, PASSPHRASE), 0o600)
    write(tmp_path / "int.crt", pki.certificate_pem(inter.cert))
    write(tmp_path / "int.key", pki.private_key_pem(int_key, PASSPHRASE), 0o600)
    write(tmp_path / "foreign.crt", pki.certificate_pem(foreign.cert))
    write(tmp_path / "foreign.key", pki.private_key_pem(foreign_key), 0o600)
    serials = {}
    for name, issuer in (("client-a", inter), ("client-b", inter), ("stranger", foreign)):
        key = pki.generate_private_key()
        cert = pki.build_leaf(issuer, pki.LeafSpec(name, usage="client"), key, now=now)
        write(tmp_path / (name + ".crt"), pki.certificate_pem(cert))
        write(tmp_path / (name + ".key"), pki.private_key_pem(key), 0o600)
        serials[name] = cert.serial_number
    leaf_key = pki.generate_private_key()
    leaf = pki.build_leaf(inter, pki.LeafSpec("not-a-ca"), leaf_key, now=now)
    write(tmp_path / "leaf-as-ca.crt", pki.certificate_pem(leaf))
    write(tmp_path / "leaf-as-ca.key", pki.private_key_pem(leaf_key), 0o600)
    return dict(path=tmp_path, serials=serials, inter=inter, root=root)


def args_for(d, ca="int", **extra):
    """The CRL of CA ``ca`` (int or root: <ca>.crt, <ca>.key, <ca>.crl), revoking client-a unless ``extra`` says otherwise."""
    p = d["path"]
    args = dict(
        ca_cert_path=str(p / (ca + ".crt")),
        ca_key_path=str(p / (ca + ".key")),
        ca_key_passphrase=PASSPHRASE,
        crl_path=str(p / (ca + ".crl")),
        revoked=[dict(cert_path=str(p / "client-a.crt"), reason="key_compromise")],
    )
    args.update(extra)
    return args


def load(path):
    return crl_utils.load_crl(open(str(path), "rb").read(), "crl")


def test_check_mode_then_create_then_idempotent(pki_dir, run):
    p = pki_dir["path"]
    before = directory_snapshot(p)
    predicted = run(check_mode=True, **args_for(pki_dir))
    assert predicted["changed"] is True and predicted["reason"] == "created"
    assert predicted["crl_number"] == 1 and predicted["sha256_fingerprint"] is None
    assert directory_snapshot(p) == before
    created = run(**args_for(pki_dir))
    assert created["changed"] is True and created["reason"] == "created" and created["crl_number"] == 1
    serial = "%X" % pki_dir["serials"]["client-a"]
    assert created["revoked"] == [serial]
    assert created["revoked_entries"][0]["reason"] == "key_compromise"
    crl = load(p / "int.crl")
    assert crl_utils.crl_number(crl) == 1
    assert crl.issuer == pki_dir["inter"].cert.subject
    assert crl.is_signature_valid(pki_dir["inter"].cert.public_key())
    assert created["sha256_fingerprint"] == crl_utils.crl_fingerprint(crl)
    assert created["this_update"] == predicted["this_update"] or created["this_update"] >= predicted["this_update"]
    next_update = crl.next_update_utc - crl.last_update_utc
    assert next_update == 7 * DAY + pki.CLOCK_SKEW_ALLOWANCE
    assert stat.S_IMODE(os.stat(str(p / "int.crl")).st_mode) == 0o644
    text = json.dumps(created)
    assert "PRIVATE KEY" not in text and PASSPHRASE not in text
    assert created["diff"]["before"] == {}
    assert created["diff"]["after"]["revoked"][0]["serial"] == serial
    snapshot = directory_snapshot(p)
    for check_mode in (True, False):
        again = run(check_mode=check_mode, **args_for(pki_dir))
        assert again["changed"] is False and again["reason"] == "unchanged"
        assert again["crl_number"] == 1 and again["sha256_fingerprint"] == created["sha256_fingerprint"]
    assert directory_snapshot(p) == snapshot


def test_number_grows_and_dates_are_kept(pki_dir, run):
    p = pki_dir["path"]
    first = run(**args_for(pki_dir))
    more = args_for(pki_dir)
    more["revoked"].append(dict(serial="%X" % pki_dir["serials"]["client-b"]))
    predicted = run(check_mode=True, **more)
    second = run(**more)
    assert predicted["changed"] and second["changed"] and second["reason"] == "revoked_changed"
    assert predicted["crl_number"] == second["crl_number"] == 2
    entries = dict((e["serial"], e) for e in second["revoked_entries"])
    assert entries["%X" % pki_dir["serials"]["client-a"]]["revocation_date"] == first["revoked_entries"][0]["revocation_date"]
    assert entries["%X" % pki_dir["serials"]["client-b"]]["reason"] == "unspecified"
    # RFC 5280: 'unspecified' is left out of the entry.
    crl = load(p / "int.crl")
    entry = crl.get_revoked_certificate_by_serial_number(pki_dir["serials"]["client-b"])
    with pytest.raises(x509.ExtensionNotFound):
        entry.extensions.get_extension_for_class(x509.CRLReason)
    assert second["diff"]["before"]["crl_number"] == 1 and second["diff"]["after"]["crl_number"] == 2
    # Un-revoking (generate mode, the entry left out) is a change too, and the number still grows.
    third = run(**args_for(pki_dir))
    assert third["changed"] and third["crl_number"] == 3 and len(third["revoked"]) == 1


def test_update_mode_keeps_existing_entries(pki_dir, run):
    run(**args_for(pki_dir))
    added = run(**args_for(pki_dir, crl_mode="update", revoked=[dict(serial=pki_dir["serials"]["client-b"], reason="superseded")]))
    assert added["changed"] and sorted(added["revoked"]) == sorted("%X" % s for k, s in pki_dir["serials"].items() if k != "stranger")
    again = run(**args_for(pki_dir, crl_mode="update", revoked=[]))
    assert again["changed"] is False and len(again["revoked"]) == 2


def test_renewal_due_and_expired_crls_are_resigned(pki_dir, run):
    p = pki_dir["path"]
    inter = pki_dir["inter"]
    now = pki.utcnow()
    desired = {pki_dir["serials"]["client-a"]: ("key_compromise", pki.x509_time(now - DAY))}
    # Inside the renewal window (1 day left of 7, window 7/3 days).
    old = crl_utils.build_crl(inter, desired, 41, now - 6 * DAY, now + DAY)
    write(p / "int.crl", crl_utils.crl_pem(old))
    revoked = [dict(cert_path=str(p / "client-a.crt"))]
    predicted = run(check_mode=True, **args_for(pki_dir, revoked=revoked))
    renewed = run(**args_for(pki_dir, revoked=revoked))
    assert predicted["reason"] == renewed["reason"] == "renewal_due"
    assert renewed["crl_number"] == 42
    assert renewed["revoked_entries"][0]["reason"] == "key_compromise"
    # With a shorter renew_before the same CRL is not due.
    write(p / "int.crl", crl_utils.crl_pem(old))
    assert run(**args_for(pki_dir, revoked=revoked, renew_before="12h", valid_for="7d"))["changed"] is False
    # Past nextUpdate: stale, re-signed whatever renew_before says.
    stale = crl_utils.build_crl(inter, desired, 50, now - 8 * DAY, now - DAY)
    write(p / "int.crl", crl_utils.crl_pem(stale))
    expired = run(**args_for(pki_dir, revoked=revoked, renew_before="1h"))
    assert expired["reason"] == "expired" and expired["crl_number"] == 51


def test_crl_from_another_ca_is_replaced_and_the_number_continues(pki_dir, run):
    p = pki_dir["path"]
    root = pki_dir["root"]
    other = crl_utils.build_crl(root, {}, 9, pki.utcnow() - DAY, pki.utcnow() + 6 * DAY)
    write(p / "int.crl", crl_utils.crl_pem(other))
    result = run(**args_for(pki_dir))
    assert result["reason"] == "issuer_changed" and result["crl_number"] == 10


def test_valid_for_change_and_mode_change(pki_dir, run):
    p = pki_dir["path"]
    run(**args_for(pki_dir))
    changed = run(**args_for(pki_dir, valid_for="2d"))
    assert changed["reason"] == "validity_changed" and changed["crl_number"] == 2
    os.chmod(str(p / "int.crl"), 0o600)
    fixed = run(**args_for(pki_dir, valid_for="2d"))
    assert fixed["changed"] and fixed["reason"] == "files_updated" and fixed["crl_number"] == 2
    assert stat.S_IMODE(os.stat(str(p / "int.crl")).st_mode) == 0o644


def test_next_update_never_beyond_the_ca(pki_dir, run):
    result = run(**args_for(pki_dir, valid_for="800d", renew_before="1d"))
    assert result["next_update"] == pki.iso8601(pki_dir["inter"].cert.not_valid_after_utc)
    # The clamped lifetime is not a changed valid_for: the rerun changes nothing.
    again = run(**args_for(pki_dir, valid_for="800d", renew_before="1d"))
    assert again["changed"] is False and again["reason"] == "unchanged"


def test_backup_and_absent(pki_dir, run):
    p = pki_dir["path"]
    run(**args_for(pki_dir))
    old = (p / "int.crl").read_bytes()
    replaced = run(**args_for(pki_dir, revoked=[], backup=True))
    assert replaced["backup_file"] and open(replaced["backup_file"], "rb").read() == old
    predicted = run(check_mode=True, state="absent", crl_path=str(p / "int.crl"))
    assert predicted["changed"] and (p / "int.crl").exists()
    removed = run(state="absent", crl_path=str(p / "int.crl"))
    assert removed["changed"] and removed["reason"] == "removed" and not (p / "int.crl").exists()
    assert run(state="absent", crl_path=str(p / "int.crl"))["changed"] is False


def test_root_revokes_the_intermediate(pki_dir, run):
    p = pki_dir["path"]
    result = run(**args_for(pki_dir, ca="root", revoked=[dict(cert_path=str(p / "int.crt"), reason="ca_compromise")]))
    assert result["changed"] and result["revoked"] == ["%X" % pki_dir["inter"].cert.serial_number]


@pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
def test_openssl_crl_check_agrees(pki_dir, run):
    p = pki_dir["path"]
    run(**args_for(pki_dir))
    run(**args_for(pki_dir, ca="root", revoked=[]))
    bundle = p / "bundle.pem"
    bundle.write_bytes((p / "root.crt").read_bytes() + (p / "int.crt").read_bytes())

    def verify(name, *extra):
        return subprocess.run([OPENSSL, "verify", "-CAfile", str(bundle)] + list(extra) + [str(p / name)], capture_output=True, text=True, check=False)

    revoked = verify("client-a.crt", "-crl_check", "-CRLfile", str(p / "int.crl"))
    assert revoked.returncode != 0 and "certificate revoked" in revoked.stdout + revoked.stderr
    sibling = verify("client-b.crt", "-crl_check", "-CRLfile", str(p / "int.crl"))
    assert sibling.returncode == 0, sibling.stdout + sibling.stderr
    both = verify("client-b.crt", "-crl_check_all", "-CRLfile", str(p / "int.crl"), "-CRLfile", str(p / "root.crl"))
    assert both.returncode == 0, both.stdout + both.stderr


# ---------------------------------------------------------------------------- bad input


def _bad_cases():
    """(name, args change, field named in msg, fragment). Paths are relative to the fixture dir."""
    return [
        ("cert of another CA", dict(revoked=[dict(cert_path="stranger.crt")]), "revoked[0].cert_path", "was not issued by the CA in ca_cert_path"),
        (
            "CA is a leaf",
            dict(ca_cert_path="leaf-as-ca.crt", ca_key_path="leaf-as-ca.key", ca_key_passphrase=None, revoked=[]),
            "ca_cert_path",
            "is not a CA certificate",
        ),
        ("key of another CA", dict(ca_key_path="foreign.key", ca_key_passphrase=None), "ca_key_path", "does not match the certificate"),
        ("wrong passphrase", dict(ca_key_passphrase="nope"), "ca_key_passphrase", "cannot be decrypted"),
        ("missing passphrase", dict(ca_key_passphrase=None), "ca_key_passphrase", "is encrypted"),
        ("unknown reason", dict(revoked=[dict(serial="1A", reason="lost_it")]), "reason", "must be one of"),
        ("duplicate serial", dict(revoked=[dict(serial="1A"), dict(serial="00:1a")]), "revoked[1].serial", "already lists"),
        ("duplicate via cert_path", dict(revoked=[dict(cert_path="client-a.crt"), dict(serial="CLIENT-A")]), "revoked[1].serial", "already lists"),
        ("serial and cert_path", dict(revoked=[dict(serial="1A", cert_path="client-a.crt")]), "revoked[0]", "exactly one of serial and cert_path"),
        ("neither serial nor cert_path", dict(revoked=[dict(reason="superseded")]), "revoked[0]", "exactly one of serial and cert_path"),
        ("serial not hex", dict(revoked=[dict(serial="XYZ")]), "revoked[0].serial", "in hex"),
        ("serial zero", dict(revoked=[dict(serial=0)]), "revoked[0].serial", "must be positive"),
        ("serial too long", dict(revoked=[dict(serial="F" * 42)]), "revoked[0].serial", "at most 20 bytes"),
        ("date malformed", dict(revoked=[dict(serial="1A", revocation_date="yesterday")]), "revoked[0].revocation_date", "ISO 8601"),
        ("date in the future", dict(revoked=[dict(serial="1A", revocation_date="2999-01-01")]), "revoked[0].revocation_date", "in the future"),
        ("cert_path missing", dict(revoked=[dict(cert_path="nope.crt")]), "revoked[0].cert_path", "does not exist"),
        ("cert_path not a cert", dict(revoked=[dict(cert_path="client-a.key")]), "revoked[0].cert_path", "does not contain a PEM certificate"),
        ("valid_for malformed", dict(valid_for="a week"), "valid_for", "duration"),
        ("renew_before not shorter", dict(valid_for="2d", renew_before="3d"), "renew_before", "not shorter"),
        ("renew_before percent", dict(renew_before="150%"), "renew_before", "between 0%"),
        ("mode malformed", dict(mode="rw-r--r--"), "mode", "octal file mode"),
        ("crl_path directory missing", dict(crl_path="no/such/dir/int.crl"), "crl_path", "does not exist"),
        ("existing crl_path is not a CRL", dict(crl_path="client-a.crt"), "crl_path", "is not a certificate revocation list"),
        ("ca_cert_path missing", dict(ca_cert_path="missing.crt"), "ca_cert_path", "does not exist"),
        ("ca_key_path not given", dict(ca_key_path=None), "ca_key_path", "is required"),
        ("ca_cert_path is a key", dict(ca_cert_path="int.key"), "ca_cert_path", "does not contain a PEM certificate"),
    ]


@pytest.mark.parametrize("name, change, field, fragment", _bad_cases(), ids=[c[0] for c in _bad_cases()])
def test_bad_input_is_refused_and_changes_nothing(pki_dir, run, name, change, field, fragment):
    p = pki_dir["path"]
    # An existing CRL, so "nothing changed" covers replacing it too.
    run(**args_for(pki_dir))
    change = dict(change)
    for key in ("ca_cert_path", "ca_key_path", "crl_path"):
        if change.get(key):
            change[key] = str(p / change[key])
    if "revoked" in change:
        entries = []
        for entry in change["revoked"]:
            entry = dict(entry)
            if "cert_path" in entry:
                entry["cert_path"] = str(p / entry["cert_path"])
            if entry.get("serial") == "CLIENT-A":
                entry["serial"] = "%X" % pki_dir["serials"]["client-a"]
            entries.append(entry)
        change["revoked"] = entries
    before = directory_snapshot(p)
    for check_mode in (True, False):
        result = run(check_mode=check_mode, **args_for(pki_dir, **change))
        assert result.get("failed") is True, result
        assert fragment in result["msg"], result["msg"]
        assert field in result["msg"], result["msg"]
        # One sentence: a single full stop at the end (dates and file names carry no '. ').
        assert result["msg"].rstrip().endswith(".") and ". " not in result["msg"].rstrip()[:-1], result["msg"]
        assert "PRIVATE KEY" not in json.dumps(result) and PASSPHRASE not in json.dumps(result)
    assert directory_snapshot(p) == before

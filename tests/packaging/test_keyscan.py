# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scanner finds every form of private key the packaging test must catch, and
nothing in material that only mentions keys or holds certificates."""

import base64
import datetime
import io
import json
import tarfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

import keyscan

PASS = b"unit scan passphrase"
Enc = serialization.Encoding
Fmt = serialization.PrivateFormat


@pytest.fixture(scope="module")
def keys():
    return {
        "ec": ec.generate_private_key(ec.SECP256R1()),
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }


@pytest.fixture(scope="module")
def cert(keys):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scan")])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(keys["ec"].public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(keys["ec"], hashes.SHA256())
    )


def _forms(keys, cert):
    ec_key, rsa_key, ed_key = keys["ec"], keys["rsa"], keys["ed25519"]
    plain, encrypted = serialization.NoEncryption(), serialization.BestAvailableEncryption(PASS)
    return {
        "pkcs8 ec": ec_key.private_bytes(Enc.PEM, Fmt.PKCS8, plain),
        "pkcs8 ed25519": ed_key.private_bytes(Enc.PEM, Fmt.PKCS8, plain),
        "pkcs8 encrypted": rsa_key.private_bytes(Enc.PEM, Fmt.PKCS8, encrypted),
        "pkcs1 rsa": rsa_key.private_bytes(Enc.PEM, Fmt.TraditionalOpenSSL, plain),
        "sec1 ec legacy-encrypted": ec_key.private_bytes(Enc.PEM, Fmt.TraditionalOpenSSL, encrypted),
        "openssh": ed_key.private_bytes(Enc.PEM, Fmt.OpenSSH, plain),
        "der pkcs8": ec_key.private_bytes(Enc.DER, Fmt.PKCS8, plain),
        "der pkcs8 encrypted": ec_key.private_bytes(Enc.DER, Fmt.PKCS8, encrypted),
        "pkcs12 no password": pkcs12.serialize_key_and_certificates(b"x", ec_key, cert, None, plain),
        "pkcs12 password": pkcs12.serialize_key_and_certificates(b"x", ec_key, cert, None, encrypted),
    }


def test_every_key_form_is_found(keys, cert):
    for form, data in _forms(keys, cert).items():
        assert keyscan.scan_bytes(data, form), "%s was not found" % form


def test_keys_hidden_in_base64_json_and_logs_are_found(keys):
    pem = keys["ec"].private_bytes(Enc.PEM, Fmt.PKCS8, serialization.NoEncryption())
    secret_data = b"data:\n  tls.key: " + base64.b64encode(pem) + b"\n"
    module_result = json.dumps({"changed": True, "key": pem.decode()}).encode()
    log_line = b"ok: [localhost] => " + module_result
    for name, blob in (("secret data", secret_data), ("json", module_result), ("log", log_line)):
        assert keyscan.scan_bytes(blob, name), "%s: the key was not found" % name


def test_keys_inside_archives_are_found_with_the_member_name(tmp_path, keys):
    pem = keys["rsa"].private_bytes(Enc.PEM, Fmt.PKCS8, serialization.NoEncryption())
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as archive:
        info = tarfile.TarInfo("zerotrust-mtls-0.1.0/.pki/clusters/local/ca.key")
        info.size = len(pem)
        archive.addfile(info, io.BytesIO(pem))
    outer = tmp_path / "context"
    (outer / "_build" / "zerotrust").mkdir(parents=True)
    (outer / "_build" / "zerotrust" / "zerotrust-mtls-0.1.0.tar.gz").write_bytes(inner.getvalue())
    findings = keyscan.scan_path(str(outer))
    assert [f.where.split("!")[-1] for f in findings] == ["zerotrust-mtls-0.1.0/.pki/clusters/local/ca.key"]


def test_secret_strings_are_found_and_never_printed():
    findings = keyscan.scan_bytes(b"vars: {passphrase: demo-only-unit-passphrase}", "inv.yml", secrets=["demo-only-unit-passphrase"])
    assert findings and "demo-only" not in repr(findings)


def test_mentions_certificates_and_garbage_are_not_keys(cert):
    benign = [
        b"if b'PRIVATE KEY-----' not in pem:",
        b'key_content: "-----BEGIN PRIVATE KEY-----\\nnope\\n-----END PRIVATE KEY-----\\n"',
        b"$ head -1 root/ca.key   # -----BEGIN ENCRYPTED PRIVATE KEY-----",
        cert.public_bytes(Enc.PEM),
        cert.public_bytes(Enc.DER),
        base64.b64encode(cert.public_bytes(Enc.PEM)),
        b"A" * 400,
    ]
    for blob in benign:
        assert keyscan.scan_bytes(blob, "benign") == [], blob[:60]


def test_command_line_exit_status(tmp_path, keys, capsys):
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "README").write_text("no keys here\n")
    assert keyscan.main([str(clean)]) == 0
    (clean / "leaked.pem").write_bytes(keys["ec"].private_bytes(Enc.PEM, Fmt.PKCS8, serialization.NoEncryption()))
    assert keyscan.main([str(clean)]) == 1
    assert "leaked.pem: PEM PRIVATE KEY" in capsys.readouterr().out

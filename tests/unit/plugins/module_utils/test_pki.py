# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pki.py: real keys and certificates, cross-checked with `openssl verify -x509_strict`."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from ansible_collections.zerotrust.mtls.plugins.module_utils import pki
from ansible_collections.zerotrust.mtls.tests.unit.plugins import pki_cases

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
DAY = datetime.timedelta(days=1)
OPENSSL = shutil.which("openssl")


def _root(key_type="ec_p256", path_length=None, days=3650, now=NOW, **kwargs):
    key = pki.generate_private_key(key_type)
    cert = pki.build_ca(key, "Test Root", days * DAY, path_length=path_length, now=now, **kwargs)
    return pki.Issuer(cert, key)


def _intermediate(parent, key_type="ec_p256", path_length=0, days=365, now=NOW, **kwargs):
    key = pki.generate_private_key(key_type)
    cert = pki.build_ca(key, "Test Intermediate", days * DAY, issuer=parent, path_length=path_length, now=now, **kwargs)
    return pki.Issuer(cert, key, [parent.cert] + parent.chain)


def _leaf(issuer, now=NOW, key_type="ec_p256", **spec_args):
    spec_args.setdefault("valid_for", 30 * DAY)
    spec = pki.LeafSpec(spec_args.pop("common_name", "leaf"), key_type=key_type, **spec_args)
    key = pki.generate_private_key(key_type)
    return spec, key, pki.build_leaf(issuer, spec, key, now=now)


def _openssl_verify(tmp_path, root, intermediates, leaf, at=None):
    """Run openssl verify -x509_strict; returns (ok, output)."""
    (tmp_path / "root.pem").write_bytes(pki.certificate_pem(root))
    (tmp_path / "untrusted.pem").write_bytes(pki.certificates_pem(intermediates) or pki.certificate_pem(root))
    (tmp_path / "leaf.pem").write_bytes(pki.certificate_pem(leaf))
    command = [OPENSSL, "verify", "-x509_strict", "-CAfile", str(tmp_path / "root.pem"), "-untrusted", str(tmp_path / "untrusted.pem")]
    if at is not None:
        command += ["-attime", str(int(at.timestamp()))]
    command.append(str(tmp_path / "leaf.pem"))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return done.returncode == 0, done.stdout + done.stderr


needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl binary is needed to cross-check chains")


# ------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("3650d", 3650 * 86400),
        ("8760h", 8760 * 3600),
        ("90m", 5400),
        ("30s", 30),
        ("2w", 14 * 86400),
        ("1d12h", 36 * 3600),
        ("1w1d1h1m1s", 7 * 86400 + 86400 + 3600 + 61),
        (" 30D ", 30 * 86400),
    ],
)
def test_parse_duration_accepts_units_and_combinations(text, seconds):
    assert pki.parse_duration(text, "valid_for") == datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "d", "10", "10x", "-1d", "0d", "0s", "1.5d", "ten days", None, True, 45, "1d-2h"])
def test_parse_duration_rejects_bad_input_naming_the_field(text):
    with pytest.raises(pki.PkiError) as caught:
        pki.parse_duration(text, "valid_for")
    assert caught.value.field == "valid_for"
    assert str(caught.value).startswith("valid_for ")
    assert str(caught.value).count(". ") == 0  # one sentence


@pytest.mark.parametrize(
    "text, expected",
    [
        ("33%", ("percent", 0.33)),
        ("50 %", ("percent", 0.5)),
        ("10d", ("absolute", 10 * DAY)),
        (None, None),
        ("", None),
    ],
)
def test_parse_renew_before(text, expected):
    assert pki.parse_renew_before(text) == expected


@pytest.mark.parametrize("text", ["0%", "100%", "150%", "-5%", "soon"])
def test_parse_renew_before_rejects(text):
    with pytest.raises(pki.PkiError) as caught:
        pki.parse_renew_before(text)
    assert caught.value.field == "renew_before"


# ------------------------------------------------------------------ renewal decision


def _cert_valid(not_before, lifetime):
    return pki_cases.self_signed(ec.generate_private_key(ec.SECP256R1()), "t", not_before=not_before, not_after=not_before + lifetime)


def test_default_renewal_is_when_a_third_of_the_lifetime_is_left():
    cert = _cert_valid(NOW, 30 * DAY)
    boundary = NOW + 20 * DAY
    assert not pki.needs_renewal(cert, None, boundary - datetime.timedelta(seconds=1))
    assert pki.needs_renewal(cert, None, boundary)
    assert pki.needs_renewal(cert, None, NOW + 40 * DAY)  # expired counts as due


def test_percentage_renewal():
    cert = _cert_valid(NOW, 100 * DAY)
    assert not pki.needs_renewal(cert, "10%", NOW + 89 * DAY)
    assert pki.needs_renewal(cert, "10%", NOW + 90 * DAY)
    assert pki.needs_renewal(cert, ("percent", 0.9), NOW + 10 * DAY)
    assert not pki.needs_renewal(cert, ("percent", 0.9), NOW + 9 * DAY)


def test_absolute_renewal_and_window_longer_than_lifetime():
    cert = _cert_valid(NOW, 30 * DAY)
    assert not pki.needs_renewal(cert, "5d", NOW + 24 * DAY)
    assert pki.needs_renewal(cert, "5d", NOW + 25 * DAY)
    # A renew_before longer than the lifetime means "always due": reissued on every run.
    assert pki.needs_renewal(cert, "60d", NOW)


def test_naive_datetimes_are_utc():
    cert = _cert_valid(NOW, 30 * DAY)
    assert pki.needs_renewal(cert, None, (NOW + 21 * DAY).replace(tzinfo=None))


# ------------------------------------------------------------------ loading


def test_load_certificates_reads_every_certificate_in_order():
    root = _root()
    inter = _intermediate(root)
    certs = pki.load_certificates(pki.certificates_pem([inter.cert, root.cert]), "chain_path")
    assert [c.subject for c in certs] == [inter.cert.subject, root.cert.subject]


@pytest.mark.parametrize(
    "pem",
    [
        b"",
        b"garbage",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n",
    ],
)
def test_load_certificates_rejects_garbage(pem):
    with pytest.raises(pki.PkiError) as caught:
        pki.load_certificates(pem, "ca_cert_path")
    assert caught.value.field == "ca_cert_path"
    assert "ca_cert_path" in str(caught.value)


def test_load_private_key_errors_never_contain_key_material():
    key = pki.generate_private_key()
    encrypted = pki.private_key_pem(key, b"right")
    plain = pki.private_key_pem(key)
    body = encrypted.decode().splitlines()[1]
    truncated = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    cases = [
        (encrypted, None, "is encrypted"),
        (encrypted, b"wrong", "cannot be decrypted"),
        (plain, "extra", "is not encrypted"),
        (truncated, None, "is not a valid PEM private key"),
        (b"nothing here", None, "does not contain a PEM private key"),
    ]
    for pem, passphrase, fragment in cases:
        with pytest.raises(pki.PkiError) as caught:
            pki.load_private_key(pem, "ca_key_path", passphrase)
        assert fragment in str(caught.value)
        assert caught.value.field == "ca_key_path"
        assert body[:20] not in str(caught.value) and "PRIVATE KEY-----" not in str(caught.value)
    assert pki.key_fingerprint(pki.load_private_key(encrypted, "k", "right")) == pki.key_fingerprint(key)


def test_encrypted_key_uses_pkcs8_encryption():
    pem = pki.private_key_pem(pki.generate_private_key(), "secret")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")


# ------------------------------------------------------------------ keys and fingerprints


@pytest.mark.parametrize("key_type", pki.KEY_TYPES)
def test_key_types_round_trip(key_type):
    key = pki.generate_private_key(key_type)
    assert pki.key_type_of(key) == key_type
    assert pki.key_type_of(key.public_key()) == key_type
    loaded = pki.load_private_key(pki.private_key_pem(key), "key_path")
    assert pki.key_fingerprint(loaded) == pki.key_fingerprint(key)


def test_unknown_key_type_is_refused():
    with pytest.raises(pki.PkiError) as caught:
        pki.generate_private_key("dsa1024")
    assert caught.value.field == "key_type" and "ec_p256" in str(caught.value)


def test_fingerprints_have_the_documented_formats(tmp_path):
    root = _root()
    fingerprint = pki.sha256_fingerprint(root.cert)
    assert re.match(r"^([0-9A-F]{2}:){31}[0-9A-F]{2}$", fingerprint)
    if OPENSSL:
        (tmp_path / "c.pem").write_bytes(pki.certificate_pem(root.cert))
        out = subprocess.run(
            [OPENSSL, "x509", "-noout", "-fingerprint", "-sha256", "-in", str(tmp_path / "c.pem")], capture_output=True, text=True, check=True
        ).stdout
        assert out.strip().split("=", 1)[1] == fingerprint
    key_fp = pki.key_fingerprint(root.key)
    assert re.match(r"^sha256:[0-9a-f]{64}$", key_fp)
    assert key_fp == pki.key_fingerprint(root.key.public_key()) == pki.key_fingerprint(root.cert)


def test_key_matches_certificate():
    root = _root()
    assert pki.key_matches_certificate(root.key, root.cert)
    assert not pki.key_matches_certificate(pki.generate_private_key(), root.cert)
    assert not pki.key_matches_certificate(pki.generate_private_key("ed25519"), root.cert)


# ------------------------------------------------------------------ CA building


def test_root_ca_extensions():
    root = _root(path_length=1, permitted_dns_domains=["example.com"], permitted_uri_domains=["cluster.local"])
    cert = root.cert
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 1
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign and not usage.value.digital_signature
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert ski.digest == aki.key_identifier
    constraints = cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert pki.permitted_domains_of(cert) == (["example.com"], ["cluster.local"])
    assert cert.serial_number < 2**159
    assert cert.not_valid_before_utc == NOW - datetime.timedelta(minutes=5)
    assert cert.not_valid_after_utc == NOW + 3650 * DAY


def test_serials_are_random_and_within_159_bits():
    serials = set(pki.random_serial_number() for _attempt in range(200))
    assert len(serials) == 200
    assert all(0 < serial < 2**159 for serial in serials)
    assert max(serials).bit_length() > 150


@needs_openssl
@pytest.mark.parametrize("key_type", pki.KEY_TYPES)
def test_chains_of_every_key_type_pass_openssl_x509_strict(tmp_path, key_type):
    now = datetime.datetime.now(UTC)
    root = _root(key_type, path_length=1, now=now)
    inter = _intermediate(root, key_type, now=now)
    _spec, _key, leaf = _leaf(
        inter,
        now=now,
        key_type=key_type,
        dns_names=["svc.example.com"],
        ip_addresses=["127.0.0.1", "::1"],
        uris=["spiffe://example.org/ns/a/sa/b"],
        emails=["ops@example.com"],
    )
    ok, output = _openssl_verify(tmp_path, root.cert, [inter.cert], leaf)
    assert ok, output
    pki.verify_chain(leaf, [inter.cert], [root.cert], "chain")
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment == key_type.startswith("rsa")


def test_intermediate_under_pathlen_zero_is_refused():
    root = _root(path_length=0)
    with pytest.raises(pki.PkiError) as caught:
        _intermediate(root)
    assert caught.value.field == "parent_cert_path" and "pathlen 0" in str(caught.value)


def test_intermediate_path_length_must_be_below_the_parent():
    root = _root(path_length=1)
    with pytest.raises(pki.PkiError) as caught:
        _intermediate(root, path_length=1)
    assert caught.value.field == "path_length" and "at most 0" in str(caught.value)


def test_intermediate_may_not_outlive_its_parent():
    root = _root(days=100)
    with pytest.raises(pki.PkiError) as caught:
        _intermediate(root, days=101)
    assert caught.value.field == "valid_for"
    assert "shorten valid_for or renew the CA" in str(caught.value)


def test_check_issuer_refuses_non_ca_expired_and_foreign_key():
    root = _root()
    _spec, leaf_key, leaf = _leaf(root)
    with pytest.raises(pki.PkiError) as caught:
        pki.check_issuer(leaf, leaf_key, "ca_cert_path", "ca_key_path", now=NOW)
    assert caught.value.field == "ca_cert_path" and "not a CA" in str(caught.value)
    with pytest.raises(pki.PkiError) as caught:
        pki.check_issuer(root.cert, root.key, "ca_cert_path", "ca_key_path", now=NOW + 4000 * DAY)
    assert "expired" in str(caught.value)
    with pytest.raises(pki.PkiError) as caught:
        pki.check_issuer(root.cert, pki.generate_private_key(), "ca_cert_path", "ca_key_path", now=NOW)
    assert caught.value.field == "ca_key_path" and "does not match" in str(caught.value)


def test_load_issuer_checks_the_chain_links():
    root = _root(path_length=1)
    inter = _intermediate(root)
    other = _root()
    issuer = pki.load_issuer(
        pki.certificate_pem(inter.cert),
        pki.private_key_pem(inter.key, "pw"),
        "ca_cert_path",
        "ca_key_path",
        passphrase="pw",
        chain_pem=pki.certificates_pem([inter.cert, root.cert]),
        chain_field="ca_chain_path",
        now=NOW,
    )
    # The CA's own copy in the chain file is dropped, the root stays.
    assert [c.subject for c in issuer.chain] == [root.cert.subject]
    with pytest.raises(pki.PkiError) as caught:
        pki.load_issuer(
            pki.certificate_pem(inter.cert),
            pki.private_key_pem(inter.key),
            "ca_cert_path",
            "ca_key_path",
            chain_pem=pki.certificate_pem(other.cert),
            chain_field="ca_chain_path",
            now=NOW,
        )
    assert caught.value.field == "ca_chain_path"


# ------------------------------------------------------------------ leaves


@pytest.mark.parametrize(
    "usage, ekus",
    [
        ("server", [ExtendedKeyUsageOID.SERVER_AUTH]),
        ("client", [ExtendedKeyUsageOID.CLIENT_AUTH]),
        ("both", [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
    ],
)
def test_leaf_usage_and_constraints(usage, ekus):
    root = _root()
    _spec, _key, leaf = _leaf(root, usage=usage)
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == ekus
    basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and not basic.value.ca
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).critical
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == root.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def test_leaf_may_not_outlive_its_ca():
    root = _root(days=10)
    with pytest.raises(pki.PkiError) as caught:
        _leaf(root, valid_for=11 * DAY)
    assert caught.value.field == "valid_for"
    assert "shorten valid_for or renew the CA" in str(caught.value)
    spec = pki.LeafSpec("x", valid_for="11d", field_prefix="certs[3].")
    with pytest.raises(pki.PkiError) as caught:
        pki.check_leaf(root, spec, now=NOW)
    assert caught.value.field == "certs[3].valid_for"


@pytest.mark.parametrize(
    "field, value",
    [
        ("dns_names", ["bad_name.example.com"]),
        ("dns_names", ["-x.example.com"]),
        ("dns_names", ["a..b"]),
        ("dns_names", ["x" * 64 + ".com"]),
        ("ip_addresses", ["300.1.1.1"]),
        ("ip_addresses", ["localhost"]),
        ("uris", ["not a uri"]),
        ("uris", ["spiffe://UPPER.example/x"]),
        ("uris", ["spiffe://td/a//b"]),
        ("uris", ["spiffe://td/a/../b"]),
        ("uris", ["spiffe://td/a/"]),
        ("uris", ["spiffe:/td/a"]),
        ("uris", ["spiffe://td/a", "spiffe://td/b"]),
        ("emails", ["no-at-sign"]),
        ("emails", ["a@b@c"]),
        ("usage", "peer"),
        ("key_type", "rsa1024"),
        ("common_name", ""),
        ("common_name", "x" * 65),
    ],
)
def test_leaf_spec_rejects_bad_values_naming_the_field(field, value):
    args = {"common_name": "ok"}
    args[field] = value
    with pytest.raises(pki.PkiError) as caught:
        pki.LeafSpec(field_prefix="certs[7].", **args)
    assert caught.value.field == "certs[7]." + field
    assert str(caught.value).startswith("certs[7]." + field)


@needs_openssl
def test_uri_constraint_with_leading_dot_allows_hosts_below(tmp_path):
    now = datetime.datetime.now(UTC)
    root = _root(now=now, permitted_uri_domains=[".mesh.example.org"])
    _spec, _key, leaf = _leaf(root, now=now, uris=["spiffe://eu1.mesh.example.org/ns/a/sa/b"])
    assert _openssl_verify(tmp_path, root.cert, [], leaf)[0]
    pki.verify_chain(leaf, [], [root.cert], "chain", at=now)
    with pytest.raises(pki.PkiError):
        _leaf(root, now=now, uris=["spiffe://mesh.example.org/ns/a/sa/b"])


@needs_openssl
def test_wildcards_under_dns_constraints_match_openssl(tmp_path):
    now = datetime.datetime.now(UTC)
    for constraint in ("example.com", ".example.com"):
        root = _root(now=now, permitted_dns_domains=[constraint])
        _spec, _key, leaf = _leaf(root, now=now, dns_names=["*.example.com"])
        assert _openssl_verify(tmp_path, root.cert, [], leaf)[0]
        pki.verify_chain(leaf, [], [root.cert], "chain", at=now)
    with pytest.raises(pki.PkiError):
        _leaf(root, now=now, dns_names=["example.com"])  # '.example.com' means strictly below


def test_spiffe_ids_that_follow_the_spec_are_accepted():
    spec = pki.LeafSpec("w", uris=["spiffe://prod.example-1.org/ns/default/sa/web_1.v2", "https://example.com/x"])
    assert spec.uris[0] == "spiffe://prod.example-1.org/ns/default/sa/web_1.v2"


@needs_openssl
def test_name_constraints_are_enforced_by_us_and_by_openssl(tmp_path):
    now = datetime.datetime.now(UTC)
    root = _root(path_length=1, now=now, permitted_dns_domains=["example.com"], permitted_uri_domains=["prod.example.org"])
    inter = _intermediate(root, now=now)
    _spec, _key, inside = _leaf(inter, now=now, dns_names=["a.example.com"], uris=["spiffe://prod.example.org/x"])
    assert _openssl_verify(tmp_path, root.cert, [inter.cert], inside)[0]
    with pytest.raises(pki.PkiError) as caught:
        _leaf(inter, now=now, dns_names=["a.example.net"])
    assert caught.value.field == "dns_names" and "permitted" in str(caught.value)
    with pytest.raises(pki.PkiError) as caught:
        _leaf(inter, now=now, uris=["spiffe://staging.example.org/x"])
    assert caught.value.field == "uris"
    # A URI constraint without a leading dot is one host, not a domain (RFC 5280), as in OpenSSL.
    with pytest.raises(pki.PkiError) as caught:
        _leaf(inter, now=now, uris=["spiffe://sub.prod.example.org/x"])
    assert caught.value.field == "uris"
    inter.permitted_uri_domains = []
    _spec, _key, sub_host = _leaf(inter, now=now, uris=["spiffe://sub.prod.example.org/x"])
    ok, output = _openssl_verify(tmp_path, root.cert, [inter.cert], sub_host)
    assert not ok and "subtree" in output.lower()
    with pytest.raises(pki.PkiError):
        pki.verify_chain(sub_host, [inter.cert], [root.cert], "cert_path", at=now)
    # Build the forbidden leaf anyway (bypassing our check) to prove clients refuse it.
    inter.permitted_dns_domains = []
    _spec, _key, outside = _leaf(inter, now=now, dns_names=["a.example.net"])
    ok, output = _openssl_verify(tmp_path, root.cert, [inter.cert], outside)
    assert not ok and "subtree" in output.lower()
    with pytest.raises(pki.PkiError) as caught:
        pki.verify_chain(outside, [inter.cert], [root.cert], "cert_path", at=now)
    assert "name constraints" in str(caught.value)


# ------------------------------------------------------------------ verification


def test_verify_chain_explains_failures():
    root = _root(path_length=1)
    inter = _intermediate(root)
    _spec, _key, leaf = _leaf(inter)
    pki.verify_chain(leaf, [inter.cert], [root.cert], "chain", at=NOW)
    pki.verify_chain(inter.cert, [], [root.cert], "chain", at=NOW)
    pki.verify_chain(root.cert, [], [root.cert], "chain", at=NOW)
    cases = [
        (leaf, [], [root.cert], NOW, "no certificate in the chain or trust bundle issued"),
        (leaf, [inter.cert], [_root().cert], NOW, "does not match the key of"),
        (leaf, [inter.cert], [root.cert], NOW + 40 * DAY, "expired"),
        (leaf, [inter.cert], [root.cert], NOW - DAY, "not valid before"),
        (leaf, [inter.cert], [], NOW, "no trust anchor"),
    ]
    for cert, intermediates, roots, at, fragment in cases:
        with pytest.raises(pki.PkiError) as caught:
            pki.verify_chain(cert, intermediates, roots, "trust_bundle_path", at=at)
        assert fragment in str(caught.value), str(caught.value)
        assert caught.value.field == "trust_bundle_path"


def test_verify_chain_catches_same_name_different_key():
    root = _root()
    impostor_key = pki.generate_private_key()
    impostor = pki.build_ca(impostor_key, "Test Root", 3650 * DAY, now=NOW)
    _spec, _key, leaf = _leaf(pki.Issuer(impostor, impostor_key))
    with pytest.raises(pki.PkiError) as caught:
        pki.verify_chain(leaf, [], [root.cert], "chain", at=NOW)
    assert "signature" in str(caught.value)


def _forge_ca(subject_cn, issuer_cert, issuer_key, ca=True, path_length=None):
    """A CA our builders refuse to make (pathlen violations, CA:FALSE issuers) for verify tests."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(pki.build_name(subject_cn))
        .issuer_name(issuer_cert.subject if issuer_cert is not None else pki.build_name(subject_cn))
        .public_key(key.public_key())
        .serial_number(pki.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 100 * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, ca, ca, False, False), critical=True)
    )
    return builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256()), key


@needs_openssl
def test_pathlen_violation_is_caught_like_openssl(tmp_path):
    root_cert, root_key = _forge_ca("R", None, None, path_length=0)
    inter_cert, inter_key = _forge_ca("I", root_cert, root_key, path_length=0)
    leaf_cert, _leaf_key = _forge_ca("L", inter_cert, inter_key, ca=False)
    ok, output = _openssl_verify(tmp_path, root_cert, [inter_cert], leaf_cert, at=NOW)
    assert not ok and "path length" in output.lower()
    with pytest.raises(pki.PkiError) as caught:
        pki.verify_chain(leaf_cert, [inter_cert], [root_cert], "chain", at=NOW)
    assert "pathlen" in str(caught.value)


def test_non_ca_issuer_is_caught():
    root_cert, root_key = _forge_ca("R", None, None)
    fake_cert, fake_key = _forge_ca("F", root_cert, root_key, ca=False)
    leaf_cert, _key = _forge_ca("L", fake_cert, fake_key, ca=False)
    with pytest.raises(pki.PkiError) as caught:
        pki.verify_chain(leaf_cert, [fake_cert], [root_cert], "chain", at=NOW)
    assert "not a CA" in str(caught.value)


# ------------------------------------------------------------------ reissue decisions


def test_reissue_reason_covers_every_reason():
    root = _root()
    spec, key, leaf = _leaf(root, dns_names=["a.example.com"], usage="client")
    assert pki.reissue_reason(spec, root, leaf, key, now=NOW) is None
    assert pki.reissue_reason(spec, root, None, None, cert_missing=True, now=NOW) == "missing"
    assert pki.reissue_reason(spec, root, leaf, None, key_missing=True, now=NOW) == "missing"
    assert pki.reissue_reason(spec, root, None, key, cert_error=pki.PkiError("x", "y"), now=NOW) == "unreadable"
    assert pki.reissue_reason(spec, root, leaf, pki.generate_private_key(), now=NOW) == "key_mismatch"
    assert pki.reissue_reason(spec, _root(), leaf, key, now=NOW) == "issuer_changed"
    assert pki.reissue_reason(spec, root, leaf, key, now=NOW + 31 * DAY) == "expired"
    assert pki.reissue_reason(spec, root, leaf, key, now=NOW + 21 * DAY) == "renewal_due"
    assert pki.reissue_reason(spec, root, leaf, key, now=NOW + 21 * DAY, renew_before="5d") is None
    assert pki.reissue_reason(pki.LeafSpec("other", dns_names=["a.example.com"], usage="client"), root, leaf, key, now=NOW) == "subject_changed"
    assert pki.reissue_reason(pki.LeafSpec("leaf", dns_names=["b.example.com"], usage="client"), root, leaf, key, now=NOW) == "sans_changed"
    assert pki.reissue_reason(pki.LeafSpec("leaf", dns_names=["a.example.com"], usage="both"), root, leaf, key, now=NOW) == "usage_changed"
    assert (
        pki.reissue_reason(pki.LeafSpec("leaf", dns_names=["a.example.com"], usage="client", key_type="ec_p384"), root, leaf, key, now=NOW)
        == "key_type_changed"
    )


def test_san_order_does_not_cause_reissue():
    root = _root()
    spec, key, leaf = _leaf(root, dns_names=["a.example.com", "b.example.com"])
    swapped = pki.LeafSpec("leaf", dns_names=["b.example.com", "a.example.com"])
    assert pki.reissue_reason(swapped, root, leaf, key, now=NOW) is None


def test_ca_reissue_reason():
    root = _root(path_length=1)

    def reason(key=root.key, **changes):
        args = {"common_name": "Test Root", "key_type": "ec_p256", "path_length": 1, "now": NOW}
        args.update(changes)
        return pki.ca_reissue_reason(root.cert, key, **args)

    assert reason() is None
    assert pki.ca_reissue_reason(None, None, common_name="Test Root", key_type="ec_p256") == "created"
    assert reason(key=pki.generate_private_key()) == "drift"
    assert reason(common_name="Other") == "drift"
    assert reason(path_length=2) == "drift"
    assert reason(key_type="ec_p384") == "drift"
    assert reason(permitted_dns_domains=["x.org"]) == "drift"
    assert reason(now=NOW + 2500 * DAY) == "renewed"
    inter = _intermediate(root)
    iargs = dict(common_name="Test Intermediate", key_type="ec_p256", path_length=0, now=NOW)
    assert pki.ca_reissue_reason(inter.cert, inter.key, issuer=root, **iargs) is None
    assert pki.ca_reissue_reason(inter.cert, inter.key, issuer=_root(path_length=1), **iargs) == "drift"


def test_certificate_summary():
    root = _root()
    _spec, _key, leaf = _leaf(
        root,
        common_name="web",
        dns_names=["web.example.com"],
        ip_addresses=["10.0.0.1"],
        uris=["spiffe://td/web"],
        emails=["a@example.com"],
        key_type="rsa2048",
    )
    summary = pki.certificate_summary(leaf)
    assert summary["subject"] == "CN=web" and summary["issuer"] == "CN=Test Root"
    assert summary["serial"] == "%X" % leaf.serial_number
    assert summary["not_before"] == "2026-11-22T11:55:00Z" and summary["not_after"] == "2026-12-22T12:00:00Z"
    assert summary["dns_names"] == ["web.example.com"] and summary["ip_addresses"] == ["10.0.0.1"]
    assert summary["uris"] == ["spiffe://td/web"] and summary["emails"] == ["a@example.com"]
    assert summary["is_ca"] is False and summary["path_length"] is None and summary["key_type"] == "rsa2048"
    assert pki.certificate_summary(root.cert)["is_ca"] is True
    assert isinstance(leaf.public_key(), rsa.RSAPublicKey)


def test_signature_hash_follows_the_ca_key():
    assert pki.signature_hash_for(pki.generate_private_key("ec_p384")).name == "sha384"
    assert pki.signature_hash_for(pki.generate_private_key("ec_p256")).name == "sha256"
    assert pki.signature_hash_for(pki.generate_private_key("ed25519")) is None


def test_pem_helpers_round_trip():
    root = _root()
    assert pki.load_certificate(pki.certificate_pem(root.cert), "x") == root.cert
    der = root.key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert pki.public_key_der(root.key) == der

"""The fast paths taken for large estates give the same answers as the general ones.

- certs: subject/issuer read straight from the DER vs cryptography's Name objects, and
  certificate-only PEM decoded here vs cryptography's PEM loader;
- exposition: TextGauge lines vs prometheus_client's generate_latest, value by value;
- store: no DER kept without chain checks.
"""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.utils import floatToGoString

from conftest import UTC, b64, certificate_builder, pem, secret_json
from mtls_exporter import certs, chains
from mtls_exporter.collector import CertificateCollector
from mtls_exporter.exposition import RenderedLabels, format_value, render_text
from mtls_exporter.objects import KeySelection, strip_secret
from mtls_exporter.store import CertificateStore


def _certificate(subject: x509.Name, issuer: x509.Name) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(UTC)
    return certificate_builder(subject, issuer, key, now, now + datetime.timedelta(days=1)).sign(key, hashes.SHA256())


NAMES = [
    x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plain.svc")]),
    x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Bayern"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "München"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zerotrust"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "platform"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "second OU (first wins)"),
            x509.NameAttribute(NameOID.COMMON_NAME, "first CN"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "ignored"),
            x509.NameAttribute(NameOID.COMMON_NAME, 'last CN "wins"\\'),
        ]
    ),
    # The fast path hands these to cryptography: BMPString, multi-valued RDN.
    x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bmp.svc", _type=x509.name._ASN1Type.BMPString)]),
    x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "multi"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "valued.svc"),
                ]
            )
        ]
    ),
    x509.Name([]),
]


def test_der_names_match_cryptography():
    for subject in NAMES:
        for issuer in NAMES:
            certificate = _certificate(subject, issuer)
            der = certificate.public_bytes(serialization.Encoding.DER)
            fast = certs.describe(certificate, der)
            general = certs.ParsedCertificate(
                fingerprint=certificate.fingerprint(hashes.SHA256()).hex(),
                serial_number=str(certificate.serial_number),
                subject=certs._name_values(certificate.subject),
                issuer=certs._name_values(certificate.issuer),
                not_before=certificate.not_valid_before_utc.timestamp(),
                not_after=certificate.not_valid_after_utc.timestamp(),
                der=der,
            )
            assert fast == general, (subject, issuer)


def test_pem_fast_path_matches_and_falls_back_with_the_same_reasons(root_ca):
    leaf, _key = root_ca.issue("leaf.svc")
    bundle = pem(leaf, root_ca.certificate)
    parsed = certs.parse_pem_bundle(bundle)
    assert [p.subject[-1] for p in parsed] == ["leaf.svc", "zerotrust test root"]
    assert parsed[0].fingerprint == leaf.fingerprint(hashes.SHA256()).hex()
    assert parsed[0].der == leaf.public_bytes(serialization.Encoding.DER)
    # CRLF line ends take the fast path too.
    assert certs.parse_pem_bundle(bundle.replace(b"\n", b"\r\n")) == parsed
    # Without DER: everything else identical.
    assert [p.der for p in certs.parse_pem_bundle(bundle, keep_der=False)] == [None, None]
    # Garbage inside a block: the general path decides (bad_pem), as before.
    broken = bundle.replace(b"-----BEGIN CERTIFICATE-----\n", b"-----BEGIN CERTIFICATE-----\n!!", 1)
    try:
        certs.parse_pem_bundle(broken)
    except certs.CertificateParseError as error:
        assert error.reason == certs.REASON_BAD_PEM
    else:
        raise AssertionError("a corrupted block must not parse")


def test_store_without_chain_checks_keeps_no_der(root_ca):
    leaf, _key = root_ca.issue("lean.svc")
    secret = secret_json("ns", "lean", {"tls.crt": b64(pem(leaf))})
    lean = CertificateStore(keep_der=False)
    lean.upsert(strip_secret(secret, KeySelection()), "secrets")
    full = CertificateStore()
    full.upsert(strip_secret(secret, KeySelection()), "secrets")
    (lean_cert,) = lean.snapshot()[0].all_certificates()
    (full_cert,) = full.snapshot()[0].all_certificates()
    assert lean_cert.der is None and full_cert.der is not None
    assert lean_cert.fingerprint == full_cert.fingerprint and lean_cert.subject == full_cert.subject
    # A store with a trust bundle always keeps the DER, whatever it was told.
    anchored = CertificateStore(chains.TrustAnchors(certs.parse_pem_bundle(root_ca.pem)), keep_der=False)
    assert anchored.keep_der


def test_rendered_labels_read_back_exactly():
    labels = {"secret_name": 'odd "name"\\with\nnewline', "secret_namespace": "ns", "subject_CN": "ünïcode"}
    rendered = RenderedLabels(labels)
    assert dict(rendered) == labels and rendered == labels
    assert rendered["secret_name"] == labels["secret_name"]
    assert rendered.text == '{secret_name="odd \\"name\\"\\\\with\\nnewline",secret_namespace="ns",subject_CN="ünïcode"}'


def test_values_are_written_as_prometheus_client_writes_them():
    for value in (0.0, 1.0, 1767225600.0, 7776000.123456, 999999.5, 1234567.0, -5.25, 1e16, 2.5e-7, float("inf"), float("-inf"), 86399.99999):
        assert format_value(value) == (repr(value) if value.is_integer() and abs(value) < 1e15 else floatToGoString(value))


def test_text_rendering_is_byte_identical_to_generate_latest_values(root_ca):
    store = CertificateStore()
    for index in range(3):
        leaf, _key = root_ca.issue(f"svc-{index}")
        store.upsert(strip_secret(secret_json("ns", f"s{index}", {"tls.crt": b64(pem(leaf))}), KeySelection()), "secrets")
    registry = CollectorRegistry()
    registry.register(CertificateCollector(store, clock=lambda: 1_800_000_000.25))
    ours = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in render_text(registry).decode().splitlines() if line and not line.startswith("#")}
    theirs = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in generate_latest(registry).decode().splitlines() if line and not line.startswith("#")
    }
    assert ours == theirs

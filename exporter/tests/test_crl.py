"""CRLs in Secrets, ConfigMaps and files: x509-certificate-exporter's x509_crl_* series."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from conftest import UTC, b64, pem, secret_json
from mtls_exporter import certs
from mtls_exporter.files import FilePoller
from mtls_exporter.objects import KeySelection, strip_configmap, strip_secret
from mtls_exporter.store import CertificateStore
from test_collector import find, scrape

SELECTION = KeySelection()


def crl_pem(authority, number, this_update, next_update, revoked=()):
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(authority.certificate.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(this_update).build())
    return builder.sign(authority.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_crl_series_from_an_edge_bundle_secret(root_ca):
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    intermediate = root_ca.intermediate("edge intermediate")
    fresh = crl_pem(intermediate, 7, now - datetime.timedelta(days=1), now + datetime.timedelta(days=13), revoked=[11, 12])
    stale = crl_pem(root_ca, 3, now - datetime.timedelta(days=20), now - datetime.timedelta(days=6))
    secret = secret_json(
        "edge",
        "mtls-client-ca",
        {"ca.crt": b64(pem(intermediate.certificate, root_ca.certificate)), "ca.crl": b64(fresh + stale)},
        secret_type="Opaque",
    )
    store = CertificateStore()
    store.upsert(strip_secret(secret, SELECTION), "secrets")
    series = scrape(store)
    where = dict(secret_namespace="edge", secret_name="mtls-client-ca", secret_key="ca.crl")
    assert find(series, "x509_crl_number", issuer_CN="edge intermediate", crl_number="7", **where) == [7.0]
    assert find(series, "x509_crl_next_update", issuer_CN="edge intermediate", **where) == [(now + datetime.timedelta(days=13)).timestamp()]
    assert find(series, "x509_crl_this_update", issuer_CN="zerotrust test root", **where) == [(now - datetime.timedelta(days=20)).timestamp()]
    assert find(series, "x509_crl_stale", issuer_CN="edge intermediate", **where) == [0.0]
    assert find(series, "x509_crl_stale", issuer_CN="zerotrust test root", crl_number="3", **where) == [1.0]
    (left,) = find(series, "x509_crl_stale_in_seconds", issuer_CN="zerotrust test root", **where)
    assert -6 * 86400 - 60 < left < -6 * 86400 + 60
    assert find(series, "mtls_crl_revoked_certificates", issuer_CN="edge intermediate", **where) == [2.0]
    # The CRL-only key is no certificate source and no error; the certificates of ca.crt still export.
    labels = [labels for labels, _value in series["x509_crl_number"]]
    assert all(label.get("subject_CN", "") == "" and label.get("serial_number", "") == "" for label in labels)
    assert len(find(series, "x509_cert_not_after", secret_key="ca.crt")) == 2
    assert not [value for name, samples in series.items() if name.startswith("x509_source_errors") for _l, value in samples if value]


def test_crl_in_istio_configmap_and_cacerts(root_ca):
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    crl = crl_pem(root_ca, 1, now - datetime.timedelta(hours=1), now + datetime.timedelta(days=7))
    configmap = {"metadata": {"namespace": "shop", "name": "istio-ca-crl", "uid": "u1", "resourceVersion": "1"}, "data": {"ca-crl.pem": crl.decode()}}
    cacerts = secret_json("istio-system", "cacerts", {"ca-crl.pem": b64(crl), "ca-cert.pem": b64(root_ca.pem)}, secret_type="Opaque")
    store = CertificateStore()
    store.upsert(strip_configmap(configmap, SELECTION), "configmaps")
    store.upsert(strip_secret(cacerts, SELECTION), "secrets")
    series = scrape(store)
    assert find(series, "x509_crl_number", configmap_name="istio-ca-crl", configmap_key="ca-crl.pem") == [1.0]
    assert find(series, "x509_crl_number", secret_name="cacerts", secret_key="ca-crl.pem") == [1.0]


def test_broken_crl_is_a_source_error(root_ca):
    secret = secret_json("edge", "bad", {"ca.crl": b64(b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")}, secret_type="Opaque")
    store = CertificateStore()
    store.upsert(strip_secret(secret, SELECTION), "secrets")
    series = scrape(store)
    assert "x509_crl_number" not in series or not series["x509_crl_number"]
    assert find(series, "x509_source_errors_total", reason=certs.REASON_BAD_PEM) == [1.0]


def test_crl_file_goes_stale_on_the_next_scrape(root_ca, tmp_path):
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    path = tmp_path / "chain.crl"
    path.write_bytes(crl_pem(root_ca, 4, now - datetime.timedelta(days=1), now + datetime.timedelta(seconds=30)))
    store = CertificateStore()
    FilePoller(store, [str(path)]).poll_once()
    assert find(scrape(store), "x509_crl_stale", filepath=str(path), filename="chain.crl", crl_number="4") == [0.0]
    # nextUpdate passes without a refresh: the same, unchanged file is reported stale.
    later = scrape(store, clock=lambda: now.timestamp() + 120)
    assert find(later, "x509_crl_stale", filepath=str(path)) == [1.0]
    assert find(later, "x509_crl_stale_in_seconds", filepath=str(path)) == [-90.0]

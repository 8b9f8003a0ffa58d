"""Collector, store and key handling, with certificates generated here."""

from __future__ import annotations

import base64
import datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from conftest import UTC, b64, key_pem, pem, secret_json
from mtls_exporter import certs, chains, objects
from mtls_exporter.collector import CertificateCollector, RotationState, TrustBundleSource
from mtls_exporter.exposition import render_text
from mtls_exporter.objects import KeySelection, strip_configmap, strip_secret
from mtls_exporter.store import CERT_LABELS, CertificateStore

SELECTION = KeySelection()


def scrape(store, **collector_options):
    """Render like the HTTP endpoint does and parse back: {name: [(labels, value)]}."""
    registry = CollectorRegistry()
    registry.register(CertificateCollector(store, **collector_options))
    series: dict[str, list[tuple[dict, float]]] = {}
    for family in text_string_to_metric_families(render_text(registry).decode()):
        for sample in family.samples:
            series.setdefault(sample.name, []).append((sample.labels, sample.value))
    return series


def find(series, name, **labels):
    return [value for sample_labels, value in series.get(name, []) if all(sample_labels.get(k) == v for k, v in labels.items())]


def tls_secret(authority, namespace, name, common_name, rv="1", **issue_options):
    certificate, key = authority.issue(common_name, **issue_options)
    return secret_json(namespace, name, {"tls.crt": b64(pem(certificate)), "tls.key": b64(key_pem(key)), "ca.crt": b64(authority.pem)}, rv=rv), certificate


def test_metric_names_and_labels_match_x509_certificate_exporter(root_ca):
    store = CertificateStore()
    secret, certificate = tls_secret(root_ca, "payments", "api-tls", "api.payments.svc")
    store.upsert(strip_secret(secret, SELECTION), "secrets")
    series = scrape(store)

    for name in ("x509_cert_not_after", "x509_cert_not_before", "x509_cert_expired", "x509_cert_expires_in_seconds", "x509_cert_valid_since_seconds"):
        leaf = find(series, name, secret_key="tls.crt")
        assert len(leaf) == 1, name
    ((labels, value),) = [s for s in series["x509_cert_not_after"] if s[0]["secret_key"] == "tls.crt"]
    assert labels == {
        "secret_namespace": "payments",
        "secret_name": "api-tls",
        "secret_key": "tls.crt",
        "serial_number": str(certificate.serial_number),
        "subject_CN": "api.payments.svc",
        "subject_O": "zerotrust",
        "issuer_CN": "zerotrust test root",
        "issuer_O": "zerotrust",
    }
    assert set(labels) <= set(CERT_LABELS)
    assert value == certificate.not_valid_after_utc.timestamp()
    assert find(series, "x509_cert_expired", secret_key="tls.crt") == [0.0]
    # ca.crt of the same Secret is exported too, under its own key.
    assert find(series, "x509_cert_not_after", secret_key="ca.crt", subject_CN="zerotrust test root")
    assert "x509_source_errors_total" not in series or not series["x509_source_errors_total"]


def test_fast_text_matches_prometheus_client_rendering(root_ca, foreign_ca):
    store = CertificateStore(chains.TrustAnchors(certs.parse_pem_bundle(root_ca.pem)))
    for index in range(5):
        secret, _unused = tls_secret(root_ca if index % 2 else foreign_ca, f"ns{index}", f"s{index}", f'cn "{index}"\\n')
        store.upsert(strip_secret(secret, SELECTION), "secrets")
    store.upsert(strip_secret(secret_json("ns9", "broken", {"tls.crt": b64(b"nope")}), SELECTION), "secrets")
    frozen_now = 1_900_000_000.0
    registry = CollectorRegistry()
    registry.register(CertificateCollector(store, clock=lambda: frozen_now, expose_per_cert_error=True))

    def parsed(text):
        return sorted((s.name, tuple(sorted(s.labels.items())), s.value) for family in text_string_to_metric_families(text) for s in family.samples)

    assert parsed(render_text(registry).decode()) == parsed(generate_latest(registry).decode())


def test_garbage_private_key_is_never_decoded_nor_an_error(root_ca, monkeypatch):
    decoded = []
    real_decode = base64.b64decode

    def recording_decode(value, *args, **kwargs):
        decoded.append(value)
        return real_decode(value, *args, **kwargs)

    monkeypatch.setattr(objects.base64, "b64decode", recording_decode)
    certificate, _unused = root_ca.issue("garbage-key.svc")
    secret = secret_json(
        "shop",
        "weird",
        {"tls.crt": b64(pem(certificate)), "tls.key": "%%% not base64, not a key %%%"},
        annotations={"kubectl.kubernetes.io/last-applied-configuration": '{"data":{"tls.key":"c2VjcmV0"}}'},
    )
    stripped = strip_secret(secret, SELECTION)
    assert set(stripped.values) == {"tls.crt"}
    assert "%%% not base64, not a key %%%" not in decoded
    assert "not a key" not in repr(stripped) and "last-applied" not in repr(stripped)

    store = CertificateStore()
    store.upsert(stripped, "secrets")
    series = scrape(store)
    assert find(series, "x509_cert_expired", secret_name="weird") == [0.0]
    assert not series.get("x509_source_errors_total")


def test_istio_cacerts_keys_are_read_and_ca_key_dropped(root_ca):
    intermediate = root_ca.intermediate("istio intermediate")
    secret = secret_json(
        "istio-system",
        "cacerts",
        {
            "ca-cert.pem": b64(pem(intermediate.certificate)),
            "ca-key.pem": b64(key_pem(intermediate.key)),
            "cert-chain.pem": b64(pem(intermediate.certificate, root_ca.certificate)),
            "root-cert.pem": b64(root_ca.pem),
        },
        secret_type="Opaque",
    )
    stripped = strip_secret(secret, SELECTION)
    assert set(stripped.values) == {"ca-cert.pem", "cert-chain.pem", "root-cert.pem"}
    store = CertificateStore()
    store.upsert(stripped, "secrets")
    series = scrape(store)
    assert len(find(series, "x509_cert_not_after", secret_name="cacerts", secret_key="cert-chain.pem")) == 2
    assert find(series, "x509_cert_not_after", secret_key="root-cert.pem", subject_CN="zerotrust test root")


@pytest.mark.parametrize("key", ["tls.key", "ca-key.pem", "client.key"])
def test_configuring_a_private_key_name_is_refused(key):
    with pytest.raises(ValueError, match="private keys"):
        KeySelection(secret_keys_by_type={"Opaque": ("ca.crt", key)})


@pytest.mark.parametrize(
    "value, reason",
    [
        (b"this is not PEM at all", "bad_pem"),
        (b"-----BEGIN CERTIFICATE-----\nAAAAnotDER\n-----END CERTIFICATE-----\n", "bad_pem"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "no_certificate_found"),
    ],
)
def test_garbage_certificate_counts_a_source_error_and_others_still_export(root_ca, value, reason):
    store = CertificateStore()
    good, _unused = tls_secret(root_ca, "shop", "good", "good.svc")
    store.upsert(strip_secret(good, SELECTION), "secrets")
    store.upsert(strip_secret(secret_json("shop", "bad", {"tls.crt": b64(value)}), SELECTION), "secrets")
    series = scrape(store, expose_per_cert_error=True)
    assert find(series, "x509_source_errors_total", source_kind="kubernetes", source_name="secrets", reason=reason) == [1.0]
    assert find(series, "x509_cert_error", secret_name="bad", secret_key="tls.crt") == [1.0]
    assert find(series, "x509_cert_error", secret_name="good", secret_key="tls.crt") == [0.0]
    assert find(series, "x509_cert_expired", secret_name="good", secret_key="tls.crt") == [0.0]
    assert not find(series, "x509_cert_not_after", secret_name="bad")


def test_undecodable_base64_is_decode_failed(root_ca):
    store = CertificateStore()
    store.upsert(strip_secret(secret_json("shop", "bad64", {"tls.crt": "***"}), SELECTION), "secrets")
    assert find(scrape(store), "x509_source_errors_total", reason="decode_failed") == [1.0]


def test_expired_certificate_is_x509_cert_expired_1(root_ca):
    now = datetime.datetime.now(UTC)
    store = CertificateStore()
    secret, certificate = tls_secret(
        root_ca, "shop", "old", "old.svc", not_before=now - datetime.timedelta(days=10), not_after=now - datetime.timedelta(days=1)
    )
    store.upsert(strip_secret(secret, SELECTION), "secrets")
    series = scrape(store)
    assert find(series, "x509_cert_expired", secret_name="old", secret_key="tls.crt") == [1.0]
    (expires_in,) = find(series, "x509_cert_expires_in_seconds", secret_name="old", secret_key="tls.crt")
    assert -2 * 86400 < expires_in < -86400 + 60


def test_chain_validity_against_trust_bundle(root_ca, foreign_ca):
    intermediate = root_ca.intermediate("zerotrust intermediate")
    leaf_via_intermediate, _unused = intermediate.issue("chained.svc")
    store = CertificateStore(chains.TrustAnchors(certs.parse_pem_bundle(root_ca.pem)))
    own, _unused = tls_secret(root_ca, "shop", "own", "own.svc")
    foreign, _unused = tls_secret(foreign_ca, "shop", "foreign", "foreign.svc")
    chained = secret_json("shop", "chained", {"tls.crt": b64(pem(leaf_via_intermediate, intermediate.certificate))})
    orphan = secret_json("shop", "orphan", {"tls.crt": b64(pem(leaf_via_intermediate))})  # intermediate missing
    for secret in (own, foreign, chained, orphan):
        store.upsert(strip_secret(secret, SELECTION), "secrets")
    series = scrape(store)
    assert find(series, "mtls_cert_chain_valid", secret_name="own", secret_key="tls.crt") == [1.0]
    assert find(series, "mtls_cert_chain_valid", secret_name="foreign", secret_key="tls.crt") == [0.0]
    assert find(series, "mtls_cert_chain_valid", secret_name="foreign", secret_key="ca.crt") == [0.0]
    assert find(series, "mtls_cert_chain_valid", secret_name="chained", subject_CN="chained.svc") == [1.0]
    assert find(series, "mtls_cert_chain_valid", secret_name="orphan") == [0.0]

    # Swapping the trust bundle recomputes every flag.
    store.set_trust_anchors(chains.TrustAnchors(certs.parse_pem_bundle(foreign_ca.pem)))
    series = scrape(store)
    assert find(series, "mtls_cert_chain_valid", secret_name="own", secret_key="tls.crt") == [0.0]
    assert find(series, "mtls_cert_chain_valid", secret_name="foreign", secret_key="tls.crt") == [1.0]


def test_no_chain_gauge_without_trust_bundle(root_ca):
    store = CertificateStore()
    secret, _unused = tls_secret(root_ca, "shop", "own", "own.svc")
    store.upsert(strip_secret(secret, SELECTION), "secrets")
    assert "mtls_cert_chain_valid" not in scrape(store)


def test_delete_and_relist_remove_series(root_ca):
    store = CertificateStore()
    for name in ("a", "b", "c"):
        secret, _unused = tls_secret(root_ca, "shop", name, f"{name}.svc")
        store.upsert(strip_secret(secret, SELECTION), "watch-1")
    store.delete("secret", "shop", "a")
    assert not find(scrape(store), "x509_cert_not_after", secret_name="a")
    # A relist that no longer contains "b" (deleted while the watch was down) prunes it.
    pruned = store.retain_only("watch-1", {("secret", "shop", "c")})
    assert pruned == 1
    names = {labels["secret_name"] for labels, _unused in scrape(store)["x509_cert_not_after"]}
    assert names == {"c"}


def test_parsed_objects_are_cached_by_uid_and_resource_version(root_ca):
    store = CertificateStore()
    secret, _unused = tls_secret(root_ca, "shop", "cached", "cached.svc", rv="10")
    assert store.upsert(strip_secret(secret, SELECTION), "w") is True
    assert store.upsert(strip_secret(secret, SELECTION), "w") is False
    assert store.parse_count == 1
    secret["metadata"]["resourceVersion"] = "11"
    assert store.upsert(strip_secret(secret, SELECTION), "w") is True
    # Recreated under the same name: new uid, so parsed again even with an equal rv.
    secret["metadata"]["uid"] = "another-uid"
    assert store.upsert(strip_secret(secret, SELECTION), "w") is True
    assert store.parse_count == 3


def test_duplicate_certificates_in_one_key_get_a_discriminator(root_ca):
    store = CertificateStore()
    store.upsert(strip_secret(secret_json("shop", "dup", {"ca.crt": b64(root_ca.pem + root_ca.pem)}, secret_type="Opaque"), SELECTION), "w")
    samples = [labels for labels, _unused in scrape(store)["x509_cert_not_after"]]
    assert len(samples) == 2
    assert len({labels["discriminator"] for labels in samples}) == 2


def _root_configmap(namespace, bundle_pem):
    return {
        "metadata": {"namespace": namespace, "name": "istio-ca-root-cert", "uid": f"u-{namespace}", "resourceVersion": "1"},
        "data": {"root-cert.pem": bundle_pem.decode()},
    }


def test_trust_bundles_across_namespaces(root_ca, foreign_ca):
    store = CertificateStore(chains.TrustAnchors(certs.parse_pem_bundle(root_ca.pem)))
    store.upsert(strip_configmap(_root_configmap("a", root_ca.pem), SELECTION), "cm")
    store.upsert(strip_configmap(_root_configmap("b", root_ca.pem), SELECTION), "cm")
    series = scrape(store)
    bundle = "configmap/istio-ca-root-cert/root-cert.pem"
    assert find(series, "mtls_trust_bundle_consistent", bundle=bundle) == [1.0]
    assert find(series, "mtls_trust_bundle_instances", bundle=bundle) == [2.0]
    assert find(series, "mtls_trust_bundle_matches_reference", bundle=bundle, namespace="a") == [1.0]
    # ConfigMap certificates use the configmap_* labels.
    assert find(series, "x509_cert_not_after", configmap_namespace="a", configmap_name="istio-ca-root-cert", configmap_key="root-cert.pem")

    # Namespace c lags behind a root rotation: it holds only the foreign root.
    store.upsert(strip_configmap(_root_configmap("c", foreign_ca.pem), SELECTION), "cm")
    series = scrape(store)
    assert find(series, "mtls_trust_bundle_consistent", bundle=bundle) == [0.0]
    assert find(series, "mtls_trust_bundle_versions", bundle=bundle) == [2.0]
    fingerprints = {labels["namespace"]: labels["fingerprint"] for labels, _unused in series["mtls_trust_bundle_info"]}
    assert fingerprints["a"] == fingerprints["b"] != fingerprints["c"]
    assert find(series, "mtls_trust_bundle_matches_reference", namespace="c") == [0.0]


def test_trust_bundle_source_syntax():
    assert TrustBundleSource.parse("secret/ca-bundle/ca.crt").label == "secret/ca-bundle/ca.crt"
    with pytest.raises(ValueError):
        TrustBundleSource.parse("pod/x/y")


def test_rotation_status_metrics():
    rotation = RotationState()
    rejected = rotation.replace(
        {
            "rotate_root_ca.last_success": "1700000000",
            "rotate_root_ca.last_failure": "1700000500",
            "rotate_root_ca.failures_total": "3",
            "rotate_client_certs.last_success": "1700001000",
            "rotate_client_certs.note": "hello",
            "rotate_intermediate.last_success": "yesterday",
        }
    )
    assert sorted(rejected) == ["rotate_client_certs.note", "rotate_intermediate.last_success"]
    series = scrape(CertificateStore(), rotation=rotation)
    assert find(series, "mtls_rotation_last_success_timestamp_seconds", rotation="rotate_root_ca") == [1700000000.0]
    assert find(series, "mtls_rotation_last_failure_timestamp_seconds", rotation="rotate_root_ca") == [1700000500.0]
    assert find(series, "mtls_rotation_failures_total", rotation="rotate_root_ca") == [3.0]
    assert find(series, "mtls_rotation_failures_total", rotation="rotate_client_certs") == [0.0]
    assert find(series, "mtls_rotation_status_present") == [1.0]
    rotation.replace(None)
    assert find(scrape(CertificateStore(), rotation=rotation), "mtls_rotation_status_present") == [0.0]


def test_parsed_facts_match_cryptography(root_ca):
    from cryptography.hazmat.primitives import hashes

    certificate, _key = root_ca.issue("facts.svc")
    (parsed,) = certs.parse_pem_bundle(pem(certificate))
    assert parsed.fingerprint == certificate.fingerprint(hashes.SHA256()).hex()
    assert parsed.serial_number == str(certificate.serial_number)
    assert parsed.subject[-1] == "facts.svc" and parsed.issuer[-1] == "zerotrust test root"
    assert parsed.not_after == certificate.not_valid_after_utc.timestamp()
    assert parsed.load() == certificate

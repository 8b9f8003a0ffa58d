"""prometheus_client Collector: every series is built at scrape time from the store.

Nothing is registered per certificate, so a deleted Secret's series disappear on the
next scrape without bookkeeping, and time-relative values (expired, expires_in) are
computed against the scrape's own clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.samples import Sample

from . import __version__
from .chains import bundle_fingerprint
from .exposition import TextGauge
from .store import CertificateStore


@dataclass(frozen=True, slots=True)
class TrustBundleSource:
    """Objects with one name and key across namespaces that must hold the same bundle."""

    kind: str  # "configmap" or "secret"
    name: str
    key: str

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name}/{self.key}"

    @classmethod
    def parse(cls, text: str) -> "TrustBundleSource":
        parts = text.split("/", 2)
        if len(parts) != 3 or parts[0] not in ("configmap", "secret") or not parts[1] or not parts[2]:
            raise ValueError(f"trust bundle source {text!r} must look like configmap/NAME/KEY or secret/NAME/KEY")
        return cls(*parts)


DEFAULT_TRUST_BUNDLE_SOURCES = (TrustBundleSource("configmap", "istio-ca-root-cert", "root-cert.pem"),)

ROTATION_FIELDS = ("last_success", "last_failure", "failures_total")


@dataclass
class RotationState:
    """Rotation runs as recorded by the rotation playbooks in one ConfigMap."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    present: bool = False
    runs: dict[str, dict[str, float]] = field(default_factory=dict)

    def replace(self, data: dict[str, str] | None) -> list[str]:
        """Load a ConfigMap's data; return the keys that could not be understood."""
        runs: dict[str, dict[str, float]] = {}
        rejected = []
        for key, text in (data or {}).items():
            rotation, _unused, field_name = key.rpartition(".")
            if not rotation or field_name not in ROTATION_FIELDS:
                rejected.append(key)
                continue
            try:
                runs.setdefault(rotation, {})[field_name] = float(text)
            except (TypeError, ValueError):
                rejected.append(key)
        with self.lock:
            self.present = data is not None
            self.runs = runs
        return rejected

    def snapshot(self) -> tuple[bool, dict[str, dict[str, float]]]:
        with self.lock:
            return self.present, {k: dict(v) for k, v in self.runs.items()}


def _gauge(name: str, documentation: str) -> Metric:
    return Metric(name, documentation, "gauge")


class _StoreIndex:
    """One pass over the store per scrape: flat lists the families are built from.

    Walking 100,000 objects once instead of once per family (5 certificate families,
    7 CRL families, the trust bundles) is most of what a scrape's Python costs.
    """

    __slots__ = ("keys", "cert_labels", "certificates", "crls", "trust_bundle_keys")

    def __init__(self, objects, trust_bundle_sources):
        wanted = {(s.kind, s.name, s.key): s for s in trust_bundle_sources}
        self.keys = keys = []
        self.cert_labels = cert_labels = []
        self.certificates = certificates = []
        self.crls = crls = []
        self.trust_bundle_keys = trust_bundle_keys = []
        for source_object in objects:
            for key in source_object.keys:
                keys.append(key)
                if key.certificates:
                    cert_labels.extend(key.labels)
                    certificates.extend(key.certificates)
                if key.crls:
                    crls.extend(zip(key.crl_labels, key.crls))
                if wanted:
                    source = wanted.get((source_object.kind, source_object.name, key.key))
                    if source is not None and not key.error_reason:
                        trust_bundle_keys.append((source, source_object.namespace, key))


# eq=False: a registry keeps its collectors as dictionary keys, by identity.
@dataclass(eq=False)
class CertificateCollector:
    """Turns the store into x509-certificate-exporter compatible metrics and ours."""

    store: CertificateStore
    _: KW_ONLY
    expose_relative: bool = True
    expose_per_cert_error: bool = False
    trust_bundle_sources: tuple[TrustBundleSource, ...] = DEFAULT_TRUST_BUNDLE_SOURCES
    rotation: RotationState | None = None
    clock: Callable[[], float] = time.time

    def describe(self):
        # Returning nothing tells prometheus_client not to call collect() at
        # registration; series come and go with the store.
        return []

    def collect(self):
        now = self.clock()
        index = _StoreIndex(self.store.snapshot(), self.trust_bundle_sources)
        yield from self._certificate_metrics(index, now)
        yield from self._crl_metrics(index, now)
        yield from self._source_metrics()
        yield from self._trust_bundle_metrics(index)
        if self.rotation is not None:
            yield from self._rotation_metrics()
        info = GaugeMetricFamily("mtls_exporter_build_info", "Constant 1, labelled with the exporter version.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info

    def _certificate_metrics(self, index: "_StoreIndex", now: float):
        """One family at a time: each is built, yielded, rendered and dropped before the
        next, so a scrape holds one family's values (100,000 for 100,000 Secrets) rather
        than all of them. Label texts come ready-made from the store (TextGauge)."""
        labels, certificates = index.cert_labels, index.certificates
        families = [
            ("x509_cert_not_after", "Unix timestamp of the certificate's NotAfter.", lambda: [c.not_after for c in certificates]),
            ("x509_cert_not_before", "Unix timestamp of the certificate's NotBefore.", lambda: [c.not_before for c in certificates]),
            ("x509_cert_expired", "1 if the certificate is expired, 0 otherwise.", lambda: [1.0 if now > c.not_after else 0.0 for c in certificates]),
        ]
        if self.expose_relative:
            families += [
                ("x509_cert_expires_in_seconds", "Seconds until the certificate's NotAfter.", lambda: [c.not_after - now for c in certificates]),
                ("x509_cert_valid_since_seconds", "Seconds since the certificate's NotBefore.", lambda: [now - c.not_before for c in certificates]),
            ]
        for name, documentation, values in families:
            yield TextGauge(name, documentation, labels, values())
        if self.expose_per_cert_error:
            error_labels, error_values = [], []
            for key in index.keys:
                if key.error_reason:
                    error_labels.append(key.error_labels)
                    error_values.append(1.0)
                else:
                    error_labels.extend(key.labels)
                    error_values.extend(0.0 for _unused in key.labels)
            yield TextGauge("x509_cert_error", "1 if the corresponding bundle item failed to parse, 0 otherwise.", error_labels, error_values)
        if self.store.trust_anchors is not None:
            chain_labels, chain_values = [], []
            for key in index.keys:
                if key.chain_valid is not None:
                    chain_labels.extend(key.labels)
                    chain_values.extend(1.0 if valid else 0.0 for valid in key.chain_valid)
            yield TextGauge(
                "mtls_cert_chain_valid",
                "1 if the certificate chains (through certificates of the same object) to the --trust-bundle, 0 otherwise.",
                chain_labels,
                chain_values,
            )

    def _crl_metrics(self, index: "_StoreIndex", now: float):
        """x509-certificate-exporter's per-CRL series, for every CRL found in a Secret,
        ConfigMap or file. A CRL without nextUpdate gets no next_update/stale series."""
        families = [
            ("x509_crl_next_update", "Unix timestamp of the CRL's nextUpdate.", lambda c: c.next_update),
            ("x509_crl_this_update", "Unix timestamp of the CRL's thisUpdate.", lambda c: c.this_update),
            ("x509_crl_number", "Value of the CRL's cRLNumber extension.", lambda c: float(c.crl_number) if c.crl_number else None),
            (
                "x509_crl_stale",
                "1 if the current time is past the CRL's nextUpdate, 0 otherwise.",
                lambda c: None if c.next_update is None else (1.0 if now > c.next_update else 0.0),
            ),
            ("mtls_crl_revoked_certificates", "Number of certificates the CRL revokes.", lambda c: float(c.revoked_count)),
        ]
        if self.expose_relative:
            families += [
                (
                    "x509_crl_stale_in_seconds",
                    "Seconds until the CRL's nextUpdate (negative once stale).",
                    lambda c: None if c.next_update is None else c.next_update - now,
                ),
                ("x509_crl_fresh_since_seconds", "Seconds since the CRL's thisUpdate.", lambda c: now - c.this_update),
            ]
        for name, documentation, value_of in families:
            family = _gauge(name, documentation)
            for labels, crl in index.crls:
                value = value_of(crl)
                if value is not None:
                    family.samples.append(Sample(name, labels, value))
            yield family

    def _source_metrics(self):
        errors = CounterMetricFamily("x509_source_errors", "Errors emitted by sources, by reason code.", labels=["source_kind", "source_name", "reason"])
        for (kind, name, reason), count in sorted(self.store.errors_snapshot().items()):
            errors.add_metric([kind, name, reason], count)
        yield errors
        up = GaugeMetricFamily("x509_source_up", "1 if the source has produced its first sync, 0 otherwise.", labels=["source_kind", "source_name"])
        for (kind, name), is_up in sorted(self.store.source_up.items()):
            up.add_metric([kind, name], 1.0 if is_up else 0.0)
        yield up
        anchors = self.store.trust_anchors
        if anchors is not None:
            count = GaugeMetricFamily("mtls_trust_anchors", "Number of certificates in --trust-bundle.", labels=["fingerprint"])
            count.add_metric([anchors.bundle_fingerprint], len(anchors))
            yield count

    def _trust_bundle_metrics(self, index: "_StoreIndex"):
        if not self.trust_bundle_sources:
            return
        instances: dict[TrustBundleSource, list[tuple[str, str, frozenset[str]]]] = {s: [] for s in self.trust_bundle_sources}
        for source, namespace, key in index.trust_bundle_keys:
            instances[source].append((namespace, bundle_fingerprint(key.certificates), frozenset(c.fingerprint for c in key.certificates)))
        consistent = GaugeMetricFamily(
            "mtls_trust_bundle_consistent",
            "1 if every namespace's copy of the trust bundle holds the same certificates, 0 otherwise.",
            labels=["bundle"],
        )
        count = GaugeMetricFamily("mtls_trust_bundle_instances", "Number of namespaces holding the trust bundle.", labels=["bundle"])
        versions = GaugeMetricFamily(
            "mtls_trust_bundle_versions", "Number of distinct certificate sets among the copies of the trust bundle.", labels=["bundle"]
        )
        info = GaugeMetricFamily(
            "mtls_trust_bundle_info", "Constant 1 per copy of a trust bundle, labelled with its fingerprint.", labels=["bundle", "namespace", "fingerprint"]
        )
        anchors = self.store.trust_anchors
        matches = GaugeMetricFamily(
            "mtls_trust_bundle_matches_reference",
            "1 if this copy of the trust bundle holds every certificate of --trust-bundle, 0 otherwise.",
            labels=["bundle", "namespace"],
        )
        for source, copies in instances.items():
            if not copies:
                continue
            distinct = {fingerprint for _unused, fingerprint, _unused in copies}
            consistent.add_metric([source.label], 1.0 if len(distinct) == 1 else 0.0)
            count.add_metric([source.label], len(copies))
            versions.add_metric([source.label], len(distinct))
            for namespace, fingerprint, members in copies:
                info.add_metric([source.label, namespace, fingerprint], 1.0)
                if anchors is not None:
                    matches.add_metric([source.label, namespace], 1.0 if anchors.fingerprints <= members else 0.0)
        yield consistent
        yield count
        yield versions
        yield info
        if anchors is not None:
            yield matches

    def _rotation_metrics(self):
        present, runs = self.rotation.snapshot()
        up = GaugeMetricFamily("mtls_rotation_status_present", "1 if the rotation status ConfigMap was found, 0 otherwise.")
        up.add_metric([], 1.0 if present else 0.0)
        yield up
        success = GaugeMetricFamily(
            "mtls_rotation_last_success_timestamp_seconds", "Unix time of the last successful run of the rotation.", labels=["rotation"]
        )
        failure = GaugeMetricFamily("mtls_rotation_last_failure_timestamp_seconds", "Unix time of the last failed run of the rotation.", labels=["rotation"])
        failures = CounterMetricFamily("mtls_rotation_failures", "Failed runs of the rotation, as recorded by the playbooks.", labels=["rotation"])
        for rotation in sorted(runs):
            fields = runs[rotation]
            if "last_success" in fields:
                success.add_metric([rotation], fields["last_success"])
            if "last_failure" in fields:
                failure.add_metric([rotation], fields["last_failure"])
            failures.add_metric([rotation], fields.get("failures_total", 0.0))
        yield success
        yield failure
        yield failures

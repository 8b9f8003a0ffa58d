"""The in-memory state the collector reads at scrape time.

Writers (the Kubernetes list/watch loops, the file poller) parse on arrival; a scrape
only walks ready-made records, so its cost does not depend on parsing. Parsed objects
are keyed by (uid, resourceVersion): a relist after a 410 Gone, or the same object seen
again, costs a dictionary lookup, not a parse.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass

from . import certs, chains
from .certs import CertificateParseError, ParsedCertificate, ParsedCRL
from .chains import TrustAnchors
from .exposition import RenderedLabels
from .objects import StrippedObject

# x509-certificate-exporter v4's unified label schema, in its order. Every x509_cert_*
# series carries these names; the ones a source kind does not use are empty, which
# Prometheus treats exactly like an absent label.
LOCATION_LABELS = (
    "filename",
    "filepath",
    "embedded_kind",
    "embedded_key",
    "secret_namespace",
    "secret_name",
    "secret_key",
    "configmap_namespace",
    "configmap_name",
    "configmap_key",
    "cabundle_resource_kind",
    "cabundle_resource_name",
    "cabundle_entry",
    "serial_number",
    "crl_number",
)
CERT_LABELS = LOCATION_LABELS + tuple(f"issuer_{f}" for f in certs.NAME_FIELDS) + tuple(f"subject_{f}" for f in certs.NAME_FIELDS)

SOURCE_KIND_KUBERNETES = "kubernetes"
SOURCE_KIND_FILE = "file"


@dataclass(slots=True)
class KeyCertificates:
    """The certificates found at one key of one object (or in one file)."""

    key: str
    certificates: tuple[ParsedCertificate, ...]
    labels: tuple[RenderedLabels, ...]  # one label set per certificate
    error_reason: str | None
    error_labels: RenderedLabels | None
    chain_valid: tuple[bool, ...] | None = None
    # CRLs found at the same key (ca.crl, ca-crl.pem, or mixed with certificates).
    crls: tuple[ParsedCRL, ...] = ()
    crl_labels: tuple[RenderedLabels, ...] = ()


@dataclass(slots=True)
class SourceObject:
    kind: str  # "secret", "configmap" or "file"
    namespace: str
    name: str
    uid: str
    resource_version: str
    keys: tuple[KeyCertificates, ...]

    @property
    def ref(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)

    def all_certificates(self) -> tuple[ParsedCertificate, ...]:
        return tuple(c for k in self.keys for c in k.certificates)


def _location_labels(kind: str, namespace: str, name: str, key: str) -> dict[str, str]:
    if kind == "secret":
        return {"secret_namespace": namespace, "secret_name": name, "secret_key": key}
    if kind == "configmap":
        return {"configmap_namespace": namespace, "configmap_name": name, "configmap_key": key}
    # Files: x509-certificate-exporter puts the path in filepath and its base name in
    # filename.
    return {"filename": name.rsplit("/", 1)[-1], "filepath": name}


def _name_labels(prefix: str, name_values) -> dict[str, str]:
    """issuer_CN, subject_O, ...: one label per field of a distinguished name that has a value."""
    return {f"{prefix}_{field_name}": value for field_name, value in zip(certs.NAME_FIELDS, name_values) if value}


def _certificate_labels(location: dict[str, str], certificate: ParsedCertificate) -> dict[str, str]:
    return {
        **location,
        "serial_number": certificate.serial_number,
        **_name_labels("issuer", certificate.issuer),
        **_name_labels("subject", certificate.subject),
    }


def _add_discriminators(labels: list[dict[str, str]], certificates, source: str) -> None:
    """Give colliding label sets a short discriminator, as x509-certificate-exporter does.

    Two identical certificates in one bundle would otherwise produce duplicate series,
    which Prometheus rejects for the whole scrape.
    """
    if len(labels) < 2:
        return
    seen = Counter(tuple(sorted(label_set.items())) for label_set in labels)
    for index, label_set in enumerate(labels):
        if seen[tuple(sorted(label_set.items()))] > 1:
            digest = hashlib.sha256(bytes.fromhex(certificates[index].fingerprint) + source.encode() + index.to_bytes(4, "big")).hexdigest()
            label_set["discriminator"] = digest[:8]


def _crl_labels(location: dict[str, str], crl: ParsedCRL) -> dict[str, str]:
    """x509-certificate-exporter's CRL series: location, issuer_* and crl_number (no subject, no serial)."""
    return {**location, "crl_number": crl.crl_number, **_name_labels("issuer", crl.issuer)}


def build_key_certificates(kind: str, namespace: str, name: str, key: str, value: bytes | None, keep_der: bool = True) -> KeyCertificates:
    location = _location_labels(kind, namespace, name, key)
    if value is None:
        return KeyCertificates(key, (), (), certs.REASON_DECODE_FAILED, RenderedLabels(location))
    try:
        crls = certs.parse_pem_crls(value)
    except CertificateParseError as error:
        return KeyCertificates(key, (), (), error.reason, RenderedLabels(location))
    crl_labels = tuple(RenderedLabels(_crl_labels(location, crl)) for crl in crls)
    if crls and b"-----BEGIN CERTIFICATE-----" not in value:
        # A CRL-only value (ca.crl, ca-crl.pem) is not a certificate source without certificates.
        return KeyCertificates(key, (), (), None, None, crls=crls, crl_labels=crl_labels)
    try:
        parsed = certs.parse_pem_bundle_cached(value, keep_der)
    except CertificateParseError as error:
        return KeyCertificates(key, (), (), error.reason, RenderedLabels(location), crls=crls, crl_labels=crl_labels)
    labels = [_certificate_labels(location, c) for c in parsed]
    _add_discriminators(labels, parsed, f"{kind}/{namespace}/{name}/{key}")
    return KeyCertificates(key, parsed, tuple(RenderedLabels(label_set) for label_set in labels), None, None, crls=crls, crl_labels=crl_labels)


class CertificateStore:
    """Thread-safe map of source objects, plus the counters the collector reports."""

    def __init__(self, trust_anchors: TrustAnchors | None = None, keep_der: bool = True):
        """`keep_der=False` drops each certificate's DER after parsing (~400 bytes each),
        for a store that never checks chains (the exporter without --trust-bundle)."""
        self._lock = threading.Lock()
        self.keep_der = keep_der or trust_anchors is not None
        self._objects: dict[tuple[str, str, str], SourceObject] = {}
        self._owner: dict[tuple[str, str, str], str] = {}  # ref -> watch id that saw it
        self._trust_anchors = trust_anchors
        self.source_errors: Counter[tuple[str, str, str]] = Counter()
        self.source_up: dict[tuple[str, str], bool] = {}
        self.parse_count = 0  # objects actually parsed (cache misses), for tests and logs

    # -- trust anchors -------------------------------------------------------------

    @property
    def trust_anchors(self) -> TrustAnchors | None:
        return self._trust_anchors

    def set_trust_anchors(self, anchors: TrustAnchors | None) -> None:
        """Swap the trust bundle and recompute every chain flag against it."""
        with self._lock:
            self._trust_anchors = anchors
            if anchors is not None:
                # Certificates parsed without DER count as not chaining until re-parsed.
                self.keep_der = True
            objects = list(self._objects.values())
        for source_object in objects:
            self._compute_chains(source_object, anchors)

    @staticmethod
    def _compute_chains(source_object: SourceObject, anchors: TrustAnchors | None) -> None:
        if anchors is None:
            for key in source_object.keys:
                key.chain_valid = None
            return
        now = time.time()
        pool = source_object.all_certificates()
        for key in source_object.keys:
            key.chain_valid = tuple(chains.chains_to_anchor(c, pool, anchors, now) for c in key.certificates)

    # -- writers ---------------------------------------------------------------------

    def mark_source_up(self, source_kind: str, source_name: str, up: bool = True) -> None:
        self.source_up[(source_kind, source_name)] = up

    def count_error(self, source_kind: str, source_name: str, reason: str) -> None:
        with self._lock:
            self.source_errors[(source_kind, source_name, reason)] += 1

    def upsert(
        self,
        stripped: StrippedObject,
        owner: str,
        source_kind: str = SOURCE_KIND_KUBERNETES,
        source_name: str | None = None,
    ) -> bool:
        """Store an object; return True when it had to be parsed (not cached).

        `owner` identifies the list/watch loop (for pruning after a relist);
        `source_name` is the x509_source_errors_total label (defaults to `owner`).
        """
        ref = (stripped.kind, stripped.namespace, stripped.name)
        with self._lock:
            current = self._objects.get(ref)
            self._owner[ref] = owner
            if current is not None and current.uid == stripped.uid and current.resource_version == stripped.resource_version:
                return False
        source_object = self._parse(stripped, self.keep_der)
        self._compute_chains(source_object, self._trust_anchors)
        with self._lock:
            self._objects[ref] = source_object
            self.parse_count += 1
            for key in source_object.keys:
                if key.error_reason:
                    self.source_errors[(source_kind, source_name or owner, key.error_reason)] += 1
        return True

    @staticmethod
    def _parse(stripped: StrippedObject, keep_der: bool = True) -> SourceObject:
        keys = tuple(build_key_certificates(stripped.kind, stripped.namespace, stripped.name, key, value, keep_der) for key, value in stripped.values.items())
        return SourceObject(stripped.kind, stripped.namespace, stripped.name, stripped.uid, stripped.resource_version, keys)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._objects.pop((kind, namespace, name), None)
            self._owner.pop((kind, namespace, name), None)

    def retain_only(self, owner: str, refs_seen: set[tuple[str, str, str]]) -> int:
        """After a full (re)list by `owner`, forget its objects the list no longer holds."""
        with self._lock:
            stale = [ref for ref, o in self._owner.items() if o == owner and ref not in refs_seen]
            for ref in stale:
                self._objects.pop(ref, None)
                self._owner.pop(ref, None)
        return len(stale)

    # -- readers -----------------------------------------------------------------------

    def snapshot(self) -> list[SourceObject]:
        with self._lock:
            return list(self._objects.values())

    def objects_by_owner(self) -> Counter[str]:
        with self._lock:
            return Counter(self._owner.values())

    def errors_snapshot(self) -> dict[tuple[str, str, str], int]:
        with self._lock:
            return dict(self.source_errors)

    def get(self, kind: str, namespace: str, name: str) -> SourceObject | None:
        with self._lock:
            return self._objects.get((kind, namespace, name))

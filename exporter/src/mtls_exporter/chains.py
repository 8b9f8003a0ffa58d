"""Chain checks against --trust-bundle, by the rules the collection's modules apply.

mtls_cert_chain_valid is 1 when a path leads from a certificate to a trust anchor that
the collection's pki.verify_chain (plugins/module_utils) would accept: every link signed by the
next; every issuer (the anchor too) inside its validity window, a CA (basicConstraints
CA:TRUE) and, when it has keyUsage, allowed keyCertSign; no more CAs below an issuer
than its pathlen allows; and every DNS name and URI host below a CA with permitted name
constraints inside them (self-issued intermediate CAs exempt). Two differences, on
purpose (docs/exporter.md says so too): the certificate's own dates are not judged
(x509_cert_expired does that, so one expiry raises one alert), and when several issuers
fit a link every path is tried, where verify_chain follows the first it finds.

cryptography's x509.verification verifiers would enforce most of this in Rust, but the
one of cryptography 48 refuses Ed25519 keys and URI name constraints, both of which the
collection issues (key_type ed25519, SPIFFE trust domains), and it judges the
certificate's own dates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509

from .certs import ParsedCertificate, parse_pem_bundle

# Intermediates between a certificate and its anchor, at most.
_MAX_CHAIN_DEPTH = 8


def colon_hex(digest: bytes) -> str:
    """'AB:CD:...': how the collection's modules print SHA-256 fingerprints (sha256_fingerprint)."""
    return digest.hex(":").upper()


def bundle_fingerprint(certificates: tuple[ParsedCertificate, ...]) -> str:
    """Order-independent identity of a set of certificates (a trust bundle), as 'AB:CD:...'."""
    digest = hashlib.sha256()
    for fingerprint in sorted({c.fingerprint for c in certificates}):
        digest.update(bytes.fromhex(fingerprint))
    return colon_hex(digest.digest())


@dataclass(frozen=True, slots=True)
class IssuerRules:
    """What a certificate allows below it when it signs others."""

    may_sign: bool  # CA:TRUE, and keyCertSign when keyUsage is present
    path_length: int | None
    dns_domains: tuple[str, ...] | None  # permitted DNS subtrees; None: unconstrained
    uri_domains: tuple[str, ...] | None  # permitted URI hosts; None: unconstrained
    self_issued_ca: bool  # exempt from the name constraints above it

    @property
    def constrains_names(self) -> bool:
        return self.dns_domains is not None or self.uri_domains is not None


def issuer_rules(certificate: x509.Certificate) -> IssuerRules:
    """The rules of one certificate; one that cannot sign when its extensions do not parse."""
    try:
        extensions = certificate.extensions
    except ValueError:  # duplicate or malformed extensions: no TLS library trusts it either
        return IssuerRules(False, None, None, None, False)
    try:
        constraints = extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca, path_length = constraints.ca, constraints.path_length
    except x509.ExtensionNotFound:
        is_ca, path_length = False, None
    try:
        may_sign = is_ca and extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    except x509.ExtensionNotFound:
        may_sign = is_ca
    dns_domains = uri_domains = None
    try:
        permitted = extensions.get_extension_for_class(x509.NameConstraints).value.permitted_subtrees or ()
        dns_domains = tuple(n.value for n in permitted if isinstance(n, x509.DNSName)) or None
        uri_domains = tuple(n.value for n in permitted if isinstance(n, x509.UniformResourceIdentifier)) or None
    except x509.ExtensionNotFound:
        pass
    return IssuerRules(may_sign, path_length, dns_domains, uri_domains, is_ca and certificate.subject == certificate.issuer)


class TrustAnchors:
    """The certificates of --trust-bundle, indexed for issuer lookups."""

    def __init__(self, anchors: tuple[ParsedCertificate, ...]):
        self.anchors = anchors
        self.fingerprints = frozenset(a.fingerprint for a in anchors)
        # Indexed by subject field values: a cheap pre-filter, since
        # verify_directly_issued_by compares the exact names and the signature.
        self.by_subject: dict[tuple[str, ...], list[ParsedCertificate]] = {}
        for anchor in anchors:
            self.by_subject.setdefault(anchor.subject, []).append(anchor)
        self.bundle_fingerprint = bundle_fingerprint(anchors)
        # Every chain check ends at an anchor: load each one and read its rules once.
        self._links: dict[str, _Link] = {}

    def __len__(self) -> int:
        return len(self.anchors)

    def link(self, anchor: ParsedCertificate) -> _Link:
        link = self._links.get(anchor.fingerprint)
        if link is None:
            certificate = anchor.load()
            link = self._links.setdefault(anchor.fingerprint, _Link(anchor, certificate, issuer_rules(certificate)))
        return link


def load_trust_anchors(path: str) -> TrustAnchors:
    with open(path, "rb") as handle:
        return TrustAnchors(parse_pem_bundle(handle.read()))


@dataclass(slots=True)
class _Link:
    parsed: ParsedCertificate
    certificate: x509.Certificate
    rules: IssuerRules | None  # None for the certificate under test (not an issuer)


def chains_to_anchor(
    certificate: ParsedCertificate,
    intermediates: tuple[ParsedCertificate, ...],
    anchors: TrustAnchors,
    now: float,
) -> bool:
    """True when a path from `certificate` to a trust anchor passes the module rules.

    Intermediates come from the same object (a tls.crt chain, cert-chain.pem, ca.crt).
    """
    if certificate.fingerprint in anchors.fingerprints:
        return True
    pool: dict[tuple[str, ...], list[ParsedCertificate]] = {}
    for candidate in intermediates:
        pool.setdefault(candidate.subject, []).append(candidate)
    start = _Link(certificate, certificate.load(), None)
    return any(_path_allowed(path) for path in _signed_paths([start], pool, anchors, now))


def _signed_paths(path: list[_Link], pool, anchors: TrustAnchors, now: float):
    """Every path [certificate, ..., anchor] of valid signatures by issuers that may sign
    and are inside their validity window now; anchors nearest the certificate first."""
    current = path[-1]
    if len(path) > _MAX_CHAIN_DEPTH + 1:
        return
    for anchor in anchors.by_subject.get(current.parsed.issuer, ()):
        if _in_window(anchor, now):
            link = anchors.link(anchor)
            if link.rules.may_sign and _signed(current, link):
                yield path + [link]
    visited = {link.parsed.fingerprint for link in path}
    for parent in pool.get(current.parsed.issuer, ()):
        if parent.fingerprint in visited or not _in_window(parent, now):
            continue
        certificate = parent.load()
        link = _Link(parent, certificate, issuer_rules(certificate))
        if link.rules.may_sign and _signed(current, link):
            yield from _signed_paths(path + [link], pool, anchors, now)


def _in_window(certificate: ParsedCertificate, now: float) -> bool:
    return certificate.not_before <= now <= certificate.not_after


def _signed(child: _Link, parent: _Link) -> bool:
    try:
        child.certificate.verify_directly_issued_by(parent.certificate)
    except Exception:  # noqa: BLE001 - any failure (name, signature, key type) means "no"
        return False
    return True


def _path_allowed(path: list[_Link]) -> bool:
    """pathlen and name constraints of every issuer of the path, as verify_chain checks them."""
    for depth, issuer in enumerate(path[1:], start=1):
        rules = issuer.rules
        # CAs strictly between this issuer and the certificate count against its pathlen.
        if rules.path_length is not None and depth - 1 > rules.path_length:
            return False
        if not rules.constrains_names:
            continue
        for index, below in enumerate(path[:depth]):
            if index and below.rules.self_issued_ca:
                continue
            if not _names_permitted(below.certificate, rules):
                return False
    return True


def _names_permitted(certificate: x509.Certificate, rules: IssuerRules) -> bool:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return True
    except ValueError:
        return False
    if rules.dns_domains is not None:
        for name in names.get_values_for_type(x509.DNSName):
            if not any(_dns_within(name, domain) for domain in rules.dns_domains):
                return False
    if rules.uri_domains is not None:
        for uri in names.get_values_for_type(x509.UniformResourceIdentifier):
            host = (urlsplit(uri).hostname or "").lower()
            if not any(_host_within(host, domain) for domain in rules.uri_domains):
                return False
    return True


def _dns_within(name: str, domain: str) -> bool:
    """RFC 5280 DNS constraint: the domain itself or a name below it; '.example.com' only below."""
    name, domain = name.lower().rstrip("."), domain.lower().rstrip(".")
    if domain.startswith("."):
        return name.endswith(domain)
    return name == domain or name.endswith("." + domain)


def _host_within(host: str, domain: str) -> bool:
    """RFC 5280 URI constraint: 'example.com' is that host only, '.example.com' any host below it."""
    host, domain = host.rstrip("."), domain.lower().rstrip(".")
    if domain.startswith("."):
        return host.endswith(domain)
    return host == domain

"""Certificate parsing and chain checks, with nothing but `cryptography`.

Only PEM "CERTIFICATE" blocks are ever handed to the parser: the blocks are cut out of
the input first, so a stray private key that shares a file with a certificate is never
parsed, decoded or kept.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import sys
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

# Same order as x509-certificate-exporter's label schema (C, ST, L, O, OU, CN).
NAME_FIELDS = ("C", "ST", "L", "O", "OU", "CN")
_NAME_OIDS = (
    NameOID.COUNTRY_NAME,
    NameOID.STATE_OR_PROVINCE_NAME,
    NameOID.LOCALITY_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.COMMON_NAME,
)

_DER = serialization.Encoding.DER

_CERT_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----", re.DOTALL)
_CRL_BLOCK = re.compile(rb"-----BEGIN X509 CRL-----\r?\n.*?-----END X509 CRL-----", re.DOTALL)

# Reason codes of x509_source_errors_total, the same strings x509-certificate-exporter
# uses, so existing alerts keyed on them keep working.
REASON_BAD_PEM = "bad_pem"
REASON_NO_CERTIFICATE = "no_certificate_found"
REASON_DECODE_FAILED = "decode_failed"
REASON_API_ERROR = "api_error"
REASON_READ_FAILED = "read_failed"
REASON_NOT_FOUND = "not_found"


class CertificateParseError(ValueError):
    """A certificate source held something that is not a usable certificate."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ParsedCertificate:
    """What the exporter keeps of one certificate: public facts only."""

    fingerprint: str  # SHA-256 of the DER, hex
    serial_number: str  # decimal, as Go's big.Int String() prints it
    subject: tuple[str, ...]  # values for NAME_FIELDS
    issuer: tuple[str, ...]
    not_before: float
    not_after: float
    # DER, for chain signature checks. The x509.Certificate object itself is not kept:
    # it caches its parsed subject and issuer Names (~5 KB per certificate), which is
    # most of the memory of a 10,000-Secret estate; reloading DER costs microseconds.
    # None when the store does no chain checks (no --trust-bundle): ~400 bytes less per
    # certificate.
    der: bytes | None

    def load(self) -> x509.Certificate:
        if self.der is None:
            raise ValueError("certificate parsed without its DER (no chain checks configured)")
        return x509.load_der_x509_certificate(self.der)


_FIELD_INDEX = {oid: index for index, oid in enumerate(_NAME_OIDS)}
_CN_INDEX = _NAME_OIDS.index(NameOID.COMMON_NAME)
_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}
_NAMES_LIMIT = 1024


def _name_values(name: x509.Name, intern: bool = False) -> tuple[str, ...]:
    """One pass over the name: first value of each field, but the last CN.

    Go's pkix.Name keeps the last CommonName it meets; matching it keeps our series
    identical to x509-certificate-exporter's.
    """
    values = ["", "", "", "", "", ""]
    for attribute in name:
        index = _FIELD_INDEX.get(attribute.oid)
        if index is not None and (not values[index] or index == _CN_INDEX):
            values[index] = str(attribute.value)
    result = tuple(values)
    if intern and len(_NAMES) < _NAMES_LIMIT:
        # Thousands of leaves share one issuer: keep one copy of its name.
        return _NAMES.setdefault(result, result)
    return result


def describe(certificate: x509.Certificate, der: bytes | None = None, keep_der: bool = True) -> ParsedCertificate:
    """The public facts of one certificate; `der` (its DER, when the caller has it) saves
    re-encoding it, and its names are then read straight from the DER."""
    if der is None:
        der = certificate.public_bytes(_DER)
    names = _der_names(der)
    if names is None:
        subject = _name_values(certificate.subject)
        issuer = _name_values(certificate.issuer, intern=True)
    else:
        subject, issuer = names
    return ParsedCertificate(
        # SHA-256 of the DER, as certificate.fingerprint() computes it, without the cost
        # of an OpenSSL hash context per certificate.
        fingerprint=hashlib.sha256(der).hexdigest(),
        serial_number=str(certificate.serial_number),
        subject=subject,
        issuer=issuer,
        not_before=certificate.not_valid_before_utc.timestamp(),
        not_after=certificate.not_valid_after_utc.timestamp(),
        der=der if keep_der else None,
    )


# -- subject and issuer straight from the DER ---------------------------------------------
#
# cryptography builds a Name, RDN and NameAttribute object (each validated in Python) per
# attribute when .subject or .issuer is read: ~20 us per certificate, two thirds of the
# cost of parsing one. The DER of a certificate that cryptography has already loaded is
# walked here instead (~3 us): tbsCertificate -> issuer, subject; one value per RDN, as
# UTF8String, PrintableString or IA5String. Anything else (multi-valued RDNs, other
# string types, odd encodings) returns None and takes cryptography's path, so the values
# are the same either way (tests/test_collector.py checks both paths agree).

# OID 2.5.4.n is encoded 55 04 n; index into NAME_FIELDS (C, ST, L, O, OU, CN).
_DER_NAME_INDEX = {b"\x55\x04\x06": 0, b"\x55\x04\x08": 1, b"\x55\x04\x07": 2, b"\x55\x04\x0a": 3, b"\x55\x04\x0b": 4, b"\x55\x04\x03": 5}
_DER_STRING_TAGS = frozenset({0x0C, 0x13, 0x16})  # UTF8String, PrintableString, IA5String
_DER_NAMES: dict[bytes, tuple[str, ...]] = {}


class _NotPlain(Exception):
    """The DER holds something the fast path leaves to cryptography."""


def _der_header(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the TLV at `pos`."""
    tag = der[pos]
    length = der[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4:
            raise _NotPlain()
        length = int.from_bytes(der[pos : pos + count], "big")
        pos += count
    return tag, pos, pos + length


def _der_name(der: bytes, start: int, end: int) -> tuple[str, ...]:
    values = ["", "", "", "", "", ""]
    pos = start
    while pos < end:
        tag, set_start, set_end = _der_header(der, pos)  # RDN: SET OF AttributeTypeAndValue
        pos = set_end
        if tag != 0x31:
            raise _NotPlain()
        tag, atv_start, atv_end = _der_header(der, set_start)
        if tag != 0x30 or atv_end != set_end:  # not exactly one attribute in this RDN
            raise _NotPlain()
        tag, oid_start, oid_end = _der_header(der, atv_start)
        if tag != 0x06:
            raise _NotPlain()
        index = _DER_NAME_INDEX.get(der[oid_start:oid_end])
        if index is None:
            continue
        tag, value_start, value_end = _der_header(der, oid_end)
        if tag not in _DER_STRING_TAGS or value_end != atv_end:
            raise _NotPlain()
        if not values[index] or index == _CN_INDEX:
            values[index] = der[value_start:value_end].decode("utf-8")
    return tuple(values)


def _der_names(der: bytes) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(subject, issuer) values of a DER certificate, or None for cryptography's path."""
    try:
        _tag, pos, _end = _der_header(der, 0)  # Certificate
        _tag, pos, _end = _der_header(der, pos)  # tbsCertificate
        tag, _start, end = _der_header(der, pos)
        if tag == 0xA0:  # [0] version
            tag, _start, end = _der_header(der, end)
        _tag, _start, end = _der_header(der, end)  # serialNumber -> signature
        tag, issuer_start, issuer_end = _der_header(der, end)
        if tag != 0x30:
            return None
        _tag, _start, end = _der_header(der, issuer_end)  # validity
        tag, subject_start, subject_end = _der_header(der, end)
        if tag != 0x30:
            return None
        issuer_der = der[issuer_start:issuer_end]
        issuer = _DER_NAMES.get(issuer_der)
        if issuer is None:
            issuer = _der_name(der, issuer_start, issuer_end)
            if len(_DER_NAMES) < _NAMES_LIMIT:
                # Thousands of leaves share one issuer: parse and keep its name once.
                issuer = _DER_NAMES.setdefault(issuer_der, _NAMES.setdefault(issuer, issuer))
        subject = _der_name(der, subject_start, subject_end)
        # O, OU, C, ST, L repeat across an estate's leaves: one copy each (not the CN).
        subject = tuple(value if index == _CN_INDEX else sys.intern(value) for index, value in enumerate(subject))
        return subject, issuer
    except (_NotPlain, IndexError, UnicodeDecodeError):
        return None


@dataclass(frozen=True, slots=True)
class ParsedCRL:
    """What the exporter keeps of one CRL: issuer, number and dates (public facts only)."""

    fingerprint: str  # SHA-256 of the DER, hex
    issuer: tuple[str, ...]  # values for NAME_FIELDS
    crl_number: str  # decimal, "" when the CRL has no cRLNumber extension
    this_update: float
    next_update: float | None  # None: no nextUpdate (never stale, RFC 5280 makes it mandatory)
    revoked_count: int


def parse_pem_crls(pem: bytes) -> tuple[ParsedCRL, ...]:
    """Every X509 CRL block of `pem` (none is fine: most values hold certificates only).

    A CRL block that does not decode raises CertificateParseError(bad_pem).
    """
    if b"-----BEGIN X509 CRL-----" not in pem:
        return ()
    parsed = []
    for block in _CRL_BLOCK.findall(pem):
        try:
            crl = x509.load_pem_x509_crl(block)
            try:
                number = str(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
            except x509.ExtensionNotFound:
                number = ""
            next_update = crl.next_update_utc
            parsed.append(
                ParsedCRL(
                    fingerprint=hashlib.sha256(crl.public_bytes(_DER)).hexdigest(),
                    issuer=_name_values(crl.issuer, intern=True),
                    crl_number=number,
                    this_update=crl.last_update_utc.timestamp(),
                    next_update=next_update.timestamp() if next_update is not None else None,
                    revoked_count=len(crl),
                )
            )
        except ValueError as error:
            raise CertificateParseError(REASON_BAD_PEM, f"CRL does not parse: {error}") from None
    return tuple(parsed)


def _fast_bundle(pem: bytes, begins: int, keep_der: bool) -> tuple[ParsedCertificate, ...] | None:
    """Certificate-only PEM: each block's base64 decoded here and loaded as DER.

    Saves cryptography's PEM pass and re-encoding the DER for the fingerprint. Returns
    None on anything unusual (other blocks, a block that does not decode or load), so
    that the general path decides, with its error reasons.
    """
    blocks = _CERT_BLOCK.findall(pem)
    if len(blocks) != begins:
        return None
    parsed = []
    for block in blocks:
        try:
            # Strict base64 once the line breaks are gone: a block with anything else
            # in it takes the general path, which refuses it as cryptography does.
            der = binascii.a2b_base64(block[27:-25].replace(b"\n", b"").replace(b"\r", b""), strict_mode=True)
            certificate = x509.load_der_x509_certificate(der)
        except (binascii.Error, ValueError):
            return None
        parsed.append(describe(certificate, der, keep_der))
    return tuple(parsed)


def parse_pem_bundle(pem: bytes, keep_der: bool = True) -> tuple[ParsedCertificate, ...]:
    """Parse every CERTIFICATE block of `pem`; raise CertificateParseError otherwise.

    A value with no certificate block at all is `no_certificate_found`; a block that does
    not decode is `bad_pem` (the whole value counts as broken, as a TLS library would
    refuse it too). `keep_der=False` leaves the DER out of the result (no chain checks).
    """
    begins = pem.count(b"-----BEGIN")
    if begins and begins == pem.count(b"-----BEGIN CERTIFICATE-----"):
        # Only certificate blocks (the usual case): no need to cut anything out.
        fast = _fast_bundle(pem, begins, keep_der)
        if fast is not None:
            return fast
        certificate_pem = pem
    else:
        blocks = _CERT_BLOCK.findall(pem)
        if not blocks:
            if begins:
                raise CertificateParseError(REASON_NO_CERTIFICATE, "no CERTIFICATE block in PEM data")
            raise CertificateParseError(REASON_BAD_PEM, "data is not PEM")
        certificate_pem = b"\n".join(blocks)
    try:
        certificates = x509.load_pem_x509_certificates(certificate_pem)
    except ValueError as error:
        raise CertificateParseError(REASON_BAD_PEM, f"certificate does not parse: {error}") from None
    return tuple(describe(certificate, keep_der=keep_der) for certificate in certificates)


_PARSE_CACHE: dict[tuple[bytes, bool], tuple[ParsedCertificate, ...]] = {}
_PARSE_CACHE_LIMIT = 4096


def parse_pem_bundle_cached(pem: bytes, keep_der: bool = True) -> tuple[ParsedCertificate, ...]:
    """parse_pem_bundle with a small content-addressed cache.

    The same trust bundle (istio-ca-root-cert, kube-root-ca.crt) sits in every namespace;
    parsing it once instead of once per namespace keeps a relist cheap.
    """
    digest = (hashlib.sha256(pem).digest(), keep_der)
    cached = _PARSE_CACHE.get(digest)
    if cached is not None:
        return cached
    parsed = parse_pem_bundle(pem, keep_der)
    if len(_PARSE_CACHE) >= _PARSE_CACHE_LIMIT:
        _PARSE_CACHE.clear()
    _PARSE_CACHE[digest] = parsed
    return parsed

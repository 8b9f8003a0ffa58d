# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificates: loading PEM, their PEM encoding and summary, and the signing CA (Issuer)
validated once for any number of certificates it signs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_fingerprints import sha256_fingerprint
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_keys import key_matches_certificate, key_type_of, load_private_key, signature_hash_for
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_names import common_name_of, permitted_domains, san_values
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import (
    InvalidSignature,
    PkiError,
    UnsupportedAlgorithm,
    extension_value,
    hashes,
    serialization,
    x509,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_time import CLOCK_SKEW_ALLOWANCE, aware, iso8601


def load_certificates(pem, field):
    """All certificates in a PEM blob, in order; PkiError when there are none."""
    if isinstance(pem, str):
        pem = pem.encode("utf-8")
    if not pem or b"-----BEGIN CERTIFICATE-----" not in pem:
        raise PkiError(field, "%s does not contain a PEM certificate ('-----BEGIN CERTIFICATE-----'); give a PEM-encoded X.509 certificate." % field)
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise PkiError(field, "%s holds a PEM certificate block that cannot be parsed; replace it with a valid PEM-encoded X.509 certificate." % field)
    if not certs:
        raise PkiError(field, "%s does not contain a PEM certificate; give a PEM-encoded X.509 certificate." % field)
    return certs


def load_certificate(pem, field):
    """Exactly the first certificate of a PEM blob."""
    return load_certificates(pem, field)[0]


def certificate_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def certificates_pem(certs):
    return b"".join(certificate_pem(cert) for cert in certs)


def basic_constraints(cert):
    """(is_ca, path_length) - (False, None) when the extension is absent."""
    value = extension_value(cert, x509.BasicConstraints)
    return (value.ca, value.path_length) if value is not None else (False, None)


def certificate_summary(cert):
    """Everything a user wants to see about a certificate, as plain data (no PEM)."""
    dns_names, ip_addresses, uris, emails = san_values(cert)
    is_ca, path_length = basic_constraints(cert)
    try:
        key_type = key_type_of(cert.public_key())
    except (PkiError, UnsupportedAlgorithm):
        key_type = "unsupported"
    return {
        "subject": cert.subject.rfc4514_string(),
        "common_name": common_name_of(cert.subject),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": "%X" % cert.serial_number,
        "not_before": iso8601(cert.not_valid_before_utc),
        "not_after": iso8601(cert.not_valid_after_utc),
        "sha256_fingerprint": sha256_fingerprint(cert),
        "dns_names": dns_names,
        "ip_addresses": ip_addresses,
        "uris": uris,
        "emails": emails,
        "is_ca": is_ca,
        "path_length": path_length,
        "key_type": key_type,
    }


def signed_by(child, parent):
    try:
        child.verify_directly_issued_by(parent)
        return True
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False


class Issuer(object):
    """A validated signing CA, with everything shared by the certs it signs computed once."""

    def __init__(self, cert, key, chain=None):
        self.cert = cert
        self.key = key
        # chain: the CA's own issuers (intermediates, then possibly the root), not the CA.
        self.chain = list(chain or [])
        self.subject = cert.subject
        self.not_after = cert.not_valid_after_utc
        self.hash_algorithm = signature_hash_for(key)
        self.is_ca, self.path_length = basic_constraints(cert)
        ski = extension_value(cert, x509.SubjectKeyIdentifier)
        if ski is not None:
            self.authority_key_identifier = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        else:
            self.authority_key_identifier = x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())
        self.key_identifier = self.authority_key_identifier.key_identifier
        self.permitted_dns_domains, self.permitted_uri_domains = permitted_domains([cert] + self.chain)

    def chain_pem(self):
        """The CA followed by its issuers: what a leaf's chain file holds after the leaf."""
        return certificates_pem([self.cert] + self.chain)


def check_issuer(cert, key, cert_field, key_field, now=None, for_ca=False, ca_field=None):
    """Refuse a signing CA that cannot issue: not a CA, expired, wrong key, pathlen 0 for a sub-CA."""
    now = aware(now)
    is_ca, path_length = basic_constraints(cert)
    if not is_ca:
        raise PkiError(cert_field, "%s is not a CA certificate (basicConstraints CA:TRUE missing); point it at a CA certificate." % cert_field)
    usage = extension_value(cert, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        raise PkiError(cert_field, "%s may not sign certificates (keyUsage keyCertSign missing); point it at a signing CA." % cert_field)
    if cert.not_valid_after_utc <= now:
        raise PkiError(cert_field, "%s expired on %s; renew that CA first." % (cert_field, iso8601(cert.not_valid_after_utc)))
    if cert.not_valid_before_utc > now + CLOCK_SKEW_ALLOWANCE:
        raise PkiError(cert_field, "%s is not valid before %s; check the clock or the CA." % (cert_field, iso8601(cert.not_valid_before_utc)))
    if not key_matches_certificate(key, cert):
        raise PkiError(key_field, "%s does not match the certificate in %s; give the key of that CA." % (key_field, cert_field))
    if for_ca and path_length == 0:
        raise PkiError(
            ca_field or cert_field,
            "%s has pathlen 0, so it cannot sign an intermediate CA; sign the intermediate with a CA whose path_length allows it." % cert_field,
        )


def load_issuer(cert_pem, key_pem, cert_field, key_field, passphrase=None, chain_pem=None, chain_field=None, now=None, passphrase_field=None):
    """Load and validate a signing CA once, for any number of leaves."""
    cert = load_certificate(cert_pem, cert_field)
    key = load_private_key(key_pem, key_field, passphrase, passphrase_field=passphrase_field)
    check_issuer(cert, key, cert_field, key_field, now)
    chain = []
    if chain_pem:
        fingerprint = cert.fingerprint(hashes.SHA256())
        chain = [c for c in load_certificates(chain_pem, chain_field) if c.fingerprint(hashes.SHA256()) != fingerprint]
        _check_chain_links([cert] + chain, chain_field)
    return Issuer(cert, key, chain)


def _check_chain_links(ordered, field):
    for child, parent in zip(ordered, ordered[1:]):
        if child.issuer != parent.subject or not signed_by(child, parent):
            raise PkiError(
                field,
                "%s is not the chain of its CA: %s is not issued by %s; list the issuers "
                "in order, from the CA's own issuer up to the root." % (field, child.subject.rfc4514_string(), parent.subject.rfc4514_string()),
            )

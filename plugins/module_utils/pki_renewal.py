# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Renewal decisions: whether an existing leaf or CA certificate is still what was asked
for, and when it is due for renewal."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_certs import basic_constraints, signed_by
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_keys import key_matches_certificate, key_type_of, same_public_key
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_names import build_name, permitted_domains
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import PkiError, extension_value, x509
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_time import aware, parse_renew_before, renewal_window

# Reasons a leaf is (re)issued, in the order they are checked: the first one that
# applies is reported, so the most fundamental problem wins.
REISSUE_REASONS = (
    "missing",
    "unreadable",
    "key_mismatch",
    "issuer_changed",
    "expired",
    "renewal_due",
    "subject_changed",
    "sans_changed",
    "usage_changed",
    "key_type_changed",
)


def renewal_time(cert, renew_before=None):
    """When ``cert`` becomes due for renewal.

    ``renew_before`` is what parse_renew_before returns (or the raw option text). The
    default renews when a third of the lifetime is left, as cert-manager does.
    """
    if not isinstance(renew_before, (tuple, type(None))):
        renew_before = parse_renew_before(renew_before)
    not_after = cert.not_valid_after_utc
    return not_after - renewal_window(not_after - cert.not_valid_before_utc, renew_before)


def needs_renewal(cert, renew_before=None, now=None):
    """True when ``cert`` is inside its renewal window (or expired)."""
    return aware(now) >= renewal_time(cert, renew_before)


def issued_by(cert, issuer):
    """Cheap 'was this signed by this CA' check: issuer name and key identifier match.

    Comparing the AKI with the CA's SKI catches a re-keyed CA with the same name
    without an expensive signature verification per certificate.
    """
    if cert.issuer != issuer.subject:
        return False
    aki = extension_value(cert, x509.AuthorityKeyIdentifier)
    return aki is None or aki.key_identifier is None or aki.key_identifier == issuer.key_identifier


def reissue_reason(spec, issuer, cert=None, key=None, cert_error=None, key_error=None, renew_before=None, now=None, cert_missing=False, key_missing=False):
    """The first reason in REISSUE_REASONS that applies, or None when nothing needs doing.

    ``cert``/``key`` are the parsed existing files (None when missing or unreadable,
    with ``*_missing`` or ``*_error`` saying which).
    """
    if cert_missing or key_missing:
        return "missing"
    if cert_error is not None or key_error is not None or cert is None or key is None:
        return "unreadable"
    if not same_public_key(key.public_key(), cert.public_key()):
        return "key_mismatch"
    if not issued_by(cert, issuer):
        return "issuer_changed"
    now = aware(now)
    if cert.not_valid_after_utc <= now:
        return "expired"
    if needs_renewal(cert, renew_before, now):
        return "renewal_due"
    if cert.subject != spec.subject:
        return "subject_changed"
    if set(extension_value(cert, x509.SubjectAlternativeName) or []) != set(spec.general_names):
        return "sans_changed"
    if frozenset(extension_value(cert, x509.ExtendedKeyUsage) or []) != spec.extended_key_usages():
        return "usage_changed"
    try:
        if key_type_of(key) != spec.key_type:
            return "key_type_changed"
    except PkiError:
        return "key_type_changed"
    return None


def permitted_domains_of(cert):
    """(permitted DNS domains, permitted URI domains) of one certificate's name constraints."""
    dns_sets, uri_sets = permitted_domains([cert])
    return (dns_sets[0] if dns_sets else []), (uri_sets[0] if uri_sets else [])


def ca_reissue_reason(
    cert,
    key,
    common_name,
    key_type,
    organization=None,
    path_length=None,
    permitted_dns_domains=None,
    permitted_uri_domains=None,
    issuer=None,
    renew_before=None,
    now=None,
):
    """None when the CA certificate ``cert`` (with ``key``) is what was asked for, else why not.

    'created' (no certificate), 'drift' (key, issuer, subject, pathlen, name
    constraints or key type differ) or 'renewed' (expired or due for renewal).
    Drift wins over renewal because it says more about what happened.
    """
    if cert is None:
        return "created"
    if key is None or not key_matches_certificate(key, cert):
        return "drift"
    try:
        if key_type_of(key) != key_type:
            return "drift"
    except PkiError:
        return "drift"
    if issuer is None:
        if cert.issuer != cert.subject or not signed_by(cert, cert):
            return "drift"
    elif not issued_by(cert, issuer) or not signed_by(cert, issuer.cert):
        return "drift"
    if cert.subject != build_name(common_name, organization):
        return "drift"
    if basic_constraints(cert) != (True, path_length):
        return "drift"
    dns, uri = permitted_domains_of(cert)
    wanted_dns = [d.lower() for d in (permitted_dns_domains or [])]
    wanted_uri = [d.lower() for d in (permitted_uri_domains or [])]
    if sorted(dns) != sorted(wanted_dns) or sorted(uri) != sorted(wanted_uri):
        return "drift"
    if needs_renewal(cert, renew_before, now):
        return "renewed"
    return None

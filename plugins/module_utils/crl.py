# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificate revocation lists signed by our CAs: parse, decide, build, summarise.

Pure helpers for mtls_crl, mtls_cert_info, mtls_secret and the playbooks: no
AnsibleModule here (crl_entries reads the revoked option of mtls_crl). The CA is loaded with pki_certs.load_issuer (same checks, passphrase
handling and messages as for issuing certificates); every failure is a PkiError
whose message is one sentence naming the option and the fix.

Decisions worth knowing:
  * The CRL number only ever grows: a new CRL takes the number of the CRL it replaces
    plus one, even when that CRL was signed by another CA (after a rotation), because
    relying parties that cached the old one compare numbers (RFC 5280 5.2.3).
  * thisUpdate starts CLOCK_SKEW_ALLOWANCE in the past, as certificates do, so a peer
    whose clock is a little behind does not see a CRL that is "not yet valid".
  * A revocation keeps the date and reason it was first listed with unless the caller
    gives others, so re-running the same request never moves a date (idempotence).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import re

from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_certs import load_issuer
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import (
    InvalidSignature,
    PkiError,
    UnsupportedAlgorithm,
    extension_value,
    serialization,
    x509,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_time import CLOCK_SKEW_ALLOWANCE, aware, iso8601, renewal_window, x509_time

DEFAULT_VALID_FOR = "7d"

# Option value -> RFC 5280 reason. 'remove_from_crl' is left out on purpose: it is only
# meaningful in delta CRLs, which we do not issue.
REASON_NAMES = (
    "unspecified",
    "key_compromise",
    "ca_compromise",
    "affiliation_changed",
    "superseded",
    "cessation_of_operation",
    "certificate_hold",
    "privilege_withdrawn",
    "aa_compromise",
)

# Why a CRL is (re)written, in the order they are checked.
REGENERATE_REASONS = ("created", "issuer_changed", "revoked_changed", "expired", "renewal_due", "validity_changed")

# A CRL is compared at one-second precision: that is what its UTCTime/GeneralizedTime holds.
_ONE_SECOND = datetime.timedelta(seconds=1)


def _reason_flags():
    return {
        "unspecified": x509.ReasonFlags.unspecified,
        "key_compromise": x509.ReasonFlags.key_compromise,
        "ca_compromise": x509.ReasonFlags.ca_compromise,
        "affiliation_changed": x509.ReasonFlags.affiliation_changed,
        "superseded": x509.ReasonFlags.superseded,
        "cessation_of_operation": x509.ReasonFlags.cessation_of_operation,
        "certificate_hold": x509.ReasonFlags.certificate_hold,
        "privilege_withdrawn": x509.ReasonFlags.privilege_withdrawn,
        "aa_compromise": x509.ReasonFlags.aa_compromise,
    }


def _reason_name(flag):
    for name, value in _reason_flags().items():
        if value == flag:
            return name
    return "unspecified"


# --------------------------------------------------------------------------- the signing CA


def check_crl_signer(issuer, cert_field="ca_cert_path"):
    """A CA whose keyUsage leaves out cRLSign may not sign CRLs (pki_certs.check_issuer did the rest)."""
    usage = extension_value(issuer.cert, x509.KeyUsage)
    if usage is not None and not usage.crl_sign:
        raise PkiError(cert_field, "%s may not sign CRLs (keyUsage cRLSign missing); point it at a CA issued with cRLSign (mtls_ca sets it)." % cert_field)


def load_signer(cert_pem, key_pem, passphrase, now=None):
    """The CA that signs the CRL, validated: a CA, not expired, key matching, cRLSign."""
    issuer = load_issuer(cert_pem, key_pem, "ca_cert_path", "ca_key_path", passphrase=passphrase, now=now, passphrase_field="ca_key_passphrase")
    check_crl_signer(issuer)
    return issuer


# --------------------------------------------------------------------------- CRLs


def load_crl(data, field):
    """A CRL from PEM (or DER) bytes; PkiError naming ``field`` otherwise."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not data:
        raise PkiError(field, "%s is empty; give a PEM certificate revocation list." % field)
    try:
        if b"-----BEGIN X509 CRL-----" in data:
            return x509.load_pem_x509_crl(data)
        if b"-----BEGIN" in data:
            raise ValueError("not a CRL block")
        return x509.load_der_x509_crl(data)
    except ValueError:
        raise PkiError(field, "%s is not a certificate revocation list ('-----BEGIN X509 CRL-----'); give a PEM CRL." % field)


_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.S)


def load_crls(data, field):
    """Every CRL of a PEM blob, in order (an edge bundle holds one per CA of the chain)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    blocks = _PEM_CRL.findall(data or b"")
    if not blocks:
        return [load_crl(data, field)]
    return [load_crl(block, "%s (CRL %d)" % (field, index + 1) if len(blocks) > 1 else field) for index, block in enumerate(blocks)]


def crl_number(crl):
    value = extension_value(crl, x509.CRLNumber)
    return value.crl_number if value is not None else None


def signed_by(crl, ca_cert):
    """Whether ``crl`` carries ``ca_cert``'s name and a valid signature of its key."""
    if crl.issuer != ca_cert.subject:
        return False
    try:
        return crl.is_signature_valid(ca_cert.public_key())
    except (TypeError, ValueError, InvalidSignature, UnsupportedAlgorithm):
        return False


def entries_of(crl):
    """{serial: (reason name, revocation date)} of a CRL."""
    result = {}
    for revoked in crl:
        result.update(_entry(revoked))
    return result


def next_update_of(crl):
    return crl.next_update_utc


def desired_entries(wanted, existing, crl_mode, now):
    """{serial: (reason, date)} the new CRL should list.

    ``existing`` is entries_of() the current CRL of this CA ({} when there is none).
    With crl_mode 'update' the existing entries stay and ``wanted`` is added; with
    'generate' the CRL lists exactly ``wanted``.
    """
    now = x509_time(now)
    result = dict(existing) if crl_mode == "update" else {}
    for revocation in wanted:
        old_reason, old_date = existing.get(revocation.serial, (None, None))
        reason = revocation.reason or old_reason or "unspecified"
        date = revocation.revocation_date or old_date or now
        result[revocation.serial] = (reason, date)
    return result


def regenerate_reason(existing, existing_signed, desired, valid_for, renew_before, now, ca_not_after=None):
    """The first REGENERATE_REASONS entry that applies, or None when the CRL stays.

    ``existing`` is the current CRL (None when missing); ``existing_signed`` whether the
    signing CA signed it; ``renew_before`` what pki_time.parse_renew_before returned;
    ``ca_not_after`` the CA's expiry (a nextUpdate clamped to it is not a changed validity).
    """
    if existing is None:
        return "created"
    if not existing_signed:
        return "issuer_changed"
    if entries_of(existing) != desired:
        return "revoked_changed"
    now = aware(now)
    next_update = next_update_of(existing)
    if next_update is None or next_update <= now:
        return "expired"
    # Re-signed renew_before (or a third of valid_for) before nextUpdate.
    if now >= next_update - renewal_window(valid_for, renew_before):
        return "renewal_due"
    lifetime = next_update - existing.last_update_utc
    clamped = ca_not_after is not None and next_update >= x509_time(ca_not_after) - _ONE_SECOND
    # The existing thisUpdate was backdated by the skew allowance when we made it.
    if not clamped and abs(lifetime - (valid_for + CLOCK_SKEW_ALLOWANCE)) > _ONE_SECOND and abs(lifetime - valid_for) > _ONE_SECOND:
        return "validity_changed"
    return None


def plan_dates(issuer, valid_for, now):
    """(this_update, next_update) of a CRL made now; nextUpdate never beyond the CA's expiry.

    Clamping rather than refusing: a CA about to expire must still be able to revoke.
    """
    now = x509_time(now)
    this_update = now - CLOCK_SKEW_ALLOWANCE
    next_update = min(now + valid_for, x509_time(issuer.not_after))
    return this_update, next_update


def build_crl(issuer, desired, number, this_update, next_update):
    """Sign a CRL listing ``desired`` ({serial: (reason, date)}) with CRL number ``number``."""
    flags = _reason_flags()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(issuer.authority_key_identifier, critical=False)
    )
    for serial in sorted(desired):
        reason, date = desired[serial]
        revoked = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(date)
        # RFC 5280 5.3.1: the reasonCode 'unspecified' SHOULD be absent.
        if reason != "unspecified":
            revoked = revoked.add_extension(x509.CRLReason(flags[reason]), critical=False)
        builder = builder.add_revoked_certificate(revoked.build())
    return builder.sign(issuer.key, issuer.hash_algorithm)


def crl_pem(crl):
    return crl.public_bytes(serialization.Encoding.PEM)


def crl_fingerprint(crl):
    """'AB:CD:...' SHA-256 of the CRL DER, like certificate fingerprints."""
    return ":".join("%02X" % b for b in hashlib.sha256(crl.public_bytes(serialization.Encoding.DER)).digest())


def serial_hex(serial):
    return "%X" % serial


def describe_entries(desired):
    """[{serial, reason, revocation_date}] sorted by serial: what diffs and returns show."""
    return [{"serial": serial_hex(serial), "reason": desired[serial][0], "revocation_date": iso8601(desired[serial][1])} for serial in sorted(desired)]


def crl_state(number, this_update, next_update, issuer_name, desired):
    """What the diff shows of a CRL: numbers, dates, serials - public data only."""
    return {
        "issuer": issuer_name,
        "crl_number": number,
        "this_update": iso8601(this_update) if this_update else None,
        "next_update": iso8601(next_update) if next_update else None,
        "revoked": describe_entries(desired),
    }


def summary(crl, now=None, issuer_certs=None, refresh_before=None):
    """Everything a user wants to see about a CRL, as plain data.

    ``issuer_certs``: candidate CA certificates; ``signature_valid`` says whether one of
    them signed it (None when none were given). ``stale`` means nextUpdate has passed:
    relying parties that check it (nginx, OpenSSL) refuse every certificate of that CA.
    """
    now = aware(now)
    next_update = next_update_of(crl)
    seconds_left = int((next_update - now).total_seconds()) if next_update else None
    signature_valid = None
    if issuer_certs:
        signature_valid = any(signed_by(crl, cert) for cert in issuer_certs)
    refresh_due = None
    if next_update is not None:
        lifetime = next_update - crl.last_update_utc
        window = renewal_window(lifetime, refresh_before)
        refresh_due = now >= next_update - window
    entries = entries_of(crl)
    return {
        "issuer": crl.issuer.rfc4514_string(),
        "crl_number": crl_number(crl),
        "this_update": iso8601(crl.last_update_utc),
        "next_update": iso8601(next_update) if next_update else None,
        "seconds_left": seconds_left,
        "stale": next_update is None or next_update <= now,
        "refresh_due": refresh_due,
        "signature_valid": signature_valid,
        "revoked": [serial_hex(serial) for serial in sorted(entries)],
        "revoked_entries": describe_entries(entries),
        "sha256_fingerprint": crl_fingerprint(crl),
    }


def revocation_of(crl, cert):
    """The CRL entry revoking ``cert`` as {serial, reason, revocation_date}, or None.

    Only a CRL of the certificate's own issuer can revoke it: serials are unique per CA.
    """
    if crl.issuer != cert.issuer:
        return None
    revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if revoked is None:
        return None
    return describe_entries(_entry(revoked))[0]


def _entry(revoked):
    value = extension_value(revoked, x509.CRLReason)
    reason = _reason_name(value.reason) if value is not None else "unspecified"
    return {revoked.serial_number: (reason, x509_time(revoked.revocation_date_utc))}

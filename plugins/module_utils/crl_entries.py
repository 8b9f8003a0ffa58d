# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The revoked option of mtls_crl: serials, reasons and dates, checked into Revocation entries.

Every failure is a PkiError naming the entry (``revoked[2].serial``) and the fix.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from ansible_collections.zerotrust.mtls.plugins.module_utils.crl import REASON_NAMES
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_certs import load_certificate, signed_by
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_renewal import issued_by
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import PkiError
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_time import CLOCK_SKEW_ALLOWANCE, aware, iso8601, x509_time

_HEX_SERIAL = re.compile(r"^(?:0x)?[0-9a-f]+$")


def parse_serial(value, field):
    """An integer serial from an int (its value) or a hex string ('4F:1A...', '0x4f1a', '4F1A')."""
    if isinstance(value, bool):
        raise PkiError(field, "%s must be a certificate serial number (hex string such as '4F:1A:9C' or an integer), got %r." % (field, value))
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        compact = value.strip().lower().replace(":", "").replace(" ", "")
        if not compact or not _HEX_SERIAL.match(compact):
            raise PkiError(field, "%s must be a certificate serial number in hex (as mtls_cert returns it, colons allowed), got %r." % (field, value))
        number = int(compact[2:] if compact.startswith("0x") else compact, 16)
    else:
        raise PkiError(field, "%s must be a certificate serial number (hex string or integer), got %r." % (field, value))
    # RFC 5280 4.1.2.2: positive, at most 20 octets.
    if number <= 0 or number.bit_length() > 160:
        raise PkiError(
            field, "%s %r is not a valid serial number (it must be positive and at most 20 bytes); copy the serial from the certificate." % (field, value)
        )
    return number


def parse_reason(value, field):
    if value is None:
        return None
    normal = re.sub(r"(?<!^)(?=[A-Z])", "_", str(value)).lower().replace("-", "_") if isinstance(value, str) else value
    if normal not in REASON_NAMES:
        raise PkiError(field, "%s must be one of %s, got %r." % (field, ", ".join(REASON_NAMES), value))
    return normal


def parse_date(value, field, now):
    """An aware UTC datetime from ISO 8601 ('2026-11-22T15:00:00Z', '2026-11-22'); not in the future."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        when = value
    elif isinstance(value, datetime.date):
        when = datetime.datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            when = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise PkiError(field, "%s must be an ISO 8601 date or time such as '2026-11-22T15:00:00Z', got %r." % (field, value))
    else:
        raise PkiError(field, "%s must be an ISO 8601 date or time such as '2026-11-22T15:00:00Z', got %r." % (field, value))
    when = x509_time(when)
    if when > aware(now) + CLOCK_SKEW_ALLOWANCE:
        raise PkiError(field, "%s %s is in the future; give the time the certificate was (or is) revoked, or leave it out for now." % (field, iso8601(when)))
    return when


class Revocation(object):
    """One wanted CRL entry. reason/date None = keep what the CRL has, else the default."""

    __slots__ = ("serial", "reason", "revocation_date", "field")

    def __init__(self, serial, reason, revocation_date, field):
        self.serial = serial
        self.reason = reason
        self.revocation_date = revocation_date
        self.field = field


def check_issued(cert, issuer, field):
    """Refuse a certificate this CA did not sign (name, key identifier and signature)."""
    if not issued_by(cert, issuer) or not signed_by(cert, issuer.cert):
        raise PkiError(
            field,
            "%s (%s, issued by %s) was not issued by the CA in ca_cert_path (%s); revoke it in "
            "the CRL of the CA that issued it." % (field, cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), issuer.subject.rfc4514_string()),
        )


def parse_revoked(entries, issuer, now, read_cert):
    """Validated Revocation objects for the ``revoked`` option.

    ``read_cert(path, field)`` returns the PEM bytes of a cert_path entry. Duplicate
    serials (whether given directly or through cert_path) are refused.
    """
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise PkiError("revoked", "revoked must be a list of {serial | cert_path, reason, revocation_date}, got %r." % (type(entries).__name__,))
    wanted = []
    seen = {}
    for index, entry in enumerate(entries):
        prefix = "revoked[%d]" % index
        if not isinstance(entry, dict):
            raise PkiError(prefix, "%s must be a dictionary with serial or cert_path, got %r." % (prefix, entry))
        unknown = sorted(set(entry) - set(("serial", "cert_path", "reason", "revocation_date")))
        if unknown:
            raise PkiError(prefix, "%s has unknown keys (%s); use serial or cert_path, reason and revocation_date." % (prefix, ", ".join(unknown)))
        serial_value, cert_path = entry.get("serial"), entry.get("cert_path")
        if (serial_value is None) == (cert_path is None):
            raise PkiError(prefix, "%s needs exactly one of serial and cert_path; give one of them." % prefix)
        if cert_path is not None:
            field = prefix + ".cert_path"
            cert = load_certificate(read_cert(cert_path, field), field)
            check_issued(cert, issuer, field)
            serial = cert.serial_number
        else:
            field = prefix + ".serial"
            serial = parse_serial(serial_value, field)
        if serial in seen:
            raise PkiError(field, "%s revokes serial %X, which %s already lists; list each certificate once." % (field, serial, seen[serial]))
        seen[serial] = field
        wanted.append(
            Revocation(
                serial, parse_reason(entry.get("reason"), prefix + ".reason"), parse_date(entry.get("revocation_date"), prefix + ".revocation_date", now), field
            )
        )
    return wanted

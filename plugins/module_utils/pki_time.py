# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time in the PKI: now, ISO 8601 dates, and the duration options (valid_for, renew_before)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import PkiError

# Certificates start this far in the past so that peers whose clocks run a little
# behind ours do not reject a certificate that was issued a moment ago.
CLOCK_SKEW_ALLOWANCE = datetime.timedelta(minutes=5)

_DURATION_PART = re.compile(r"(\d+)([wdhms])")

_DURATION_WHOLE = re.compile(r"^(?:\d+[wdhms])+$")

_DURATION_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}

_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def aware(value):
    """Treat naive datetimes as UTC so callers may pass either kind."""
    if value is None:
        return utcnow()
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value


def iso8601(value):
    """'2026-11-22T15:00:00Z' - what every module returns for dates."""
    return aware(value).astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def x509_time(value):
    """``value`` in UTC to the whole second: what an X.509 time field (and so a CRL) holds."""
    return aware(value).astimezone(datetime.timezone.utc).replace(microsecond=0)


def parse_duration(text, field):
    """Parse '3650d', '8760h', '90m', '30s', '2w' or combinations like '1d12h'."""
    if isinstance(text, datetime.timedelta):
        duration = text
    else:
        if isinstance(text, bool) or not isinstance(text, (str, int)):
            raise PkiError(field, "%s must be a duration such as '30d' or '1d12h', got %r." % (field, text))
        compact = str(text).strip().replace(" ", "").lower()
        if compact.startswith("-"):
            raise PkiError(field, "%s must be a positive duration such as '30d', got %r." % (field, text))
        if not _DURATION_WHOLE.match(compact):
            raise PkiError(field, "%s must be a duration made of numbers with units w, d, h, m or s (for example '30d' or '1d12h'), got %r." % (field, text))
        seconds = sum(int(number) * _DURATION_UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(compact))
        duration = datetime.timedelta(seconds=seconds)
    if duration <= datetime.timedelta(0):
        raise PkiError(field, "%s must be longer than zero, got %r." % (field, text))
    return duration


def renewal_window(lifetime, renew_before):
    """How long before the end of ``lifetime`` renewal starts.

    ``renew_before`` is what parse_renew_before returns; by default a third of the
    lifetime, as cert-manager renews.
    """
    if renew_before is None:
        return lifetime / 3
    kind, value = renew_before
    if kind == "percent":
        return lifetime * value
    return value


def parse_renew_before(text, field="renew_before"):
    """Return ('percent', fraction) for 'NN%', ('absolute', timedelta) or None for the default."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, str):
        match = _PERCENT.match(text.strip())
        if match:
            percent = float(match.group(1))
            if not 0 < percent < 100:
                raise PkiError(field, "%s as a percentage must be between 0%% and 100%% (exclusive), got %r." % (field, text))
            return ("percent", percent / 100.0)
    return ("absolute", parse_duration(text, field))

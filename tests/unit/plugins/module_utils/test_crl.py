# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""crl.py: parsing of the revocation inputs, CRL decisions and summaries."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

import pytest

from ansible_collections.zerotrust.mtls.plugins.module_utils import crl as crl_utils
from ansible_collections.zerotrust.mtls.plugins.module_utils import crl_entries, pki

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
DAY = datetime.timedelta(days=1)


@pytest.fixture(scope="module")
def ca():
    key = pki.generate_private_key()
    return pki.Issuer(pki.build_ca(key, "CRL Unit Root", 3650 * DAY, now=NOW - DAY), key)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("4F:1A:9C", 0x4F1A9C),
        ("0x4f1a9c", 0x4F1A9C),
        ("4f1a9c", 0x4F1A9C),
        (" 4F 1A ", 0x4F1A),
        (1234, 1234),
    ],
)
def test_serials(value, expected):
    assert crl_entries.parse_serial(value, "serial") == expected


@pytest.mark.parametrize("value", ["", "xyz", True, 0, -3, "F" * 41, 1.5])
def test_bad_serials_name_the_field(value):
    with pytest.raises(pki.PkiError) as error:
        crl_entries.parse_serial(value, "revoked[2].serial")
    assert error.value.field == "revoked[2].serial" and str(error.value).startswith("revoked[2].serial ")


@pytest.mark.parametrize(
    "value, expected",
    [
        ("keyCompromise", "key_compromise"),
        ("key_compromise", "key_compromise"),
        ("CACompromise", None),
        ("superseded", "superseded"),
        (None, None),
    ],
)
def test_reasons(value, expected):
    if value is not None and expected is None:
        with pytest.raises(pki.PkiError):
            crl_entries.parse_reason(value, "reason")
    else:
        assert crl_entries.parse_reason(value, "reason") == expected


def test_dates():
    assert crl_entries.parse_date("2026-11-20", "d", NOW) == datetime.datetime(2026, 11, 20, tzinfo=UTC)
    assert crl_entries.parse_date("2026-11-20T10:00:00+02:00", "d", NOW) == datetime.datetime(2026, 11, 20, 8, tzinfo=UTC)
    # Within the clock skew allowance is not "the future".
    assert crl_entries.parse_date("2026-11-22T12:04:00Z", "d", NOW)
    with pytest.raises(pki.PkiError):
        crl_entries.parse_date("2026-11-23", "d", NOW)


def test_build_read_and_summarise(ca):
    desired = {7: ("key_compromise", NOW - DAY), 9: ("unspecified", NOW)}
    this_update, next_update = crl_utils.plan_dates(ca, 7 * DAY, NOW)
    crl = crl_utils.build_crl(ca, desired, 5, this_update, next_update)
    assert crl_utils.entries_of(crl) == desired
    assert crl_utils.crl_number(crl) == 5 and crl_utils.signed_by(crl, ca.cert)
    both = crl_utils.load_crls(crl_utils.crl_pem(crl) * 2, "crl_path")
    assert len(both) == 2
    fresh = crl_utils.summary(crl, NOW, issuer_certs=[ca.cert])
    assert fresh["stale"] is False and fresh["refresh_due"] is False and fresh["signature_valid"] is True
    assert fresh["revoked"] == ["7", "9"] and fresh["this_update"] == "2026-11-22T11:55:00Z"
    later = crl_utils.summary(crl, NOW + 6 * DAY)
    assert later["refresh_due"] is True and later["stale"] is False and later["signature_valid"] is None
    assert crl_utils.summary(crl, NOW + 8 * DAY)["stale"] is True


def test_regenerate_reasons(ca):
    desired = {7: ("key_compromise", NOW - DAY)}
    this_update, next_update = crl_utils.plan_dates(ca, 7 * DAY, NOW)
    crl = crl_utils.build_crl(ca, desired, 1, this_update, next_update)
    decide = crl_utils.regenerate_reason
    assert decide(None, False, desired, 7 * DAY, None, NOW) == "created"
    assert decide(crl, False, desired, 7 * DAY, None, NOW) == "issuer_changed"
    assert decide(crl, True, {}, 7 * DAY, None, NOW) == "revoked_changed"
    assert decide(crl, True, desired, 7 * DAY, None, NOW + 8 * DAY) == "expired"
    assert decide(crl, True, desired, 7 * DAY, None, NOW + 5 * DAY) == "renewal_due"
    assert decide(crl, True, desired, 7 * DAY, ("absolute", DAY), NOW + 5 * DAY) is None
    assert decide(crl, True, desired, 3 * DAY, None, NOW + DAY / 2) == "validity_changed"
    assert decide(crl, True, desired, 7 * DAY, None, NOW) is None


def test_desired_entries_keep_dates_and_reasons():
    existing = {7: ("key_compromise", NOW - 3 * DAY)}
    wanted = [crl_entries.Revocation(7, None, None, "r"), crl_entries.Revocation(8, None, None, "r")]
    assert crl_utils.desired_entries(wanted, existing, "generate", NOW) == {7: ("key_compromise", NOW - 3 * DAY), 8: ("unspecified", NOW)}
    assert crl_utils.desired_entries([], existing, "update", NOW) == existing
    assert crl_utils.desired_entries([], existing, "generate", NOW) == {}


def test_revocation_of_needs_the_certificates_issuer(ca):
    leaf = pki.build_leaf(ca, pki.LeafSpec("leaf"), pki.generate_private_key(), now=NOW)
    other_key = pki.generate_private_key()
    other = pki.Issuer(pki.build_ca(other_key, "Other", 100 * DAY, now=NOW - DAY), other_key)
    entries = {leaf.serial_number: ("superseded", NOW)}
    ours = crl_utils.build_crl(ca, entries, 1, NOW - DAY, NOW + DAY)
    theirs = crl_utils.build_crl(other, entries, 1, NOW - DAY, NOW + DAY)
    assert crl_utils.revocation_of(ours, leaf)["reason"] == "superseded"
    # The same serial in another CA's CRL says nothing about this certificate.
    assert crl_utils.revocation_of(theirs, leaf) is None

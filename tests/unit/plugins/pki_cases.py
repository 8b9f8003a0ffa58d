# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificates the unit tests of the PKI and Kubernetes modules share: a root CA with an
intermediate below it, and self-signed certificates built with cryptography alone."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from ansible_collections.zerotrust.mtls.plugins.module_utils import pki

DAY = datetime.timedelta(days=1)


def ca_hierarchy(root_name, intermediate_name):
    """(root, intermediate) Issuers: a ten-year root with path length 1, and a one-year
    intermediate it signed."""
    root_key = pki.generate_private_key()
    root = pki.Issuer(pki.build_ca(root_key, root_name, 3650 * DAY, path_length=1), root_key)
    intermediate_key = pki.generate_private_key()
    intermediate = pki.Issuer(pki.build_ca(intermediate_key, intermediate_name, 365 * DAY, issuer=root), intermediate_key, [root.cert])
    return root, intermediate


def leaf(issuer, common_name, issued_ago=None, **spec):
    """A leaf certificate of ``issuer`` for a new key, issued now or ``issued_ago`` (a
    timedelta) ago; ``spec``: the other LeafSpec options."""
    now = None if issued_ago is None else pki.utcnow() - issued_ago
    return pki.build_leaf(issuer, pki.LeafSpec(common_name, **spec), pki.generate_private_key(), now=now)


def self_signed(key, common_name, not_before=None, not_after=None, serial=1, extensions=()):
    """A certificate of ``key`` signed by itself, built without module_utils/pki.py so that
    the code under test reads it as it would another tool's; valid from a minute ago for a
    day unless ``not_before``/``not_after`` say otherwise. ``extensions``: (value, critical)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - datetime.timedelta(minutes=1) if not_before is None else not_before)
        .not_valid_after(now + DAY if not_after is None else not_after)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256())

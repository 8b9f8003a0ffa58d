# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fingerprints: what results, diffs and logs show of certificates and keys instead of
their bytes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib

from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_keys import public_key_der
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import hashes


def key_fingerprint(key):
    """'sha256:<hex>' of the SubjectPublicKeyInfo DER: safe to log, unlike the key."""
    return "sha256:" + hashlib.sha256(public_key_der(key)).hexdigest()


def sha256_fingerprint(cert):
    """'AB:CD:...' uppercase colon-separated SHA-256 of the certificate DER."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()

# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PKI helpers in one import, for callers that use many of them (``pki.build_ca``).

The helpers live by concern - pki_time (durations, dates), pki_names (subjects, SANs,
name constraints), pki_keys, pki_fingerprints, pki_certs (loading, the Issuer),
pki_build (CAs and leaves), pki_verify (chains) and pki_renewal (reissue decisions);
PkiError and the cryptography import are in pki_support. Backends import from those
files; this one only gathers their public names.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_build import (
    USAGES,
    LeafSpec,
    build_ca,
    build_leaf,
    check_ca,
    check_leaf,
    random_serial_number,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_certs import (
    Issuer,
    basic_constraints,
    certificate_pem,
    certificate_summary,
    certificates_pem,
    check_issuer,
    load_certificate,
    load_certificates,
    load_issuer,
    signed_by,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_fingerprints import (
    key_fingerprint,
    sha256_fingerprint,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_keys import (
    DEFAULT_KEY_TYPE,
    KEY_TYPES,
    generate_private_key,
    is_encrypted_pem,
    key_matches_certificate,
    key_type_of,
    load_private_key,
    private_key_pem,
    public_key_der,
    signature_hash_for,
    validate_key_type,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_names import (
    build_name,
    validate_common_name,
    validate_dns_name,
    validate_email,
    validate_ip_address,
    validate_spiffe_id,
    validate_uri,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_renewal import (
    REISSUE_REASONS,
    ca_reissue_reason,
    issued_by,
    needs_renewal,
    permitted_domains_of,
    reissue_reason,
    renewal_time,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    PkiError,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_time import (
    CLOCK_SKEW_ALLOWANCE,
    aware,
    iso8601,
    parse_duration,
    parse_renew_before,
    utcnow,
    x509_time,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_verify import verify_chain

__all__ = (
    "CLOCK_SKEW_ALLOWANCE",
    "CRYPTOGRAPHY_IMPORT_ERROR",
    "DEFAULT_KEY_TYPE",
    "HAS_CRYPTOGRAPHY",
    "KEY_TYPES",
    "REISSUE_REASONS",
    "USAGES",
    "Issuer",
    "LeafSpec",
    "PkiError",
    "aware",
    "basic_constraints",
    "build_ca",
    "build_leaf",
    "build_name",
    "ca_reissue_reason",
    "certificate_pem",
    "certificate_summary",
    "certificates_pem",
    "check_ca",
    "check_issuer",
    "check_leaf",
    "generate_private_key",
    "is_encrypted_pem",
    "iso8601",
    "issued_by",
    "key_fingerprint",
    "key_matches_certificate",
    "key_type_of",
    "load_certificate",
    "load_certificates",
    "load_issuer",
    "load_private_key",
    "needs_renewal",
    "parse_duration",
    "parse_renew_before",
    "permitted_domains_of",
    "private_key_pem",
    "public_key_der",
    "random_serial_number",
    "reissue_reason",
    "renewal_time",
    "sha256_fingerprint",
    "signature_hash_for",
    "signed_by",
    "utcnow",
    "validate_common_name",
    "validate_dns_name",
    "validate_email",
    "validate_ip_address",
    "validate_key_type",
    "validate_spiffe_id",
    "validate_uri",
    "verify_chain",
    "x509_time",
    "_utcnow",
)

# The name utcnow had before the split: secret_layouts imports it.
_utcnow = utcnow

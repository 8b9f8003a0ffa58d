# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every pki_* file shares: the one guarded import of cryptography, and PkiError.

The pki_* files are pure PKI helpers: nothing in them knows about AnsibleModule, so they
are unit-testable and shared by every module. cryptography is imported here alone, so a
host without it still imports the modules, which then report it (HAS_CRYPTOGRAPHY).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import MtlsError, NeverRaised

# The other pki_* files import these from here.
# pylint: disable=unused-import
try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError as exc:  # pragma: no cover - reported by the modules
    CRYPTOGRAPHY_IMPORT_ERROR = exc
    x509 = hashes = serialization = ec = ed25519 = rsa = ExtendedKeyUsageOID = NameOID = None
    InvalidSignature = UnsupportedAlgorithm = NeverRaised
else:
    CRYPTOGRAPHY_IMPORT_ERROR = None
HAS_CRYPTOGRAPHY = CRYPTOGRAPHY_IMPORT_ERROR is None
# pylint: enable=unused-import


def check_cryptography():
    """Raise the MtlsError a module fails with when cryptography cannot be imported."""
    if not HAS_CRYPTOGRAPHY:
        # Imported here: the modules import this file on hosts, the action plugins on the
        # controller, and only a failing run needs basic's wording.
        from ansible.module_utils.basic import missing_required_lib

        raise MtlsError("%s (%s)" % (missing_required_lib("cryptography"), CRYPTOGRAPHY_IMPORT_ERROR))


def extension_value(item, extension_class):
    """The value of the ``extension_class`` extension of ``item`` (a certificate, CRL or CRL
    entry), or None when it has none."""
    try:
        return item.extensions.get_extension_for_class(extension_class).value
    except x509.ExtensionNotFound:
        return None


class PkiError(MtlsError):
    """A PKI problem the user can fix: ``str(e)`` names ``field`` and the fix.

    Takes ``(field, message)``, the order every PKI helper raises it with."""

    def __init__(self, field, message):
        super(PkiError, self).__init__(message, field)

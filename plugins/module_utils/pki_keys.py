# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private keys: the supported types, generating, loading and encoding them, and matching
a key to a certificate. Errors never carry key material."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import (
    PkiError,
    UnsupportedAlgorithm,
    ec,
    ed25519,
    hashes,
    rsa,
    serialization,
    x509,
)

KEY_TYPES = ("ec_p256", "ec_p384", "rsa2048", "rsa3072", "rsa4096", "ed25519")

DEFAULT_KEY_TYPE = "ec_p256"


def load_private_key(pem, field, passphrase=None, passphrase_field=None):
    """A private key from PEM; never echoes the key in errors.

    ``passphrase_field`` names the option holding the passphrase, so that a missing or
    wrong passphrase is reported against it.
    """
    secret_field = passphrase_field or field
    via = (" (%s)" % passphrase_field) if passphrase_field else ""
    if isinstance(pem, str):
        pem = pem.encode("utf-8")
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    if not passphrase:
        passphrase = None
    if not pem or b"PRIVATE KEY-----" not in pem:
        raise PkiError(field, "%s does not contain a PEM private key; give a PEM-encoded private key." % field)
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase)
    except TypeError:
        # cryptography raises TypeError both for "encrypted but no password" and
        # "password given but not encrypted"; tell the two apart without the key.
        if passphrase is None:
            raise PkiError(secret_field, "%s is encrypted; give its passphrase%s." % (field, via))
        raise PkiError(secret_field, "%s is not encrypted but a passphrase was given%s; drop the passphrase." % (field, via))
    except ValueError:
        if passphrase is not None:
            raise PkiError(
                secret_field, "%s cannot be decrypted with the given passphrase%s (wrong passphrase or corrupt key); give the right passphrase." % (field, via)
            )
        raise PkiError(field, "%s is not a valid PEM private key; replace it with a valid key." % field)
    except UnsupportedAlgorithm:
        raise PkiError(field, "%s uses an unsupported key algorithm; use one of %s." % (field, ", ".join(KEY_TYPES)))
    key_type_of(key, field)
    return key


def generate_private_key(key_type=DEFAULT_KEY_TYPE, field="key_type"):
    """A new private key of one of KEY_TYPES."""
    if key_type == "ec_p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec_p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type in ("rsa2048", "rsa3072", "rsa4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise PkiError(field, "%s must be one of %s, got %r." % (field, ", ".join(KEY_TYPES), key_type))


def validate_key_type(key_type, field="key_type"):
    if key_type not in KEY_TYPES:
        raise PkiError(field, "%s must be one of %s, got %r." % (field, ", ".join(KEY_TYPES), key_type))
    return key_type


def key_type_of(key, field="key"):
    """The KEY_TYPES name of a private or public key."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        name = {"secp256r1": "ec_p256", "secp384r1": "ec_p384"}.get(key.curve.name)
        if name:
            return name
        raise PkiError(field, "%s uses the curve %s, which is not supported; use P-256 or P-384." % (field, key.curve.name))
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        if key.key_size in (2048, 3072, 4096):
            return "rsa%d" % key.key_size
        raise PkiError(field, "%s is a %d-bit RSA key; use 2048, 3072 or 4096 bits." % (field, key.key_size))
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "ed25519"
    raise PkiError(field, "%s uses an unsupported key algorithm; use one of %s." % (field, ", ".join(KEY_TYPES)))


def is_encrypted_pem(pem):
    """Whether a PEM private key is encrypted (PKCS#8 or the legacy Proc-Type header).

    Looks at the armour only, so it needs no passphrase and never parses key bytes.
    """
    if isinstance(pem, str):
        pem = pem.encode("utf-8")
    return b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in pem or b"Proc-Type: 4,ENCRYPTED" in pem


def private_key_pem(key, passphrase=None):
    """PKCS#8 PEM, encrypted with the best available scheme when a passphrase is given."""
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    if passphrase:
        encryption = serialization.BestAvailableEncryption(passphrase)
    else:
        encryption = serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def public_key_der(key):
    """SubjectPublicKeyInfo DER of a private key, public key or certificate."""
    if isinstance(key, x509.Certificate):
        key = key.public_key()
    elif hasattr(key, "public_key"):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches_certificate(private_key, cert):
    """True when ``private_key`` is the key of ``cert`` (compares public key bytes)."""
    return same_public_key(private_key.public_key(), cert.public_key())


def same_public_key(first, second):
    # Key objects compare by value (EVP_PKEY_eq), five times cheaper than encoding both to
    # DER - it matters when 1,000 existing certificates are checked in one run.
    try:
        return first == second
    except TypeError:
        return public_key_der(first) == public_key_der(second)


def signature_hash_for(key):
    """The hash a CA key signs with: matched to the key strength, none for Ed25519."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return hashes.SHA384()
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 4096:
        return hashes.SHA384()
    return hashes.SHA256()

# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure PKI helpers: keys, CA and leaf building, chain checks, renewal decisions.

Nothing in here knows about AnsibleModule, so everything is unit-testable and can be
shared by every module (mtls_ca, mtls_cert, mtls_cert_info, mtls_secret) and by the
exporter. Every failure is a PkiError whose message is one sentence that names the
option at fault (``field``) and how to fix it; no message ever carries key material.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import ipaddress
import re
import secrets

from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import MtlsError

try:
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover - Python 2 is not supported, keeps sanity quiet
    urlsplit = None

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the modules
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = exc


# Certificates start this far in the past so that peers whose clocks run a little
# behind ours do not reject a certificate that was issued a moment ago.
CLOCK_SKEW_ALLOWANCE = datetime.timedelta(minutes=5)

KEY_TYPES = ('ec_p256', 'ec_p384', 'rsa2048', 'rsa3072', 'rsa4096', 'ed25519')
DEFAULT_KEY_TYPE = 'ec_p256'
USAGES = ('server', 'client', 'both')

# Reasons a leaf is (re)issued, in the order they are checked: the first one that
# applies is reported, so the most fundamental problem wins.
REISSUE_REASONS = (
    'missing', 'unreadable', 'key_mismatch', 'issuer_changed', 'expired',
    'renewal_due', 'subject_changed', 'sans_changed', 'usage_changed',
    'key_type_changed',
)

_DURATION_PART = re.compile(r'(\d+)([wdhms])')
_DURATION_WHOLE = re.compile(r'^(?:\d+[wdhms])+$')
_DURATION_UNIT_SECONDS = {'w': 7 * 86400, 'd': 86400, 'h': 3600, 'm': 60, 's': 1}
_PERCENT = re.compile(r'^(\d+(?:\.\d+)?)\s*%$')
_DNS_LABEL = re.compile(r'^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$')
_EMAIL = re.compile(r'^[A-Za-z0-9.!#$%&\'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+$')
_SPIFFE_TRUST_DOMAIN = re.compile(r'^[a-z0-9._-]+$')
_SPIFFE_SEGMENT = re.compile(r'^[A-Za-z0-9._-]+$')


class PkiError(MtlsError):
    """A PKI problem the user can fix: ``str(e)`` names ``field`` and the fix.

    Takes ``(field, message)``, the order every PKI helper raises it with."""

    def __init__(self, field, message):
        super(PkiError, self).__init__(message, field)


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def _aware(value):
    """Treat naive datetimes as UTC so callers may pass either kind."""
    if value is None:
        return _utcnow()
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value


def iso8601(value):
    """'2026-11-22T15:00:00Z' - what every module returns for dates."""
    return _aware(value).astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


# --------------------------------------------------------------------------- durations

def parse_duration(text, field):
    """Parse '3650d', '8760h', '90m', '30s', '2w' or combinations like '1d12h'."""
    if isinstance(text, datetime.timedelta):
        duration = text
    else:
        if isinstance(text, bool) or not isinstance(text, (str, int)):
            raise PkiError(field, "%s must be a duration such as '30d' or '1d12h', got %r." % (field, text))
        compact = str(text).strip().replace(' ', '').lower()
        if compact.startswith('-'):
            raise PkiError(field, "%s must be a positive duration such as '30d', got %r." % (field, text))
        if not _DURATION_WHOLE.match(compact):
            raise PkiError(
                field,
                "%s must be a duration made of numbers with units w, d, h, m or s (for example "
                "'30d' or '1d12h'), got %r." % (field, text))
        seconds = sum(int(number) * _DURATION_UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(compact))
        duration = datetime.timedelta(seconds=seconds)
    if duration <= datetime.timedelta(0):
        raise PkiError(field, "%s must be longer than zero, got %r." % (field, text))
    return duration


def parse_renew_before(text, field='renew_before'):
    """Return ('percent', fraction) for 'NN%', ('absolute', timedelta) or None for the default."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, str):
        match = _PERCENT.match(text.strip())
        if match:
            percent = float(match.group(1))
            if not 0 < percent < 100:
                raise PkiError(field, "%s as a percentage must be between 0%% and 100%% (exclusive), got %r." % (field, text))
            return ('percent', percent / 100.0)
    return ('absolute', parse_duration(text, field))


def renewal_time(cert, renew_before=None):
    """When ``cert`` becomes due for renewal.

    ``renew_before`` is what parse_renew_before returns (or the raw option text). The
    default renews when a third of the lifetime is left, as cert-manager does.
    """
    if not isinstance(renew_before, (tuple, type(None))):
        renew_before = parse_renew_before(renew_before)
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    lifetime = not_after - not_before
    if renew_before is None:
        return not_after - lifetime / 3
    kind, value = renew_before
    if kind == 'percent':
        return not_after - lifetime * value
    return not_after - value


def needs_renewal(cert, renew_before=None, now=None):
    """True when ``cert`` is inside its renewal window (or expired)."""
    return _aware(now) >= renewal_time(cert, renew_before)


# --------------------------------------------------------------------------- loading

def load_certificates(pem, field):
    """All certificates in a PEM blob, in order; PkiError when there are none."""
    if isinstance(pem, str):
        pem = pem.encode('utf-8')
    if not pem or b'-----BEGIN CERTIFICATE-----' not in pem:
        raise PkiError(field, "%s does not contain a PEM certificate ('-----BEGIN CERTIFICATE-----'); "
                              "give a PEM-encoded X.509 certificate." % field)
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise PkiError(field, "%s holds a PEM certificate block that cannot be parsed; "
                              "replace it with a valid PEM-encoded X.509 certificate." % field)
    if not certs:
        raise PkiError(field, "%s does not contain a PEM certificate; give a PEM-encoded X.509 certificate." % field)
    return certs


def load_certificate(pem, field):
    """Exactly the first certificate of a PEM blob."""
    return load_certificates(pem, field)[0]


def load_private_key(pem, field, passphrase=None, passphrase_field=None):
    """A private key from PEM; never echoes the key in errors.

    ``passphrase_field`` names the option holding the passphrase, so that a missing or
    wrong passphrase is reported against it.
    """
    secret_field = passphrase_field or field
    via = (' (%s)' % passphrase_field) if passphrase_field else ''
    if isinstance(pem, str):
        pem = pem.encode('utf-8')
    if isinstance(passphrase, str):
        passphrase = passphrase.encode('utf-8')
    if not passphrase:
        passphrase = None
    if not pem or b'PRIVATE KEY-----' not in pem:
        raise PkiError(field, "%s does not contain a PEM private key; give a PEM-encoded private key." % field)
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase)
    except TypeError as exc:
        # cryptography raises TypeError both for "encrypted but no password" and
        # "password given but not encrypted"; tell the two apart without the key.
        if passphrase is None:
            raise PkiError(secret_field, "%s is encrypted; give its passphrase%s." % (field, via))
        raise PkiError(secret_field, "%s is not encrypted but a passphrase was given%s; drop the passphrase." % (field, via))
    except ValueError:
        if passphrase is not None:
            raise PkiError(secret_field, "%s cannot be decrypted with the given passphrase%s (wrong passphrase or "
                                         "corrupt key); give the right passphrase." % (field, via))
        raise PkiError(field, "%s is not a valid PEM private key; replace it with a valid key." % field)
    except UnsupportedAlgorithm:
        raise PkiError(field, "%s uses an unsupported key algorithm; use one of %s." % (field, ', '.join(KEY_TYPES)))
    key_type_of(key, field)
    return key


# --------------------------------------------------------------------------- keys

def generate_private_key(key_type=DEFAULT_KEY_TYPE, field='key_type'):
    """A new private key of one of KEY_TYPES."""
    if key_type == 'ec_p256':
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == 'ec_p384':
        return ec.generate_private_key(ec.SECP384R1())
    if key_type in ('rsa2048', 'rsa3072', 'rsa4096'):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    if key_type == 'ed25519':
        return ed25519.Ed25519PrivateKey.generate()
    raise PkiError(field, "%s must be one of %s, got %r." % (field, ', '.join(KEY_TYPES), key_type))


def validate_key_type(key_type, field='key_type'):
    if key_type not in KEY_TYPES:
        raise PkiError(field, "%s must be one of %s, got %r." % (field, ', '.join(KEY_TYPES), key_type))
    return key_type


def key_type_of(key, field='key'):
    """The KEY_TYPES name of a private or public key."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        name = {'secp256r1': 'ec_p256', 'secp384r1': 'ec_p384'}.get(key.curve.name)
        if name:
            return name
        raise PkiError(field, "%s uses the curve %s, which is not supported; use P-256 or P-384." % (field, key.curve.name))
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        if key.key_size in (2048, 3072, 4096):
            return 'rsa%d' % key.key_size
        raise PkiError(field, "%s is a %d-bit RSA key; use 2048, 3072 or 4096 bits." % (field, key.key_size))
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return 'ed25519'
    raise PkiError(field, "%s uses an unsupported key algorithm; use one of %s." % (field, ', '.join(KEY_TYPES)))


def is_encrypted_pem(pem):
    """Whether a PEM private key is encrypted (PKCS#8 or the legacy Proc-Type header).

    Looks at the armour only, so it needs no passphrase and never parses key bytes.
    """
    if isinstance(pem, str):
        pem = pem.encode('utf-8')
    return b'-----BEGIN ENCRYPTED PRIVATE KEY-----' in pem or b'Proc-Type: 4,ENCRYPTED' in pem


def private_key_pem(key, passphrase=None):
    """PKCS#8 PEM, encrypted with the best available scheme when a passphrase is given."""
    if isinstance(passphrase, str):
        passphrase = passphrase.encode('utf-8')
    if passphrase:
        encryption = serialization.BestAvailableEncryption(passphrase)
    else:
        encryption = serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def public_key_der(key):
    """SubjectPublicKeyInfo DER of a private key, public key or certificate."""
    if isinstance(key, x509.Certificate):
        key = key.public_key()
    elif hasattr(key, 'public_key'):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches_certificate(private_key, cert):
    """True when ``private_key`` is the key of ``cert`` (compares public key bytes)."""
    return _same_public_key(private_key.public_key(), cert.public_key())


def _same_public_key(first, second):
    # Key objects compare by value (EVP_PKEY_eq), five times cheaper than encoding both to
    # DER - it matters when 1,000 existing certificates are checked in one run.
    try:
        return first == second
    except TypeError:
        return public_key_der(first) == public_key_der(second)


def key_fingerprint(key):
    """'sha256:<hex>' of the SubjectPublicKeyInfo DER: safe to log, unlike the key."""
    return 'sha256:' + hashlib.sha256(public_key_der(key)).hexdigest()


def sha256_fingerprint(cert):
    """'AB:CD:...' uppercase colon-separated SHA-256 of the certificate DER."""
    return cert.fingerprint(hashes.SHA256()).hex(':').upper()


def certificate_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def certificates_pem(certs):
    return b''.join(certificate_pem(cert) for cert in certs)


def signature_hash_for(key):
    """The hash a CA key signs with: matched to the key strength, none for Ed25519."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == 'secp384r1':
        return hashes.SHA384()
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 4096:
        return hashes.SHA384()
    return hashes.SHA256()


def random_serial_number():
    """A positive serial of 159 random bits: unpredictable and within RFC 5280's 20 octets."""
    return secrets.randbits(159) or 1


# --------------------------------------------------------------------------- names

def validate_dns_name(name, field, allow_wildcard=True):
    if not isinstance(name, str) or not name:
        raise PkiError(field, "%s entries must be non-empty DNS names, got %r." % (field, name))
    check = name[:-1] if name.endswith('.') else name
    if allow_wildcard and check.startswith('*.'):
        check = check[2:]
    labels = check.split('.')
    if len(check) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        raise PkiError(field, "%s entry %r is not a valid DNS name (letters, digits and hyphens in dot-separated "
                              "labels, optionally starting with '*.'); fix the name." % (field, name))
    return name.lower()


def validate_ip_address(value, field):
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise PkiError(field, "%s entry %r is not a valid IPv4 or IPv6 address; fix the address." % (field, value))


def validate_spiffe_id(uri, field):
    """Check a SPIFFE ID against the SPIFFE-ID spec: spiffe://trust-domain/path."""
    rest = uri[len('spiffe://'):]
    trust_domain, _sep, path = rest.partition('/')
    if not trust_domain or not _SPIFFE_TRUST_DOMAIN.match(trust_domain):
        raise PkiError(field, "%s entry %r has an invalid SPIFFE trust domain (lowercase letters, digits, '.', '-' "
                              "and '_' only); use spiffe://trust-domain/path." % (field, uri))
    if path:
        for segment in path.split('/'):
            if not segment or segment in ('.', '..') or not _SPIFFE_SEGMENT.match(segment):
                raise PkiError(field, "%s entry %r has an invalid SPIFFE path (no empty, '.' or '..' segments, no "
                                      "trailing '/', only letters, digits, '.', '-' and '_'); fix the path." % (field, uri))
    if len(uri) > 2048:
        raise PkiError(field, "%s entry %r is longer than 2048 bytes; shorten the SPIFFE ID." % (field, uri[:40] + '...'))
    return uri


def validate_uri(uri, field):
    if not isinstance(uri, str) or not uri:
        raise PkiError(field, "%s entries must be non-empty URIs, got %r." % (field, uri))
    if uri.lower().startswith('spiffe:'):
        if not uri.startswith('spiffe://'):
            raise PkiError(field, "%s entry %r is not a valid SPIFFE ID; use spiffe://trust-domain/path." % (field, uri))
        return validate_spiffe_id(uri, field)
    parts = urlsplit(uri)
    if not parts.scheme or not (parts.netloc or parts.path) or any(c.isspace() for c in uri):
        raise PkiError(field, "%s entry %r is not an absolute URI; use a form such as "
                              "spiffe://cluster.local/ns/default/sa/web." % (field, uri))
    return uri


def validate_email(value, field):
    if not isinstance(value, str) or not _EMAIL.match(value) or '..' in value:
        raise PkiError(field, "%s entry %r is not a valid e-mail address; use the form name@example.com." % (field, value))
    return value


def validate_common_name(value, field='common_name'):
    if not isinstance(value, str) or not value.strip():
        raise PkiError(field, "%s must be a non-empty string." % field)
    if len(value) > 64:
        raise PkiError(field, "%s is %d characters long; X.509 allows at most 64." % (field, len(value)))
    return value


def build_name(common_name, organization=None, organizational_unit=None):
    attributes = []
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if organizational_unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, organizational_unit))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _name_matches_domain(name, domain):
    """RFC 5280 DNS/URI-host constraint match: equal, or a subdomain of ``domain``.

    A constraint with a leading dot ('.example.com') matches subdomains only.
    """
    name = name.lower().rstrip('.')
    domain = domain.lower().rstrip('.')
    if domain.startswith('.'):
        return name.endswith(domain)
    return name == domain or name.endswith('.' + domain)


def _uri_host_matches(host, constraint):
    """RFC 5280 4.2.1.10 for URIs: 'example.com' is that host only, '.example.com' any host below it."""
    host = host.lower().rstrip('.')
    constraint = constraint.lower().rstrip('.')
    if constraint.startswith('.'):
        return host.endswith(constraint)
    return host == constraint


def _uri_host(uri):
    return (urlsplit(uri).hostname or '').lower()


# --------------------------------------------------------------------------- certificate summaries

def _san_values(cert):
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], [], [], []
    return (
        san.get_values_for_type(x509.DNSName),
        [str(ip) for ip in san.get_values_for_type(x509.IPAddress)],
        san.get_values_for_type(x509.UniformResourceIdentifier),
        san.get_values_for_type(x509.RFC822Name),
    )


def basic_constraints(cert):
    """(is_ca, path_length) - (False, None) when the extension is absent."""
    try:
        value = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False, None
    return value.ca, value.path_length


def _common_name(name):
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return values[0].value if values else None


def certificate_summary(cert):
    """Everything a user wants to see about a certificate, as plain data (no PEM)."""
    dns_names, ip_addresses, uris, emails = _san_values(cert)
    is_ca, path_length = basic_constraints(cert)
    try:
        key_type = key_type_of(cert.public_key())
    except (PkiError, UnsupportedAlgorithm):
        key_type = 'unsupported'
    return {
        'subject': cert.subject.rfc4514_string(),
        'common_name': _common_name(cert.subject),
        'issuer': cert.issuer.rfc4514_string(),
        'serial': '%X' % cert.serial_number,
        'not_before': iso8601(cert.not_valid_before_utc),
        'not_after': iso8601(cert.not_valid_after_utc),
        'sha256_fingerprint': sha256_fingerprint(cert),
        'dns_names': dns_names,
        'ip_addresses': ip_addresses,
        'uris': uris,
        'emails': emails,
        'is_ca': is_ca,
        'path_length': path_length,
        'key_type': key_type,
    }


# --------------------------------------------------------------------------- issuers

class Issuer(object):
    """A validated signing CA, with everything shared by the certs it signs computed once."""

    def __init__(self, cert, key, chain=None):
        self.cert = cert
        self.key = key
        # chain: the CA's own issuers (intermediates, then possibly the root), not the CA.
        self.chain = list(chain or [])
        self.subject = cert.subject
        self.not_after = cert.not_valid_after_utc
        self.hash_algorithm = signature_hash_for(key)
        self.is_ca, self.path_length = basic_constraints(cert)
        try:
            ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            self.authority_key_identifier = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        except x509.ExtensionNotFound:
            self.authority_key_identifier = x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())
        self.key_identifier = self.authority_key_identifier.key_identifier
        self.permitted_dns_domains, self.permitted_uri_domains = _permitted_domains([cert] + self.chain)

    def chain_pem(self):
        """The CA followed by its issuers: what a leaf's chain file holds after the leaf."""
        return certificates_pem([self.cert] + self.chain)


def _permitted_domains(certs):
    """Permitted DNS and URI domains of every CA in ``certs`` (one list per CA with any)."""
    dns_sets, uri_sets = [], []
    for cert in certs:
        try:
            constraints = cert.extensions.get_extension_for_class(x509.NameConstraints).value
        except x509.ExtensionNotFound:
            continue
        subtrees = constraints.permitted_subtrees or []
        dns = [n.value for n in subtrees if isinstance(n, x509.DNSName)]
        uri = [n.value for n in subtrees if isinstance(n, x509.UniformResourceIdentifier)]
        if dns:
            dns_sets.append(dns)
        if uri:
            uri_sets.append(uri)
    return dns_sets, uri_sets


def check_issuer(cert, key, cert_field, key_field, now=None, for_ca=False, ca_field=None):
    """Refuse a signing CA that cannot issue: not a CA, expired, wrong key, pathlen 0 for a sub-CA."""
    now = _aware(now)
    is_ca, path_length = basic_constraints(cert)
    if not is_ca:
        raise PkiError(cert_field, "%s is not a CA certificate (basicConstraints CA:TRUE missing); "
                                   "point it at a CA certificate." % cert_field)
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.key_cert_sign:
            raise PkiError(cert_field, "%s may not sign certificates (keyUsage keyCertSign missing); "
                                       "point it at a signing CA." % cert_field)
    except x509.ExtensionNotFound:
        pass
    if cert.not_valid_after_utc <= now:
        raise PkiError(cert_field, "%s expired on %s; renew that CA first." % (cert_field, iso8601(cert.not_valid_after_utc)))
    if cert.not_valid_before_utc > now + CLOCK_SKEW_ALLOWANCE:
        raise PkiError(cert_field, "%s is not valid before %s; check the clock or the CA." % (
            cert_field, iso8601(cert.not_valid_before_utc)))
    if not key_matches_certificate(key, cert):
        raise PkiError(key_field, "%s does not match the certificate in %s; give the key of that CA." % (key_field, cert_field))
    if for_ca and path_length == 0:
        raise PkiError(ca_field or cert_field, "%s has pathlen 0, so it cannot sign an intermediate CA; sign the "
                                               "intermediate with a CA whose path_length allows it." % cert_field)


def load_issuer(cert_pem, key_pem, cert_field, key_field, passphrase=None, chain_pem=None,
                chain_field=None, now=None, passphrase_field=None):
    """Load and validate a signing CA once, for any number of leaves."""
    cert = load_certificate(cert_pem, cert_field)
    key = load_private_key(key_pem, key_field, passphrase, passphrase_field=passphrase_field)
    check_issuer(cert, key, cert_field, key_field, now)
    chain = []
    if chain_pem:
        fingerprint = cert.fingerprint(hashes.SHA256())
        chain = [c for c in load_certificates(chain_pem, chain_field) if c.fingerprint(hashes.SHA256()) != fingerprint]
        _check_chain_links([cert] + chain, chain_field)
    return Issuer(cert, key, chain)


def _check_chain_links(ordered, field):
    for child, parent in zip(ordered, ordered[1:]):
        if child.issuer != parent.subject or not _signed_by(child, parent):
            raise PkiError(field, "%s is not the chain of its CA: %s is not issued by %s; list the issuers "
                                  "in order, from the CA's own issuer up to the root." % (
                                      field, child.subject.rfc4514_string(), parent.subject.rfc4514_string()))


def _signed_by(child, parent):
    try:
        child.verify_directly_issued_by(parent)
        return True
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False


# --------------------------------------------------------------------------- building

def _validity(now, valid_for, issuer, field):
    now = _aware(now)
    not_before = now - CLOCK_SKEW_ALLOWANCE
    not_after = now + valid_for
    if issuer is not None and not_after > issuer.not_after:
        raise PkiError(field, "%s would make the certificate valid until %s, beyond its issuer's expiry on %s; "
                              "shorten valid_for or renew the CA." % (field, iso8601(not_after), iso8601(issuer.not_after)))
    return not_before, not_after


def check_ca(common_name, valid_for, issuer=None, path_length=None, permitted_dns_domains=None,
             permitted_uri_domains=None, now=None, field='valid_for'):
    """Everything build_ca would refuse, without a key or a signature: (not_before, not_after)."""
    validate_common_name(common_name)
    if path_length is not None and (isinstance(path_length, bool) or not isinstance(path_length, int) or path_length < 0):
        raise PkiError('path_length', "path_length must be zero or a positive integer, got %r." % (path_length,))
    for domain in permitted_dns_domains or []:
        _constraint_domain(domain, 'permitted_dns_domains')
    for domain in permitted_uri_domains or []:
        _constraint_domain(domain, 'permitted_uri_domains')
    if issuer is not None:
        if issuer.path_length == 0:
            raise PkiError('parent_cert_path', "parent_cert_path has pathlen 0, so it cannot sign an intermediate "
                                               "CA; use a parent whose path_length allows it.")
        if issuer.path_length is not None and path_length is not None and path_length >= issuer.path_length:
            raise PkiError('path_length', "path_length %d is not allowed under a parent with pathlen %d; use at most %d."
                           % (path_length, issuer.path_length, issuer.path_length - 1))
    return _validity(now, valid_for, issuer, field)


def build_ca(key, common_name, valid_for, organization=None, issuer=None, path_length=None,
             permitted_dns_domains=None, permitted_uri_domains=None, now=None, field='valid_for'):
    """A root CA (issuer None) or an intermediate signed by ``issuer`` (an Issuer).

    basicConstraints CA:TRUE critical with ``path_length``, keyUsage keyCertSign+cRLSign
    critical, SKI, AKI (intermediates and roots alike) and optional critical name
    constraints for DNS and URI domains.
    """
    not_before, not_after = check_ca(common_name, valid_for, issuer=issuer, path_length=path_length,
                                     permitted_dns_domains=permitted_dns_domains,
                                     permitted_uri_domains=permitted_uri_domains, now=now, field=field)
    subject = build_name(common_name, organization)
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(public_key)
        .serial_number(random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(issuer.authority_key_identifier, critical=False)
    else:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
    permitted = []
    for domain in permitted_dns_domains or []:
        permitted.append(x509.DNSName(_constraint_domain(domain, 'permitted_dns_domains')))
    for domain in permitted_uri_domains or []:
        permitted.append(x509.UniformResourceIdentifier(_constraint_domain(domain, 'permitted_uri_domains')))
    if permitted:
        # RFC 5280 4.2.1.10: conforming CAs MUST mark name constraints critical.
        builder = builder.add_extension(x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None), critical=True)
    signing_key = issuer.key if issuer else key
    hash_algorithm = issuer.hash_algorithm if issuer else signature_hash_for(key)
    return builder.sign(signing_key, hash_algorithm)


def _constraint_domain(domain, field):
    if not isinstance(domain, str) or not domain.strip():
        raise PkiError(field, "%s entries must be non-empty domain names." % field)
    check = domain[1:] if domain.startswith('.') else domain
    validate_dns_name(check, field, allow_wildcard=False)
    return domain.lower()


class LeafSpec(object):
    """What a leaf certificate should look like; validated on construction."""

    __slots__ = ('common_name', 'organization', 'dns_names', 'ip_addresses', 'uris', 'emails',
                 'usage', 'key_type', 'valid_for', 'subject', 'general_names', 'field_prefix')

    def __init__(self, common_name, dns_names=None, ip_addresses=None, uris=None, emails=None,
                 usage='both', key_type=DEFAULT_KEY_TYPE, valid_for=None, organization=None,
                 field_prefix=''):
        prefix = field_prefix
        self.field_prefix = prefix
        self.common_name = validate_common_name(common_name, prefix + 'common_name')
        self.organization = organization
        self.dns_names = [validate_dns_name(n, prefix + 'dns_names') for n in (dns_names or [])]
        self.ip_addresses = [validate_ip_address(ip, prefix + 'ip_addresses') for ip in (ip_addresses or [])]
        self.uris = [validate_uri(u, prefix + 'uris') for u in (uris or [])]
        spiffe_ids = [u for u in self.uris if u.startswith('spiffe://')]
        if len(spiffe_ids) > 1:
            raise PkiError(prefix + 'uris', "%suris holds %d SPIFFE IDs but an X.509-SVID carries exactly one; "
                                            "keep one." % (prefix, len(spiffe_ids)))
        self.emails = [validate_email(e, prefix + 'emails') for e in (emails or [])]
        if usage not in USAGES:
            raise PkiError(prefix + 'usage', "%susage must be one of %s, got %r." % (prefix, ', '.join(USAGES), usage))
        self.usage = usage
        self.key_type = validate_key_type(key_type, prefix + 'key_type')
        self.valid_for = valid_for if isinstance(valid_for, datetime.timedelta) else \
            parse_duration(valid_for or '30d', prefix + 'valid_for')
        self.subject = build_name(self.common_name, organization)
        names = [x509.DNSName(n) for n in self.dns_names]
        names += [x509.IPAddress(ip) for ip in self.ip_addresses]
        names += [x509.UniformResourceIdentifier(u) for u in self.uris]
        names += [x509.RFC822Name(e) for e in self.emails]
        self.general_names = names

    def extended_key_usages(self):
        return _EKU_FOR_USAGE[self.usage]

    def check_name_constraints(self, issuer):
        """Refuse SANs the issuing chain's name constraints would make clients reject."""
        prefix = self.field_prefix
        for domains in issuer.permitted_dns_domains:
            for name in self.dns_names:
                if not any(_name_matches_domain(name, d) for d in domains):
                    raise PkiError(prefix + 'dns_names', "%sdns_names entry %r is outside the CA's permitted DNS "
                                                         "domains (%s); use a name inside them." % (prefix, name, ', '.join(domains)))
        for domains in issuer.permitted_uri_domains:
            for uri in self.uris:
                if not any(_uri_host_matches(_uri_host(uri), d) for d in domains):
                    raise PkiError(prefix + 'uris', "%suris entry %r is outside the CA's permitted URI domains (%s); "
                                                    "use a URI inside them." % (prefix, uri, ', '.join(domains)))


if HAS_CRYPTOGRAPHY:
    _EKU_FOR_USAGE = {
        'server': frozenset([ExtendedKeyUsageOID.SERVER_AUTH]),
        'client': frozenset([ExtendedKeyUsageOID.CLIENT_AUTH]),
        'both': frozenset([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
    }
    _EKU_ORDER = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
    _BASIC_CONSTRAINTS_LEAF = x509.BasicConstraints(ca=False, path_length=None)


def _make_leaf_key_usage(key_encipherment):
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=key_encipherment,
        data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False)


if HAS_CRYPTOGRAPHY:
    # Built once: a batch of 1,000 leaves shares these immutable extension values.
    _LEAF_KEY_USAGE_SIGN = _make_leaf_key_usage(False)
    _LEAF_KEY_USAGE_RSA = _make_leaf_key_usage(True)
    _EKU_EXTENSION = dict(
        (usage, x509.ExtendedKeyUsage([oid for oid in _EKU_ORDER if oid in oids]))
        for usage, oids in _EKU_FOR_USAGE.items())


def _leaf_key_usage(key):
    # keyEncipherment only means something for RSA key transport; EC/Ed25519 keys sign.
    return _LEAF_KEY_USAGE_RSA if isinstance(key, rsa.RSAPrivateKey) else _LEAF_KEY_USAGE_SIGN


def check_leaf(issuer, spec, now=None, field=None):
    """Everything build_leaf would refuse, without signing: (not_before, not_after).

    Check mode calls this so that it fails exactly where a real run would.
    """
    spec.check_name_constraints(issuer)
    return _validity(now, spec.valid_for, issuer, field or (spec.field_prefix + 'valid_for'))


def build_leaf(issuer, spec, key, now=None, field=None):
    """A leaf certificate for ``spec`` with ``key``, signed by ``issuer``.

    The caller validates the issuer once (load_issuer) and may call this thousands of
    times: only per-certificate work happens here.
    """
    not_before, not_after = check_leaf(issuer, spec, now, field)
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(spec.subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(_BASIC_CONSTRAINTS_LEAF, critical=True)
        .add_extension(_leaf_key_usage(key), critical=True)
        .add_extension(_EKU_EXTENSION[spec.usage], critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(issuer.authority_key_identifier, critical=False)
    )
    if spec.general_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(spec.general_names), critical=False)
    return builder.sign(issuer.key, issuer.hash_algorithm)


# --------------------------------------------------------------------------- decisions

def _authority_key_id(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def issued_by(cert, issuer):
    """Cheap 'was this signed by this CA' check: issuer name and key identifier match.

    Comparing the AKI with the CA's SKI catches a re-keyed CA with the same name
    without an expensive signature verification per certificate.
    """
    if cert.issuer != issuer.subject:
        return False
    aki = _authority_key_id(cert)
    return aki is None or aki == issuer.key_identifier


def _general_names(cert):
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san)


def _extended_key_usages(cert):
    try:
        return frozenset(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return frozenset()


def reissue_reason(spec, issuer, cert=None, key=None, cert_error=None, key_error=None,
                   renew_before=None, now=None, cert_missing=False, key_missing=False):
    """The first reason in REISSUE_REASONS that applies, or None when nothing needs doing.

    ``cert``/``key`` are the parsed existing files (None when missing or unreadable,
    with ``*_missing`` or ``*_error`` saying which).
    """
    if cert_missing or key_missing:
        return 'missing'
    if cert_error is not None or key_error is not None or cert is None or key is None:
        return 'unreadable'
    if not _same_public_key(key.public_key(), cert.public_key()):
        return 'key_mismatch'
    if not issued_by(cert, issuer):
        return 'issuer_changed'
    now = _aware(now)
    if cert.not_valid_after_utc <= now:
        return 'expired'
    if needs_renewal(cert, renew_before, now):
        return 'renewal_due'
    if cert.subject != spec.subject:
        return 'subject_changed'
    if set(_general_names(cert)) != set(spec.general_names):
        return 'sans_changed'
    if _extended_key_usages(cert) != spec.extended_key_usages():
        return 'usage_changed'
    try:
        if key_type_of(key) != spec.key_type:
            return 'key_type_changed'
    except PkiError:
        return 'key_type_changed'
    return None


# --------------------------------------------------------------------------- verification

def verify_chain(leaf, intermediates, roots, field, at=None):
    """Verify leaf -> intermediates -> one of ``roots``; PkiError saying why not.

    RFC 5280 path validation reduced to what a private PKI needs: every link signed
    by the next, every certificate inside its validity at ``at``, every issuer a CA
    allowed to sign certificates, pathlen respected and DNS/URI name constraints
    honoured. ``leaf`` may itself be a CA (an intermediate checked against a root).
    """
    at = _aware(at)
    roots = list(roots or [])
    pool = list(intermediates or [])
    if not roots:
        raise PkiError(field, "%s cannot be verified because no trust anchor was given; give the root CA "
                              "certificate in the trust bundle." % field)
    root_fingerprints = set(root.fingerprint(hashes.SHA256()) for root in roots)
    path = [leaf]
    current = leaf
    # Walk up at most len(pool)+1 links: a longer walk means a loop in the bundle.
    for _step in range(len(pool) + 2):
        if current.fingerprint(hashes.SHA256()) in root_fingerprints:
            break
        anchor = _find_issuer(current, roots)
        if anchor is not None:
            path.append(anchor)
            break
        parent = _find_issuer(current, pool)
        if parent is None:
            raise PkiError(field, "%s does not verify: no certificate in the chain or trust bundle issued %s "
                                  "(issuer %s); add the missing intermediate or use the right trust bundle." % (
                                      field, _describe(current), current.issuer.rfc4514_string()))
        pool = [c for c in pool if c is not parent]
        path.append(parent)
        current = parent
    else:
        raise PkiError(field, "%s does not verify: the chain does not end at a trusted root; add the root to "
                              "the trust bundle." % field)
    for cert in path:
        if cert.not_valid_after_utc < at:
            raise PkiError(field, "%s does not verify: %s expired on %s; renew it." % (
                field, _describe(cert), iso8601(cert.not_valid_after_utc)))
        if cert.not_valid_before_utc > at:
            raise PkiError(field, "%s does not verify: %s is not valid before %s; check the clock or reissue it." % (
                field, _describe(cert), iso8601(cert.not_valid_before_utc)))
    for depth, issuer_cert in enumerate(path[1:], start=1):
        is_ca, path_length = basic_constraints(issuer_cert)
        if not is_ca:
            raise PkiError(field, "%s does not verify: %s signs another certificate but is not a CA "
                                  "(basicConstraints CA:TRUE missing); reissue it as a CA." % (field, _describe(issuer_cert)))
        try:
            if not issuer_cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign:
                raise PkiError(field, "%s does not verify: %s may not sign certificates (keyUsage keyCertSign "
                                      "missing); reissue it as a signing CA." % (field, _describe(issuer_cert)))
        except x509.ExtensionNotFound:
            pass
        # CAs strictly between this issuer and the leaf count against its pathlen.
        intermediate_cas_below = depth - 1
        if path_length is not None and intermediate_cas_below > path_length:
            raise PkiError(field, "%s does not verify: %s allows %d intermediate CA(s) below it (pathlen) but the "
                                  "chain has %d; reissue the CAs with a larger path_length or a shorter chain." % (
                                      field, _describe(issuer_cert), path_length, intermediate_cas_below))
    for child, parent in zip(path, path[1:]):
        if not _signed_by(child, parent):
            raise PkiError(field, "%s does not verify: the signature on %s does not match the key of %s; "
                                  "reissue it from that CA." % (field, _describe(child), _describe(parent)))
    for depth, issuer_cert in enumerate(path[1:], start=1):
        dns_sets, uri_sets = _permitted_domains([issuer_cert])
        for below in path[:depth]:
            # RFC 5280 6.1.3: self-issued intermediate CAs are exempt from name constraints.
            if below is not leaf and basic_constraints(below)[0] and below.subject == below.issuer:
                continue
            dns_names, _ips, uris, _emails = _san_values(below)
            for domains in dns_sets:
                for name in dns_names:
                    if not any(_name_matches_domain(name, d) for d in domains):
                        raise PkiError(field, "%s does not verify: DNS name %r of %s is outside the name constraints "
                                              "of %s; reissue it with a permitted name." % (
                                                  field, name, _describe(below), _describe(issuer_cert)))
            for domains in uri_sets:
                for uri in uris:
                    if not any(_uri_host_matches(_uri_host(uri), d) for d in domains):
                        raise PkiError(field, "%s does not verify: URI %r of %s is outside the name constraints "
                                              "of %s; reissue it with a permitted URI." % (
                                                  field, uri, _describe(below), _describe(issuer_cert)))


def _find_issuer(cert, candidates):
    for candidate in candidates:
        if candidate.subject == cert.issuer and _signed_by(cert, candidate):
            return candidate
    for candidate in candidates:
        if candidate.subject == cert.issuer:
            # Same name, wrong key: report it as a signature problem, not a missing link.
            return candidate
    return None


def _describe(cert):
    return "'%s'" % cert.subject.rfc4514_string()


# --------------------------------------------------------------------------- CA decisions

def permitted_domains_of(cert):
    """(permitted DNS domains, permitted URI domains) of one certificate's name constraints."""
    dns_sets, uri_sets = _permitted_domains([cert])
    return (dns_sets[0] if dns_sets else []), (uri_sets[0] if uri_sets else [])


def ca_reissue_reason(cert, key, common_name, key_type, organization=None, path_length=None,
                      permitted_dns_domains=None, permitted_uri_domains=None, issuer=None,
                      renew_before=None, now=None):
    """None when the CA certificate ``cert`` (with ``key``) is what was asked for, else why not.

    'created' (no certificate), 'drift' (key, issuer, subject, pathlen, name
    constraints or key type differ) or 'renewed' (expired or due for renewal).
    Drift wins over renewal because it says more about what happened.
    """
    if cert is None:
        return 'created'
    if key is None or not key_matches_certificate(key, cert):
        return 'drift'
    try:
        if key_type_of(key) != key_type:
            return 'drift'
    except PkiError:
        return 'drift'
    if issuer is None:
        if cert.issuer != cert.subject or not _signed_by(cert, cert):
            return 'drift'
    elif not issued_by(cert, issuer) or not _signed_by(cert, issuer.cert):
        return 'drift'
    if cert.subject != build_name(common_name, organization):
        return 'drift'
    if basic_constraints(cert) != (True, path_length):
        return 'drift'
    dns, uri = permitted_domains_of(cert)
    wanted_dns = [d.lower() for d in (permitted_dns_domains or [])]
    wanted_uri = [d.lower() for d in (permitted_uri_domains or [])]
    if sorted(dns) != sorted(wanted_dns) or sorted(uri) != sorted(wanted_uri):
        return 'drift'
    if needs_renewal(cert, renew_before, now):
        return 'renewed'
    return None

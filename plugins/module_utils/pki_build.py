# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Building certificates: a root or intermediate CA, and leaves from a LeafSpec.

The check_* functions refuse everything the build_* functions would, without a key or a
signature, so that check mode fails exactly where a real run would."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import secrets

from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_keys import DEFAULT_KEY_TYPE, signature_hash_for, validate_key_type
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_names import (
    build_name,
    constraint_domain,
    name_matches_domain,
    uri_host,
    uri_host_matches,
    validate_common_name,
    validate_dns_name,
    validate_email,
    validate_ip_address,
    validate_uri,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import HAS_CRYPTOGRAPHY, ExtendedKeyUsageOID, PkiError, rsa, x509
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_time import CLOCK_SKEW_ALLOWANCE, aware, iso8601, parse_duration

USAGES = ("server", "client", "both")


def random_serial_number():
    """A positive serial of 159 random bits: unpredictable and within RFC 5280's 20 octets."""
    return secrets.randbits(159) or 1


def _validity(now, valid_for, issuer, field):
    now = aware(now)
    not_before = now - CLOCK_SKEW_ALLOWANCE
    not_after = now + valid_for
    if issuer is not None and not_after > issuer.not_after:
        raise PkiError(
            field,
            "%s would make the certificate valid until %s, beyond its issuer's expiry on %s; "
            "shorten valid_for or renew the CA." % (field, iso8601(not_after), iso8601(issuer.not_after)),
        )
    return not_before, not_after


def _key_usage(digital_signature=False, key_encipherment=False, ca=False):
    """keyUsage with only these bits: a CA signs certificates and CRLs, a leaf signs
    (and, for RSA, enciphers keys)."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


if HAS_CRYPTOGRAPHY:
    _CA_KEY_USAGE = _key_usage(ca=True)


def _name_constraints(permitted_dns_domains, permitted_uri_domains):
    """The NameConstraints extension value of a CA limited to these domains, or None."""
    permitted = [x509.DNSName(constraint_domain(domain, "permitted_dns_domains")) for domain in permitted_dns_domains or []]
    permitted += [x509.UniformResourceIdentifier(constraint_domain(domain, "permitted_uri_domains")) for domain in permitted_uri_domains or []]
    if not permitted:
        return None
    return x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None)


def check_ca(common_name, valid_for, issuer=None, path_length=None, permitted_dns_domains=None, permitted_uri_domains=None, now=None, field="valid_for"):
    """Everything build_ca would refuse, without a key or a signature: (not_before, not_after)."""
    validate_common_name(common_name)
    if path_length is not None and (isinstance(path_length, bool) or not isinstance(path_length, int) or path_length < 0):
        raise PkiError("path_length", "path_length must be zero or a positive integer, got %r." % (path_length,))
    for domain in permitted_dns_domains or []:
        constraint_domain(domain, "permitted_dns_domains")
    for domain in permitted_uri_domains or []:
        constraint_domain(domain, "permitted_uri_domains")
    if issuer is not None:
        if issuer.path_length == 0:
            raise PkiError(
                "parent_cert_path", "parent_cert_path has pathlen 0, so it cannot sign an intermediate CA; use a parent whose path_length allows it."
            )
        if issuer.path_length is not None and path_length is not None and path_length >= issuer.path_length:
            raise PkiError(
                "path_length",
                "path_length %d is not allowed under a parent with pathlen %d; use at most %d." % (path_length, issuer.path_length, issuer.path_length - 1),
            )
    return _validity(now, valid_for, issuer, field)


def build_ca(
    key,
    common_name,
    valid_for,
    organization=None,
    issuer=None,
    path_length=None,
    permitted_dns_domains=None,
    permitted_uri_domains=None,
    now=None,
    field="valid_for",
):
    """A root CA (issuer None) or an intermediate signed by ``issuer`` (an Issuer).

    basicConstraints CA:TRUE critical with ``path_length``, keyUsage keyCertSign+cRLSign
    critical, SKI, AKI (intermediates and roots alike) and optional critical name
    constraints for DNS and URI domains.
    """
    not_before, not_after = check_ca(
        common_name,
        valid_for,
        issuer=issuer,
        path_length=path_length,
        permitted_dns_domains=permitted_dns_domains,
        permitted_uri_domains=permitted_uri_domains,
        now=now,
        field=field,
    )
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
        .add_extension(_CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(issuer.authority_key_identifier, critical=False)
    else:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
    name_constraints = _name_constraints(permitted_dns_domains, permitted_uri_domains)
    if name_constraints is not None:
        # RFC 5280 4.2.1.10: conforming CAs MUST mark name constraints critical.
        builder = builder.add_extension(name_constraints, critical=True)
    signing_key = issuer.key if issuer else key
    hash_algorithm = issuer.hash_algorithm if issuer else signature_hash_for(key)
    return builder.sign(signing_key, hash_algorithm)


class LeafSpec(object):
    """What a leaf certificate should look like; validated on construction."""

    __slots__ = (
        "common_name",
        "organization",
        "dns_names",
        "ip_addresses",
        "uris",
        "emails",
        "usage",
        "key_type",
        "valid_for",
        "subject",
        "general_names",
        "field_prefix",
    )

    def __init__(
        self,
        common_name,
        dns_names=None,
        ip_addresses=None,
        uris=None,
        emails=None,
        usage="both",
        key_type=DEFAULT_KEY_TYPE,
        valid_for=None,
        organization=None,
        field_prefix="",
    ):
        prefix = field_prefix
        self.field_prefix = prefix
        self.common_name = validate_common_name(common_name, prefix + "common_name")
        self.organization = organization
        self.dns_names = [validate_dns_name(n, prefix + "dns_names") for n in (dns_names or [])]
        self.ip_addresses = [validate_ip_address(ip, prefix + "ip_addresses") for ip in (ip_addresses or [])]
        self.uris = [validate_uri(u, prefix + "uris") for u in (uris or [])]
        spiffe_ids = [u for u in self.uris if u.startswith("spiffe://")]
        if len(spiffe_ids) > 1:
            raise PkiError(prefix + "uris", "%suris holds %d SPIFFE IDs but an X.509-SVID carries exactly one; keep one." % (prefix, len(spiffe_ids)))
        self.emails = [validate_email(e, prefix + "emails") for e in (emails or [])]
        if usage not in USAGES:
            raise PkiError(prefix + "usage", "%susage must be one of %s, got %r." % (prefix, ", ".join(USAGES), usage))
        self.usage = usage
        self.key_type = validate_key_type(key_type, prefix + "key_type")
        self.valid_for = valid_for if isinstance(valid_for, datetime.timedelta) else parse_duration(valid_for or "30d", prefix + "valid_for")
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
                if not any(name_matches_domain(name, d) for d in domains):
                    raise PkiError(
                        prefix + "dns_names",
                        "%sdns_names entry %r is outside the CA's permitted DNS domains (%s); use a name inside them." % (prefix, name, ", ".join(domains)),
                    )
        for domains in issuer.permitted_uri_domains:
            for uri in self.uris:
                if not any(uri_host_matches(uri_host(uri), d) for d in domains):
                    raise PkiError(
                        prefix + "uris",
                        "%suris entry %r is outside the CA's permitted URI domains (%s); use a URI inside them." % (prefix, uri, ", ".join(domains)),
                    )


if HAS_CRYPTOGRAPHY:
    _EKU_FOR_USAGE = {
        "server": frozenset([ExtendedKeyUsageOID.SERVER_AUTH]),
        "client": frozenset([ExtendedKeyUsageOID.CLIENT_AUTH]),
        "both": frozenset([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
    }
    _EKU_ORDER = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
    _BASIC_CONSTRAINTS_LEAF = x509.BasicConstraints(ca=False, path_length=None)


if HAS_CRYPTOGRAPHY:
    # Built once: a batch of 1,000 leaves shares these immutable extension values.
    _LEAF_KEY_USAGE_SIGN = _key_usage(digital_signature=True)
    _LEAF_KEY_USAGE_RSA = _key_usage(digital_signature=True, key_encipherment=True)
    _EKU_EXTENSION = dict((usage, x509.ExtendedKeyUsage([oid for oid in _EKU_ORDER if oid in oids])) for usage, oids in _EKU_FOR_USAGE.items())


def _leaf_key_usage(key):
    # keyEncipherment only means something for RSA key transport; EC/Ed25519 keys sign.
    return _LEAF_KEY_USAGE_RSA if isinstance(key, rsa.RSAPrivateKey) else _LEAF_KEY_USAGE_SIGN


def check_leaf(issuer, spec, now=None, field=None):
    """Everything build_leaf would refuse, without signing: (not_before, not_after).

    Check mode calls this so that it fails exactly where a real run would.
    """
    spec.check_name_constraints(issuer)
    return _validity(now, spec.valid_for, issuer, field or (spec.field_prefix + "valid_for"))


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

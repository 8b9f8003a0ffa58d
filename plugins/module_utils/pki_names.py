# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names in certificates: subjects, subject alternative names, and name constraints.

Validation of what a user asks for (DNS names, IPs, URIs and SPIFFE IDs, e-mails, common
names), the X.509 subject built from it, what a certificate carries, and the RFC 5280
matching of names against a CA's permitted domains.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

try:
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover - Python 2 is not supported, keeps sanity quiet
    urlsplit = None

from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import NameOID, PkiError, extension_value, x509

_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&\'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+$")

_SPIFFE_TRUST_DOMAIN = re.compile(r"^[a-z0-9._-]+$")

_SPIFFE_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")


def validate_dns_name(name, field, allow_wildcard=True):
    if not isinstance(name, str) or not name:
        raise PkiError(field, "%s entries must be non-empty DNS names, got %r." % (field, name))
    check = name[:-1] if name.endswith(".") else name
    if allow_wildcard and check.startswith("*."):
        check = check[2:]
    labels = check.split(".")
    if len(check) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        raise PkiError(
            field,
            "%s entry %r is not a valid DNS name (letters, digits and hyphens in dot-separated "
            "labels, optionally starting with '*.'); fix the name." % (field, name),
        )
    return name.lower()


def validate_ip_address(value, field):
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise PkiError(field, "%s entry %r is not a valid IPv4 or IPv6 address; fix the address." % (field, value))


def validate_spiffe_id(uri, field):
    """Check a SPIFFE ID against the SPIFFE-ID spec: spiffe://trust-domain/path."""
    rest = uri[len("spiffe://") :]
    trust_domain, _sep, path = rest.partition("/")
    if not trust_domain or not _SPIFFE_TRUST_DOMAIN.match(trust_domain):
        raise PkiError(
            field,
            "%s entry %r has an invalid SPIFFE trust domain (lowercase letters, digits, '.', '-' and '_' only); use spiffe://trust-domain/path." % (field, uri),
        )
    if path:
        for segment in path.split("/"):
            if not segment or segment in (".", "..") or not _SPIFFE_SEGMENT.match(segment):
                raise PkiError(
                    field,
                    "%s entry %r has an invalid SPIFFE path (no empty, '.' or '..' segments, no "
                    "trailing '/', only letters, digits, '.', '-' and '_'); fix the path." % (field, uri),
                )
    if len(uri) > 2048:
        raise PkiError(field, "%s entry %r is longer than 2048 bytes; shorten the SPIFFE ID." % (field, uri[:40] + "..."))
    return uri


def validate_uri(uri, field):
    if not isinstance(uri, str) or not uri:
        raise PkiError(field, "%s entries must be non-empty URIs, got %r." % (field, uri))
    if uri.lower().startswith("spiffe:"):
        if not uri.startswith("spiffe://"):
            raise PkiError(field, "%s entry %r is not a valid SPIFFE ID; use spiffe://trust-domain/path." % (field, uri))
        return validate_spiffe_id(uri, field)
    parts = urlsplit(uri)
    if not parts.scheme or not (parts.netloc or parts.path) or any(c.isspace() for c in uri):
        raise PkiError(field, "%s entry %r is not an absolute URI; use a form such as spiffe://cluster.local/ns/default/sa/web." % (field, uri))
    return uri


def validate_email(value, field):
    if not isinstance(value, str) or not _EMAIL.match(value) or ".." in value:
        raise PkiError(field, "%s entry %r is not a valid e-mail address; use the form name@example.com." % (field, value))
    return value


def validate_common_name(value, field="common_name"):
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


def name_matches_domain(name, domain):
    """RFC 5280 DNS/URI-host constraint match: equal, or a subdomain of ``domain``.

    A constraint with a leading dot ('.example.com') matches subdomains only.
    """
    name = name.lower().rstrip(".")
    domain = domain.lower().rstrip(".")
    if domain.startswith("."):
        return name.endswith(domain)
    return name == domain or name.endswith("." + domain)


def uri_host_matches(host, constraint):
    """RFC 5280 4.2.1.10 for URIs: 'example.com' is that host only, '.example.com' any host below it."""
    host = host.lower().rstrip(".")
    constraint = constraint.lower().rstrip(".")
    if constraint.startswith("."):
        return host.endswith(constraint)
    return host == constraint


def uri_host(uri):
    return (urlsplit(uri).hostname or "").lower()


def constraint_domain(domain, field):
    if not isinstance(domain, str) or not domain.strip():
        raise PkiError(field, "%s entries must be non-empty domain names." % field)
    check = domain[1:] if domain.startswith(".") else domain
    validate_dns_name(check, field, allow_wildcard=False)
    return domain.lower()


def san_values(cert):
    san = extension_value(cert, x509.SubjectAlternativeName)
    if san is None:
        return [], [], [], []
    return (
        san.get_values_for_type(x509.DNSName),
        [str(ip) for ip in san.get_values_for_type(x509.IPAddress)],
        san.get_values_for_type(x509.UniformResourceIdentifier),
        san.get_values_for_type(x509.RFC822Name),
    )


def common_name_of(name):
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return values[0].value if values else None


def permitted_domains(certs):
    """Permitted DNS and URI domains of every CA in ``certs`` (one list per CA with any)."""
    dns_sets, uri_sets = [], []
    for cert in certs:
        constraints = extension_value(cert, x509.NameConstraints)
        if constraints is None:
            continue
        subtrees = constraints.permitted_subtrees or []
        dns = [n.value for n in subtrees if isinstance(n, x509.DNSName)]
        uri = [n.value for n in subtrees if isinstance(n, x509.UniformResourceIdentifier)]
        if dns:
            dns_sets.append(dns)
        if uri:
            uri_sets.append(uri)
    return dns_sets, uri_sets

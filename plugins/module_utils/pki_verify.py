# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Chain verification: RFC 5280 path validation reduced to what a private PKI needs.

verify_chain builds the path from a certificate to a trust anchor, then checks it in a
fixed order - validity dates, CA constraints, signatures, name constraints - so that the
error a user sees is always the most basic one, as one sentence naming the option.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_certs import basic_constraints, signed_by
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_names import (
    name_matches_domain,
    permitted_domains,
    san_values,
    uri_host,
    uri_host_matches,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import PkiError, extension_value, hashes, x509
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_time import aware, iso8601


def verify_chain(leaf, intermediates, roots, field, at=None):
    """Verify leaf -> intermediates -> one of ``roots``; PkiError saying why not.

    Every link signed by the next, every certificate inside its validity at ``at``, every
    issuer a CA allowed to sign certificates, pathlen respected and DNS/URI name
    constraints honoured. ``leaf`` may itself be a CA (an intermediate checked against a root).
    """
    path = build_path(leaf, intermediates, roots, field)
    _check_validity(path, aware(at), field)
    _check_ca_constraints(path, field)
    _check_signatures(path, field)
    _check_name_constraints(path, field)


def build_path(leaf, intermediates, roots, field):
    """[leaf, its issuer, ..., a root of ``roots``] from ``intermediates``; PkiError when there is none."""
    roots = list(roots or [])
    pool = list(intermediates or [])
    if not roots:
        raise PkiError(field, "%s cannot be verified because no trust anchor was given; give the root CA certificate in the trust bundle." % field)
    root_fingerprints = set(root.fingerprint(hashes.SHA256()) for root in roots)
    path = [leaf]
    current = leaf
    # Walk up at most len(pool)+1 links: a longer walk means a loop in the bundle.
    for _step in range(len(pool) + 2):
        if current.fingerprint(hashes.SHA256()) in root_fingerprints:
            return path
        anchor = _find_issuer(current, roots)
        if anchor is not None:
            path.append(anchor)
            return path
        parent = _find_issuer(current, pool)
        if parent is None:
            raise PkiError(
                field,
                "%s does not verify: no certificate in the chain or trust bundle issued %s "
                "(issuer %s); add the missing intermediate or use the right trust bundle." % (field, _describe(current), current.issuer.rfc4514_string()),
            )
        pool = [c for c in pool if c is not parent]
        path.append(parent)
        current = parent
    raise PkiError(field, "%s does not verify: the chain does not end at a trusted root; add the root to the trust bundle." % field)


def _check_validity(path, at, field):
    for cert in path:
        if cert.not_valid_after_utc < at:
            raise PkiError(field, "%s does not verify: %s expired on %s; renew it." % (field, _describe(cert), iso8601(cert.not_valid_after_utc)))
        if cert.not_valid_before_utc > at:
            raise PkiError(
                field,
                "%s does not verify: %s is not valid before %s; check the clock or reissue it." % (field, _describe(cert), iso8601(cert.not_valid_before_utc)),
            )


def _check_ca_constraints(path, field):
    """Every issuer of the path is a CA allowed to sign, with a pathlen the chain respects."""
    for depth, issuer_cert in enumerate(path[1:], start=1):
        is_ca, path_length = basic_constraints(issuer_cert)
        if not is_ca:
            raise PkiError(
                field,
                "%s does not verify: %s signs another certificate but is not a CA "
                "(basicConstraints CA:TRUE missing); reissue it as a CA." % (field, _describe(issuer_cert)),
            )
        usage = extension_value(issuer_cert, x509.KeyUsage)
        if usage is not None and not usage.key_cert_sign:
            raise PkiError(
                field,
                "%s does not verify: %s may not sign certificates (keyUsage keyCertSign "
                "missing); reissue it as a signing CA." % (field, _describe(issuer_cert)),
            )
        # CAs strictly between this issuer and the leaf count against its pathlen.
        intermediate_cas_below = depth - 1
        if path_length is not None and intermediate_cas_below > path_length:
            raise PkiError(
                field,
                "%s does not verify: %s allows %d intermediate CA(s) below it (pathlen) but the "
                "chain has %d; reissue the CAs with a larger path_length or a shorter chain."
                % (field, _describe(issuer_cert), path_length, intermediate_cas_below),
            )


def _check_signatures(path, field):
    for child, parent in zip(path, path[1:]):
        if not signed_by(child, parent):
            raise PkiError(
                field,
                "%s does not verify: the signature on %s does not match the key of %s; reissue it from that CA." % (field, _describe(child), _describe(parent)),
            )


def _check_name_constraints(path, field):
    """The DNS and URI names below each CA of the path lie inside its permitted domains."""
    leaf = path[0]
    for depth, issuer_cert in enumerate(path[1:], start=1):
        dns_sets, uri_sets = permitted_domains([issuer_cert])
        for below in path[:depth]:
            # RFC 5280 6.1.3: self-issued intermediate CAs are exempt from name constraints.
            if below is not leaf and basic_constraints(below)[0] and below.subject == below.issuer:
                continue
            dns_names, _ips, uris, _emails = san_values(below)
            for domains in dns_sets:
                for name in dns_names:
                    if not any(name_matches_domain(name, d) for d in domains):
                        raise PkiError(
                            field,
                            "%s does not verify: DNS name %r of %s is outside the name constraints "
                            "of %s; reissue it with a permitted name." % (field, name, _describe(below), _describe(issuer_cert)),
                        )
            for domains in uri_sets:
                for uri in uris:
                    if not any(uri_host_matches(uri_host(uri), d) for d in domains):
                        raise PkiError(
                            field,
                            "%s does not verify: URI %r of %s is outside the name constraints "
                            "of %s; reissue it with a permitted URI." % (field, uri, _describe(below), _describe(issuer_cert)),
                        )


def _find_issuer(cert, candidates):
    for candidate in candidates:
        if candidate.subject == cert.issuer and signed_by(cert, candidate):
            return candidate
    for candidate in candidates:
        if candidate.subject == cert.issuer:
            # Same name, wrong key: report it as a signature problem, not a missing link.
            return candidate
    return None


def _describe(cert):
    return "'%s'" % cert.subject.rfc4514_string()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: mtls_cert_info
short_description: Inspect certificates - names, expiry, renewal state and chain validity
version_added: 0.1.0
description:
  - Reads certificates from files (O(paths)), PEM text (O(content)) or a Kubernetes Secret (O(secret_name)) and
    returns, for each certificate, its
    subject, issuer, SANs, validity, days left, whether it is due for renewal, and - when a trust bundle is given -
    whether its chain verifies.
  - Reads certificate revocation lists too (O(crl_paths), O(crl_content), and the C(ca.crl) / C(ca-crl.pem) keys of the
    Secret) and returns, for each CRL, its issuer, CRL number, dates, revoked serials, whether it is stale (past its
    nextUpdate) and whether its signature verifies against a CA given to the module; for each certificate, whether a
    CRL of its issuer revokes it (RV(certificates[].revoked)).
  - A source may hold several certificates (a chain or fullchain file). Each certificate is reported; the
    certificates that follow it in the same source (and O(chain_path)) serve as intermediates when it is verified.
  - Never changes anything; private keys are never decoded, not even those stored in the same Secret.
author:
  - zerotrust.mtls maintainers (@zerotrust)
extends_documentation_fragment:
  - zerotrust.mtls.attributes
  - zerotrust.mtls.kube_auth
attributes:
  check_mode:
    support: full
    details:
      - Read-only; behaves the same in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  paths:
    description: Certificate files (PEM) to inspect.
    type: list
    elements: path
    default: []
  content:
    description: PEM text holding one or more certificates to inspect.
    type: str
  secret_name:
    description:
      - Read certificates from this Secret. The Kubernetes connection options apply only to this source.
    type: str
  secret_namespace:
    description: Namespace of O(secret_name).
    type: str
    default: default
  secret_keys:
    description:
      - Data keys of the Secret to read, for example V(tls.crt) or V(root-cert.pem).
      - By default every key whose name ends in C(.crt), C(.pem) or C(.cert) and does not contain C(key) - so
        C(tls.crt), C(ca.crt), C(ca-cert.pem), C(cert-chain.pem), C(root-cert.pem), but never C(tls.key) or
        C(ca-key.pem) - plus the CRL keys (names ending in C(.crl) or containing C(crl), such as C(ca.crl) and
        C(ca-crl.pem)), read as CRLs.
      - A key named here whose name contains C(crl) is read as a CRL.
    type: list
    elements: str
    default: []
  chain_path:
    description: Extra intermediate certificates (PEM) used when verifying every certificate.
    type: path
  trust_bundle_path:
    description: Trusted root certificates (PEM) to verify each certificate's chain against.
    type: path
  trust_bundle_content:
    description: Trusted root certificates as PEM text; combined with O(trust_bundle_path) when both are given.
    type: str
  crl_paths:
    description:
      - CRL files (PEM; a file may hold several CRLs, one per CA, as an edge bundle's C(ca.crl) does).
    type: list
    elements: path
    default: []
  crl_content:
    description: PEM text holding one or more CRLs.
    type: str
  renew_before:
    description:
      - The renewal rule that decides RV(certificates[].renewal_due) - a duration before expiry (V(10d)) or a
        percentage of the lifetime left (V(33%)). By default a third of the lifetime left, as M(zerotrust.mtls.mtls_cert)
        uses.
    type: str
requirements:
  - cryptography >= 42.0
seealso:
  - module: zerotrust.mtls.mtls_cert
  - module: zerotrust.mtls.mtls_ca
'''

EXAMPLES = r'''
- name: Check the server certificates against the root
  zerotrust.mtls.mtls_cert_info:
    paths:
      - /etc/pki/mtls/web.fullchain.crt
      - /etc/pki/mtls/api.crt
    chain_path: /etc/pki/mtls/intermediate.crt
    trust_bundle_path: /etc/pki/mtls/root.crt
  register: info

- name: Fail when anything expires within two weeks or does not verify
  ansible.builtin.assert:
    that:
      - info.certificates | selectattr('days_left', 'lt', 14) | list | length == 0
      - info.certificates | rejectattr('chain_valid') | list | length == 0

- name: Check what the mesh uses - the Istio cacerts Secret
  zerotrust.mtls.mtls_cert_info:
    secret_name: cacerts
    secret_namespace: istio-system
    kubeconfig: ~/.kube/config
  register: mesh_ca

- name: Is the leaked client certificate revoked, and is the CRL fresh?
  zerotrust.mtls.mtls_cert_info:
    paths: [/etc/pki/mtls/clients/ci-runner.crt]
    crl_paths: [/etc/pki/mtls/clusters/prod-eu1/ca.crl]
    trust_bundle_path: /etc/pki/mtls/root/ca.crt
    chain_path: /etc/pki/mtls/clusters/prod-eu1/ca.crt
  register: revocation
  failed_when: not revocation.certificates[0].revoked or revocation.crls[0].stale

- name: Inspect PEM held in a variable
  zerotrust.mtls.mtls_cert_info:
    content: "{{ lookup('ansible.builtin.file', 'client.crt') }}"
    renew_before: 25%
'''

RETURN = r'''
certificates:
  description: One entry per certificate found, in source order.
  returned: always
  type: list
  elements: dict
  contains:
    source:
      description: The file path, C(content) for O(content), or C(secret/<namespace>/<name>/<key>) for a Secret.
      type: str
    index:
      description: Position of the certificate within its source (0 is the first).
      type: int
    subject:
      description: Subject, RFC 4514.
      type: str
      sample: CN=web
    common_name:
      description: Subject common name, or null.
      type: str
    issuer:
      description: Issuer, RFC 4514.
      type: str
    serial:
      description: Serial number, uppercase hex.
      type: str
    not_before:
      description: Start of validity, ISO 8601 UTC.
      type: str
    not_after:
      description: Expiry, ISO 8601 UTC.
      type: str
    days_left:
      description: Whole days until expiry (negative once expired).
      type: int
    seconds_left:
      description: Seconds until expiry (negative once expired).
      type: int
    expired:
      description: Whether the certificate has expired.
      type: bool
    renewal_due:
      description: Whether the certificate is inside its renewal window (see O(renew_before)).
      type: bool
    sha256_fingerprint:
      description: SHA-256 fingerprint, uppercase colon-separated hex.
      type: str
    dns_names:
      description: DNS SANs.
      type: list
      elements: str
    ip_addresses:
      description: IP SANs.
      type: list
      elements: str
    uris:
      description: URI SANs (SPIFFE IDs).
      type: list
      elements: str
    emails:
      description: E-mail SANs.
      type: list
      elements: str
    is_ca:
      description: Whether basicConstraints says CA:TRUE.
      type: bool
    path_length:
      description: basicConstraints pathlen, or null.
      type: int
    key_type:
      description: Key type of the certificate's public key (V(ec_p256), V(rsa2048), ...).
      type: str
    chain_valid:
      description: Whether the certificate verifies against the trust bundle; null when no trust bundle was given.
      type: bool
    chain_error:
      description: Why it does not verify, or null.
      type: str
    revoked:
      description:
        - Whether a CRL of the certificate's issuer lists its serial; null when no CRL of that issuer was given.
        - A CRL whose signature does not verify against a CA given to the module (O(trust_bundle_path),
          O(chain_path), or the inspected certificates) is not used; one whose issuer certificate was not given is.
      type: bool
    revocation:
      description: The CRL entry (C(serial), C(reason), C(revocation_date)) when RV(certificates[].revoked) is true.
      type: dict
crls:
  description: One entry per CRL found, in source order.
  returned: always
  type: list
  elements: dict
  contains:
    source:
      description: The file path, C(crl_content), or C(secret/<namespace>/<name>/<key>).
      type: str
    index:
      description: Position of the CRL within its source.
      type: int
    issuer:
      description: Issuer, RFC 4514.
      type: str
    crl_number:
      description: The CRL number, or null when the CRL has none.
      type: int
    this_update:
      description: thisUpdate, ISO 8601 UTC.
      type: str
    next_update:
      description: nextUpdate, ISO 8601 UTC (null when absent).
      type: str
    seconds_left:
      description: Seconds until nextUpdate (negative once stale).
      type: int
    stale:
      description: Whether nextUpdate has passed - relying parties that check CRLs then refuse every certificate of the CA.
      type: bool
    refresh_due:
      description: Whether less than a third of the CRL's lifetime is left (M(zerotrust.mtls.mtls_crl) re-signs it then).
      type: bool
    signature_valid:
      description: Whether a CA certificate given to the module signed it; null when none has the CRL's issuer name.
      type: bool
    revoked:
      description: Revoked serials, uppercase hex.
      type: list
      elements: str
    revoked_entries:
      description: Revoked entries with C(serial), C(reason) and C(revocation_date).
      type: list
      elements: dict
    sha256_fingerprint:
      description: SHA-256 of the CRL (DER), uppercase colon-separated hex.
      type: str
all_chains_valid:
  description: Whether every certificate verified; null when no trust bundle was given.
  returned: always
  type: bool
'''

import base64
import binascii
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.zerotrust.mtls.plugins.module_utils import crl as crl_utils
from ansible_collections.zerotrust.mtls.plugins.module_utils import args_kube_auth
from ansible_collections.zerotrust.mtls.plugins.module_utils import kube
from ansible_collections.zerotrust.mtls.plugins.module_utils import kube_connection
from ansible_collections.zerotrust.mtls.plugins.module_utils import kube_errors
from ansible_collections.zerotrust.mtls.plugins.module_utils import kube_validation
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_certs import (
    basic_constraints,
    certificate_summary,
    load_certificates,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_renewal import needs_renewal
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    PkiError,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_time import parse_renew_before, utcnow
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_verify import verify_chain
from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import MtlsError, read_file


def is_crl_key(name):
    """ca.crl (ingress-nginx), ca-crl.pem (Istio cacerts): read as CRLs, never as certificates."""
    lowered = name.lower()
    return lowered.endswith('.crl') or 'crl' in lowered


def default_secret_key(name):
    """Certificate- or CRL-looking data keys; anything that may hold a private key is left alone."""
    lowered = name.lower()
    if 'key' in lowered:
        return False
    return lowered.endswith(('.crt', '.pem', '.cert')) or is_crl_key(name)


def secret_sources(params):
    """([(source label, certificates)], [(source label, CRLs)]) from the Secret named in the parameters."""
    name, namespace = params['secret_name'], params['secret_namespace']
    kube_validation.validate_object_name(name, 'secret_name')
    kube_validation.validate_namespace_name(namespace, 'secret_namespace')
    client = kube.KubeClient(kube_connection.ConnectionSettings.from_params(params))
    try:
        secret = client.get(kube.SECRET, name, namespace)
    finally:
        client.close()
    if secret is None:
        raise PkiError('secret_name', "secret_name %s does not exist in namespace %s; check the name and "
                                      "secret_namespace." % (name, namespace))
    data = secret.get('data') or {}
    wanted = params['secret_keys'] or sorted(key for key in data if default_secret_key(key))
    if not wanted:
        raise PkiError('secret_keys', "secret_keys: Secret %s/%s has no certificate-looking keys (%s); name the "
                                      "keys to read in secret_keys." % (namespace, name, ', '.join(sorted(data)) or 'no data'))
    sources, crl_sources = [], []
    for key in wanted:
        field = 'secret_keys'
        if key not in data:
            raise PkiError(field, "secret_keys entry %r is not a key of Secret %s/%s (it has %s); fix secret_keys."
                           % (key, namespace, name, ', '.join(sorted(data))))
        try:
            pem = base64.b64decode(data[key], validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise PkiError(field, "secret_keys entry %r of Secret %s/%s is not valid base64; fix the Secret."
                           % (key, namespace, name))
        label = 'secret/%s/%s/%s' % (namespace, name, key)
        try:
            if is_crl_key(key):
                crl_sources.append((label, crl_utils.load_crls(pem, 'secret_keys entry %r' % key)))
                continue
            certs = load_certificates(pem, 'secret_keys entry %r' % key)
        except PkiError as exc:
            raise PkiError(field, str(exc))
        sources.append((label, certs))
    return sources, crl_sources


def describe(cert, now, renew_before, intermediates, roots):
    """The summary of one certificate with its expiry and chain state."""
    summary = certificate_summary(cert)
    seconds_left = int((cert.not_valid_after_utc - now).total_seconds())
    summary.update(
        seconds_left=seconds_left,
        days_left=seconds_left // 86400,
        expired=seconds_left <= 0,
        renewal_due=needs_renewal(cert, renew_before, now),
        chain_valid=None,
        chain_error=None,
    )
    if roots is not None:
        try:
            verify_chain(cert, intermediates, roots, 'certificate', at=now)
            summary['chain_valid'] = True
        except PkiError as exc:
            summary['chain_valid'] = False
            summary['chain_error'] = str(exc)
    return summary


def usable_crls(crls):
    """{issuer name: [CRL]} of the CRLs that may decide revocation.

    A CRL whose issuer certificate we have must carry its signature (a forged CRL that
    "un-revokes" nothing is harmless, but a forged one listing a healthy certificate would
    be a false alarm); without that certificate it is taken as given.
    """
    by_issuer = {}
    for crl, summary in crls:
        if summary['signature_valid'] is False:
            continue
        by_issuer.setdefault(crl.issuer, []).append(crl)
    return by_issuer


def revocation_status(cert, by_issuer):
    crls = by_issuer.get(cert.issuer)
    if not crls:
        return None, None
    for crl in crls:
        entry = crl_utils.revocation_of(crl, cert)
        if entry is not None:
            return True, entry
    return False, None


def run_module(module):
    params = module.params
    if not params['paths'] and not params['content'] and not params['secret_name'] and not params['crl_paths'] \
            and not params['crl_content']:
        raise PkiError('paths', "paths, content, crl_paths, crl_content or secret_name is required; give "
                                "certificates or CRLs to inspect.")
    renew_before = parse_renew_before(params['renew_before'], 'renew_before')
    sources = []
    for index, path in enumerate(params['paths']):
        field = 'paths[%d]' % index
        sources.append((path, load_certificates(read_file(path, field), field)))
    if params['content']:
        sources.append(('content', load_certificates(params['content'], 'content')))
    crl_sources = []
    for index, path in enumerate(params['crl_paths']):
        field = 'crl_paths[%d]' % index
        crl_sources.append((path, crl_utils.load_crls(read_file(path, field), field)))
    if params['crl_content']:
        crl_sources.append(('crl_content', crl_utils.load_crls(params['crl_content'], 'crl_content')))
    if params['secret_name']:
        secret_certs, secret_crls = secret_sources(params)
        sources.extend(secret_certs)
        crl_sources.extend(secret_crls)
    extra_chain = []
    if params['chain_path']:
        extra_chain = load_certificates(read_file(params['chain_path'], 'chain_path'), 'chain_path')
    roots = None
    if params['trust_bundle_path'] or params['trust_bundle_content']:
        roots = []
        if params['trust_bundle_path']:
            roots += load_certificates(read_file(params['trust_bundle_path'], 'trust_bundle_path'),
                                       'trust_bundle_path')
        if params['trust_bundle_content']:
            roots += load_certificates(params['trust_bundle_content'], 'trust_bundle_content')
    now = utcnow()
    # Every CA certificate the module was given may have signed a CRL.
    ca_certs = [cert for cert in (roots or []) + extra_chain + [c for _s, certs in sources for c in certs]
                if basic_constraints(cert)[0]]
    crl_results, parsed = [], []
    for source, crls in crl_sources:
        for index, crl in enumerate(crls):
            candidates = [cert for cert in ca_certs if cert.subject == crl.issuer]
            summary = crl_utils.summary(crl, now, issuer_certs=candidates)
            summary.update(source=source, index=index)
            crl_results.append(summary)
            parsed.append((crl, summary))
    by_issuer = usable_crls(parsed)
    results = []
    for source, certs in sources:
        for index, cert in enumerate(certs):
            entry = describe(cert, now, renew_before, certs[index + 1:] + extra_chain, roots)
            entry['revoked'], entry['revocation'] = revocation_status(cert, by_issuer)
            entry.update(source=source, index=index)
            results.append(entry)
    all_valid = None if roots is None else all(entry['chain_valid'] for entry in results)
    return dict(changed=False, certificates=results, crls=crl_results, all_chains_valid=all_valid)


def main():
    argument_spec = dict(args_kube_auth.KUBE_AUTH_SPEC)
    argument_spec.update(
        paths=dict(type='list', elements='path', default=[]),
        content=dict(type='str'),
        chain_path=dict(type='path'),
        trust_bundle_path=dict(type='path'),
        trust_bundle_content=dict(type='str'),
        renew_before=dict(type='str'),
        crl_paths=dict(type='list', elements='path', default=[]),
        crl_content=dict(type='str'),
        secret_name=dict(type='str'),
        secret_namespace=dict(type='str', default='default', no_log=False),
        secret_keys=dict(type='list', elements='str', default=[], no_log=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib('cryptography'), exception=str(CRYPTOGRAPHY_IMPORT_ERROR))
    try:
        module.exit_json(**run_module(module))
    except (MtlsError, kube_errors.KubeError) as exc:
        module.fail_json(msg=str(exc), field=getattr(exc, 'field', None))
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg="mtls_cert_info failed unexpectedly: %s: %s" % (type(exc).__name__, exc),
                         exception=traceback.format_exc())


if __name__ == '__main__':
    main()

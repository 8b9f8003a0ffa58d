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
        C(ca-key.pem).
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
all_chains_valid:
  description: Whether every certificate verified; null when no trust bundle was given.
  returned: always
  type: bool
'''

import base64
import binascii
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.zerotrust.mtls.plugins.module_utils import files
from ansible_collections.zerotrust.mtls.plugins.module_utils import kube
from ansible_collections.zerotrust.mtls.plugins.module_utils import pki


def default_secret_key(name):
    """Certificate-looking data keys; anything that may hold a private key is left alone."""
    lowered = name.lower()
    return lowered.endswith(('.crt', '.pem', '.cert')) and 'key' not in lowered


def secret_sources(params):
    """[(source label, certificates)] from the Secret named in the parameters."""
    name, namespace = params['secret_name'], params['secret_namespace']
    kube.validate_object_name(name, 'secret_name')
    kube.validate_namespace_name(namespace, 'secret_namespace')
    client = kube.KubeClient(kube.ConnectionSettings.from_params(params))
    try:
        secret = client.get(kube.SECRET, name, namespace)
    finally:
        client.close()
    if secret is None:
        raise pki.PkiError('secret_name', "secret_name %s does not exist in namespace %s; check the name and "
                                          "secret_namespace." % (name, namespace))
    data = secret.get('data') or {}
    wanted = params['secret_keys'] or sorted(key for key in data if default_secret_key(key))
    if not wanted:
        raise pki.PkiError('secret_keys', "secret_keys: Secret %s/%s has no certificate-looking keys (%s); name the "
                                          "keys to read in secret_keys." % (namespace, name, ', '.join(sorted(data)) or 'no data'))
    sources = []
    for key in wanted:
        field = 'secret_keys'
        if key not in data:
            raise pki.PkiError(field, "secret_keys entry %r is not a key of Secret %s/%s (it has %s); fix secret_keys."
                               % (key, namespace, name, ', '.join(sorted(data))))
        try:
            pem = base64.b64decode(data[key], validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise pki.PkiError(field, "secret_keys entry %r of Secret %s/%s is not valid base64; fix the Secret."
                               % (key, namespace, name))
        label = 'secret/%s/%s/%s' % (namespace, name, key)
        try:
            certs = pki.load_certificates(pem, 'secret_keys entry %r' % key)
        except pki.PkiError as exc:
            raise pki.PkiError(field, str(exc))
        sources.append((label, certs))
    return sources


def _read_required(path, field):
    try:
        content = files.read_if_exists(path)
    except (IOError, OSError) as exc:
        raise pki.PkiError(field, "%s %s cannot be read: %s; fix its permissions." % (field, path, exc.strerror))
    if content is None:
        raise pki.PkiError(field, "%s %s does not exist; give an existing PEM file." % (field, path))
    return content


def describe(cert, now, renew_before, intermediates, roots):
    """The summary of one certificate with its expiry and chain state."""
    summary = pki.certificate_summary(cert)
    seconds_left = int((cert.not_valid_after_utc - now).total_seconds())
    summary.update(
        seconds_left=seconds_left,
        days_left=seconds_left // 86400,
        expired=seconds_left <= 0,
        renewal_due=pki.needs_renewal(cert, renew_before, now),
        chain_valid=None,
        chain_error=None,
    )
    if roots is not None:
        try:
            pki.verify_chain(cert, intermediates, roots, 'certificate', at=now)
            summary['chain_valid'] = True
        except pki.PkiError as exc:
            summary['chain_valid'] = False
            summary['chain_error'] = str(exc)
    return summary


def run_module(module):
    params = module.params
    if not params['paths'] and not params['content'] and not params['secret_name']:
        raise pki.PkiError('paths', "paths, content or secret_name is required; give certificates to inspect.")
    renew_before = pki.parse_renew_before(params['renew_before'], 'renew_before')
    sources = []
    for index, path in enumerate(params['paths']):
        field = 'paths[%d]' % index
        sources.append((path, pki.load_certificates(_read_required(path, field), field)))
    if params['content']:
        sources.append(('content', pki.load_certificates(params['content'], 'content')))
    if params['secret_name']:
        sources.extend(secret_sources(params))
    extra_chain = []
    if params['chain_path']:
        extra_chain = pki.load_certificates(_read_required(params['chain_path'], 'chain_path'), 'chain_path')
    roots = None
    if params['trust_bundle_path'] or params['trust_bundle_content']:
        roots = []
        if params['trust_bundle_path']:
            roots += pki.load_certificates(_read_required(params['trust_bundle_path'], 'trust_bundle_path'),
                                           'trust_bundle_path')
        if params['trust_bundle_content']:
            roots += pki.load_certificates(params['trust_bundle_content'], 'trust_bundle_content')
    now = pki._utcnow()
    results = []
    for source, certs in sources:
        for index, cert in enumerate(certs):
            entry = describe(cert, now, renew_before, certs[index + 1:] + extra_chain, roots)
            entry.update(source=source, index=index)
            results.append(entry)
    all_valid = None if roots is None else all(entry['chain_valid'] for entry in results)
    return dict(changed=False, certificates=results, all_chains_valid=all_valid)


def main():
    argument_spec = dict(kube.KUBE_AUTH_ARGSPEC)
    argument_spec.update(
        paths=dict(type='list', elements='path', default=[]),
        content=dict(type='str'),
        chain_path=dict(type='path'),
        trust_bundle_path=dict(type='path'),
        trust_bundle_content=dict(type='str'),
        renew_before=dict(type='str'),
        secret_name=dict(type='str'),
        secret_namespace=dict(type='str', default='default', no_log=False),
        secret_keys=dict(type='list', elements='str', default=[], no_log=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not pki.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib('cryptography'), exception=str(pki.CRYPTOGRAPHY_IMPORT_ERROR))
    try:
        module.exit_json(**run_module(module))
    except (pki.PkiError, kube.KubeError) as exc:
        module.fail_json(msg=str(exc), field=getattr(exc, 'field', None))
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg="mtls_cert_info failed unexpectedly: %s: %s" % (type(exc).__name__, exc),
                         exception=traceback.format_exc())


if __name__ == '__main__':
    main()

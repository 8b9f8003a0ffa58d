#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: mtls_ca
short_description: Create, renew and remove a root or intermediate CA for mutual TLS
version_added: 0.1.0
description:
  - Keeps a CA certificate and its private key in files - a self-signed root when no parent is given, or an
    intermediate signed by O(parent_cert_path) and O(parent_key_path).
  - The certificate has basicConstraints CA:TRUE (critical) with O(path_length), keyUsage keyCertSign and
    cRLSign (critical), subject and authority key identifiers, and optional critical name constraints
    (O(permitted_dns_domains), O(permitted_uri_domains)).
  - An existing CA is left alone unless it is due for renewal (RV(reason=renewed)), differs from the request
    (RV(reason=drift) - other key, issuer, subject, path length, name constraints or key type) or O(force=true)
    (RV(reason=forced)).
  - Renewal and drift re-sign the certificate with the B(existing) key, so certificates issued by the CA keep
    verifying against clients that pin its key. A new key is only made when there is none, when O(key_type)
    changed, or with O(force=true).
  - B(The private key of an existing CA is never replaced or removed without a copy); when it must be, a backup
    is taken even if O(backup=false), and its path is returned in RV(backup_files).
  - The parent is checked before anything is written - it must be a CA allowed to sign CAs (path length not 0),
    not expired, and match its key - and an intermediate may not outlive its parent.
  - Certificates start being valid 5 minutes before they are issued, to tolerate clock skew between peers.
  - B(Pair atomicity.) When O(cert_path), O(key_path) and O(chain_path) (if given) are in one directory - the
    layout of the C(ca) role and the playbooks (C(root/), C(intermediate/), C(clusters/<name>/)) - they are written
    in kubelet's AtomicWriter layout - each is a symlink C(..data/<name>), C(..data) is a symlink to a hidden version
    directory, and one rename switches the certificate, key and chain together, so no reader and no crash (not even
    SIGKILL) ever sees a new certificate beside an old key. Only these names are managed; other files and
    subdirectories of the directory are left exactly as they are. Plain files of older releases are converted
    on the first run without changing a byte (RV(reason=files_updated)); the next run reports no change.
  - When the paths are in different directories each file is replaced by its own rename, so a crash between two
    renames can leave a mismatched pair until the next run repairs it; pair atomicity needs one directory.
  - Version directories and temporary files that killed runs left in these directories are removed before
    anything else (not reported as a change; check mode removes nothing) - see RV(leftovers_removed).
author:
  - zerotrust.mtls maintainers (@zerotrust)
extends_documentation_fragment:
  - zerotrust.mtls.attributes
  - zerotrust.mtls.file_output
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: partial
    details:
      - Idempotent until the CA enters its renewal window (see O(renew_before)); then it is renewed once.
options:
  state:
    description:
      - V(present) creates or renews the CA; V(absent) removes O(cert_path), O(key_path) and O(chain_path)
        (the key always with a backup copy).
    type: str
    choices: [present, absent]
    default: present
  cert_path:
    description: The CA certificate file (PEM).
    type: path
    required: true
  key_path:
    description: The CA private key file (PEM, PKCS#8, encrypted when O(key_passphrase) is set), mode C(0600).
    type: path
    required: true
  chain_path:
    description:
      - When given, also write the chain of this CA - the CA certificate followed by the parent and the parent's
        own chain (O(parent_chain_path)) - for intermediates; the root alone for a root.
    type: path
  common_name:
    description: Subject common name. Required when O(state=present).
    type: str
  organization:
    description: Subject organization (O).
    type: str
  key_type:
    description: Type of the CA private key.
    type: str
    choices: [ec_p256, ec_p384, rsa2048, rsa3072, rsa4096, ed25519]
    default: ec_p256
  key_passphrase:
    description:
      - Encrypt the CA private key with this passphrase (best available PKCS#8 encryption), and use it to read an
        existing key.
      - An existing key that is not encrypted is encrypted with it once (a copy of the plain key is kept as a
        backup, listed in RV(backup_files)), reported with RV(reason=key_encrypted) when nothing else changed.
        Delete that backup once the passphrase is known to work.
    type: str
  valid_for:
    description:
      - Lifetime, a number with units C(w), C(d), C(h), C(m), C(s) such as V(3650d) or V(8760h).
      - Defaults to V(3650d) for a root and V(1825d) for an intermediate. An intermediate may not outlive its parent.
    type: str
  path_length:
    description:
      - Maximum number of intermediate CAs allowed below this CA (basicConstraints pathlen).
      - Defaults to no limit for a root and V(0) for an intermediate (it signs leaves only).
    type: int
  permitted_dns_domains:
    description:
      - Name constraints - certificates below this CA may only carry DNS names in these domains (and their
        subdomains; a leading dot means subdomains only).
    type: list
    elements: str
    default: []
  permitted_uri_domains:
    description:
      - Name constraints - URI SANs (SPIFFE IDs) below this CA must have one of these hosts, for example the
        SPIFFE trust domain V(prod.example.com). As RFC 5280 defines it for URIs, V(prod.example.com) allows exactly
        that host, and a leading dot (V(.example.com)) allows any host below the domain.
    type: list
    elements: str
    default: []
  parent_cert_path:
    description: The parent CA certificate; makes this CA an intermediate. Requires O(parent_key_path).
    type: path
  parent_key_path:
    description: The parent CA private key.
    type: path
  parent_key_passphrase:
    description: Passphrase of O(parent_key_path).
    type: str
  parent_chain_path:
    description: The parent's own issuers (PEM, from the parent's issuer up to the root), appended to O(chain_path).
    type: path
  renew_before:
    description:
      - When an existing CA is renewed - a duration before expiry (V(365d)) or a percentage of its lifetime left
        (V(20%)). By default when a third of its lifetime is left.
    type: str
  force:
    description: Make a new key and certificate even when the existing ones are fine. The old key is backed up.
    type: bool
    default: false
requirements:
  - cryptography >= 42.0
seealso:
  - module: zerotrust.mtls.mtls_cert
  - module: zerotrust.mtls.mtls_cert_info
'''

EXAMPLES = r'''
- name: Root CA, its key encrypted, restricted to one SPIFFE trust domain and DNS zone
  zerotrust.mtls.mtls_ca:
    cert_path: /etc/pki/mtls/root.crt
    key_path: /etc/pki/mtls/root.key
    key_passphrase: "{{ vault_root_passphrase }}"
    common_name: Example Root CA
    organization: Example
    key_type: ec_p384
    valid_for: 3650d
    path_length: 1
    permitted_dns_domains: [example.com, cluster.local]
    permitted_uri_domains: [prod.example.com]

- name: Per-cluster intermediate with the chain a server sends
  zerotrust.mtls.mtls_ca:
    cert_path: /etc/pki/mtls/prod-eu1.crt
    key_path: /etc/pki/mtls/prod-eu1.key
    chain_path: /etc/pki/mtls/prod-eu1.chain.crt
    common_name: prod-eu1 Intermediate CA
    parent_cert_path: /etc/pki/mtls/root.crt
    parent_key_path: /etc/pki/mtls/root.key
    parent_key_passphrase: "{{ vault_root_passphrase }}"
    valid_for: 365d
    renew_before: 90d

- name: Retire a CA (files are copied aside first)
  zerotrust.mtls.mtls_ca:
    cert_path: /etc/pki/mtls/old.crt
    key_path: /etc/pki/mtls/old.key
    state: absent
'''

RETURN = r'''
reason:
  description:
    - V(created), V(renewed), V(drift), V(forced) when a certificate was (or would be) written; V(files_updated)
      when only the chain file or a mode was fixed, or plain files were converted to the versioned layout;
      V(key_encrypted) when only a plain key was encrypted with O(key_passphrase);
      V(unchanged); V(removed) or V(absent) with O(state=absent).
  returned: always
  type: str
  sample: created
subject:
  description: Subject of the CA certificate (RFC 4514). Null in check mode when it would be (re)issued.
  returned: when O(state=present)
  type: str
  sample: CN=Example Root CA,O=Example
serial:
  description: Serial number, uppercase hex.
  returned: when O(state=present)
  type: str
not_before:
  description: Start of validity, ISO 8601 UTC (5 minutes before issuance).
  returned: when O(state=present)
  type: str
not_after:
  description: Expiry, ISO 8601 UTC.
  returned: when O(state=present)
  type: str
  sample: '2036-11-20T16:00:00Z'
sha256_fingerprint:
  description: SHA-256 fingerprint of the certificate, uppercase colon-separated hex.
  returned: when O(state=present)
  type: str
key_fingerprint:
  description: C(sha256:) and the hex SHA-256 of the public key - never the private key.
  returned: when O(state=present)
  type: str
cert_pem:
  description: The CA certificate, PEM.
  returned: when O(state=present)
  type: str
chain_pem:
  description: The CA certificate followed by its parent and the parent's chain (the root alone for a root).
  returned: when O(state=present)
  type: str
is_root:
  description: Whether this is a self-signed root.
  returned: when O(state=present)
  type: bool
backup_files:
  description: Copies of replaced or removed files.
  returned: always
  type: list
  elements: str
layout:
  description:
    - V(versioned) when the files are in one directory and switched together (see the description), V(files) when
      each is replaced on its own.
  returned: when O(state=present)
  type: str
  sample: versioned
leftovers_removed:
  description: How many leftovers of killed runs were removed (in check mode, would be) before anything else.
  returned: when O(state=present)
  type: int
  sample: 0
'''

import os
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.zerotrust.mtls.plugins.module_utils import files
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_build import build_ca, check_ca
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_certs import (
    certificate_pem,
    certificates_pem,
    load_certificate,
    load_issuer,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_fingerprints import key_fingerprint, sha256_fingerprint
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_keys import (
    KEY_TYPES,
    generate_private_key,
    is_encrypted_pem,
    key_type_of,
    load_private_key,
    private_key_pem,
    validate_key_type,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_renewal import ca_reissue_reason
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    PkiError,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_time import (
    iso8601,
    parse_duration,
    parse_renew_before,
    utcnow,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import MtlsError, read_file


def _state(cert, key, key_encrypted):
    if cert is None:
        return None
    state = {'subject': cert.subject.rfc4514_string(), 'serial': '%X' % cert.serial_number,
             'not_after': iso8601(cert.not_valid_after_utc), 'sha256_fingerprint': sha256_fingerprint(cert)}
    if key is not None:
        state['key_fingerprint'] = key_fingerprint(key)
        state['key_encrypted'] = key_encrypted
    return state


def remove_ca(module):
    params = module.params
    results, backups = [], []
    targets = [(params['cert_path'], False), (params['key_path'], True)]
    if params['chain_path']:
        targets.append((params['chain_path'], False))
    present = [(path, is_key) for path, is_key in targets if files.read_if_exists(path) is not None]
    before = dict((path, 'present') for path, _is_key in present)
    if not module.check_mode:
        for path, is_key in present:
            # A CA key is never destroyed without a copy; in the versioned layout its file in
            # the hidden version directory goes too.
            result = files.remove_versioned(path, backup=params['backup'] or is_key,
                                            backup_mode=files.KEY_MODE if is_key else None)
            results.append(result)
            if result.backup_path:
                backups.append(result.backup_path)
    outcome = dict(changed=bool(present), reason='removed' if present else 'absent', backup_files=backups)
    if module._diff:
        outcome['diff'] = {'before': before, 'after': dict((path, 'absent') for path in before)}
    return outcome


def ensure_ca(module):
    params = module.params
    now = utcnow()
    is_root = not params['parent_cert_path']
    if not params['common_name']:
        raise PkiError('common_name', "common_name is required with state=present; give the CA's subject common name.")
    key_type = validate_key_type(params['key_type'])
    valid_for = parse_duration(params['valid_for'] or ('3650d' if is_root else '1825d'), 'valid_for')
    path_length = params['path_length']
    if path_length is None and not is_root:
        path_length = 0
    renew_before = parse_renew_before(params['renew_before'], 'renew_before')
    cert_mode = files.parse_mode(params['mode'], files.CERT_MODE, 'mode')
    key_mode = files.parse_mode(params['key_mode'], files.KEY_MODE, 'key_mode')
    for field in ('cert_path', 'key_path', 'chain_path'):
        if params[field]:
            files.check_writable(params[field], field)
    paths = [params['cert_path'], params['key_path'], params['chain_path']]
    # One directory: the versioned layout (one rename switches the pair). Otherwise each
    # file is replaced on its own (one rename per file).
    directory = files.same_directory(paths)
    if directory is not None:
        for field in ('cert_path', 'key_path', 'chain_path'):
            name = os.path.basename(params[field] or '')
            if name.startswith('..'):
                raise files.FileError(params[field], "%s %s: names starting with '..' are reserved for the versioned "
                                                     "layout of %s; choose another file name." % (
                                                         field, params[field], directory), field)
        if len(set(os.path.basename(path) for path in paths if path)) != len([path for path in paths if path]):
            raise files.FileError(params['key_path'], "cert_path, key_path and chain_path must be three different files.",
                                  'key_path')

    issuer = None
    if not is_root:
        issuer = load_issuer(
            read_file(params['parent_cert_path'], 'parent_cert_path'),
            read_file(params['parent_key_path'], 'parent_key_path'),
            'parent_cert_path', 'parent_key_path', passphrase=params['parent_key_passphrase'],
            chain_pem=read_file(params['parent_chain_path'], 'parent_chain_path') if params['parent_chain_path'] else None,
            chain_field='parent_chain_path', now=now, passphrase_field='parent_key_passphrase')
    # Validate the request (path length under the parent, lifetime within the parent's,
    # name constraint syntax) before looking at what exists, so bad input always fails.
    check_ca(params['common_name'], valid_for, issuer=issuer, path_length=path_length,
             permitted_dns_domains=params['permitted_dns_domains'],
             permitted_uri_domains=params['permitted_uri_domains'], now=now)

    # What killed runs left (never a change; check mode only counts it), once the
    # request is known to be valid.
    leftovers = []
    for leftover_dir in sorted(set(os.path.dirname(os.path.abspath(path)) for path in paths if path)):
        leftovers += files.remove_leftovers(
            leftover_dir, names=[os.path.basename(path) for path in paths
                                 if path and os.path.dirname(os.path.abspath(path)) == leftover_dir],
            dry_run=module.check_mode)

    cert_bytes = read_file(params['cert_path'], 'cert_path', required=False)
    key_bytes = read_file(params['key_path'], 'key_path', required=False)
    cert = key = None
    # A plain key with a passphrase given is encrypted in place (same key), once.
    encrypt_existing_key = bool(key_bytes is not None and params['key_passphrase']
                                and not is_encrypted_pem(key_bytes))
    if key_bytes is not None:
        # An existing CA key we cannot read is an error, never a reason to make a new one:
        # that would silently orphan every certificate the CA has issued.
        key = load_private_key(key_bytes, 'key_path', None if encrypt_existing_key else params['key_passphrase'],
                               passphrase_field='key_passphrase')
    if cert_bytes is not None:
        try:
            cert = load_certificate(cert_bytes, 'cert_path')
        except PkiError:
            cert = None  # unreadable certificate: re-sign it from the key (drift)

    if params['force']:
        reason = 'forced'
    elif cert_bytes is not None and cert is None:
        reason = 'drift'
    else:
        reason = ca_reissue_reason(
            cert, key, params['common_name'], key_type, organization=params['organization'],
            path_length=path_length, permitted_dns_domains=params['permitted_dns_domains'],
            permitted_uri_domains=params['permitted_uri_domains'], issuer=issuer,
            renew_before=renew_before, now=now)

    new_key_needed = reason is not None and (
        key is None or params['force'] or key_type_of(key) != key_type)
    new_cert = new_key = None
    if reason is not None and not module.check_mode:
        new_key = generate_private_key(key_type) if new_key_needed else key
        new_cert = build_ca(
            new_key, params['common_name'], valid_for, organization=params['organization'], issuer=issuer,
            path_length=path_length, permitted_dns_domains=params['permitted_dns_domains'],
            permitted_uri_domains=params['permitted_uri_domains'], now=now)

    final_cert = new_cert if new_cert is not None else (cert if reason is None else None)
    final_key = new_key if new_key is not None else (key if reason is None or not new_key_needed else None)
    parent_chain = ([issuer.cert] + issuer.chain) if issuer is not None else []

    changed = reason is not None
    backups = []
    batch = files.VersionedBatch(directory) if directory is not None else files.AtomicBatch()
    try:
        planned = []
        if final_cert is not None:
            cert_pem = certificate_pem(final_cert)
            planned.append((params['cert_path'], cert_pem, cert_mode, False, params['backup']))
            if params['chain_path']:
                planned.append((params['chain_path'], certificates_pem([final_cert] + parent_chain), cert_mode,
                                False, params['backup']))
        if new_key_needed and new_key is not None:
            # Replacing an existing CA key always keeps a copy of the old one.
            planned.append((params['key_path'], private_key_pem(new_key, params['key_passphrase']), key_mode,
                            True, params['backup'] or key_bytes is not None))
        elif encrypt_existing_key:
            # The plain key is kept as a backup: if the passphrase turns out to be wrong or
            # lost, that copy is the only way back to the CA.
            planned.append((params['key_path'], private_key_pem(key, params['key_passphrase']), key_mode,
                            True, True))
            reason = reason or 'key_encrypted'
        elif key_bytes is not None and (files.current_mode(params['key_path']) != key_mode
                                        or not batch.in_layout(params['key_path'])):
            # The key stays: only its mode or (same directory) the versioned layout can need fixing.
            planned.append((params['key_path'], key_bytes, key_mode, True, False))
        for path, content, mode, is_key, backup in planned:
            if not files.needs_write(path, content, mode) and batch.in_layout(path):
                continue
            # Plain files of older releases are converted to the versioned layout (same bytes).
            changed = True
            reason = reason or 'files_updated'
            if not module.check_mode:
                batch.stage(path, content, mode, backup=backup, backup_mode=files.KEY_MODE if is_key else None,
                            field='key_path' if is_key else ('chain_path' if path == params['chain_path'] else 'cert_path'))
        if not module.check_mode:
            backups = sorted(path for path in batch.commit().values() if path)
    finally:
        batch.abort()

    outcome = dict(changed=changed, reason=reason or 'unchanged', backup_files=backups, is_root=is_root,
                   layout='versioned' if directory is not None else 'files', leftovers_removed=len(leftovers),
                   subject=None, serial=None, not_before=None, not_after=None, sha256_fingerprint=None,
                   key_fingerprint=None, cert_pem=None, chain_pem=None)
    if final_cert is not None:
        outcome.update(
            subject=final_cert.subject.rfc4514_string(), serial='%X' % final_cert.serial_number,
            not_before=iso8601(final_cert.not_valid_before_utc), not_after=iso8601(final_cert.not_valid_after_utc),
            sha256_fingerprint=sha256_fingerprint(final_cert),
            cert_pem=certificate_pem(final_cert).decode('ascii'),
            chain_pem=certificates_pem([final_cert] + parent_chain).decode('ascii'))
    if final_key is not None:
        outcome['key_fingerprint'] = key_fingerprint(final_key)
    if module._diff:
        after = _state(final_cert, final_key, bool(params['key_passphrase'])) if final_cert is not None else (
            '(would be %s)' % reason if reason else None)
        before = _state(cert, key, key_bytes is not None and is_encrypted_pem(key_bytes))
        outcome['diff'] = {'before': before or {}, 'after': after or {}}
    return outcome


def argument_spec():
    return dict(
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        cert_path=dict(type='path', required=True),
        key_path=dict(type='path', required=True, no_log=False),
        chain_path=dict(type='path'),
        common_name=dict(type='str'),
        organization=dict(type='str'),
        key_type=dict(type='str', choices=list(KEY_TYPES), default='ec_p256', no_log=False),
        key_passphrase=dict(type='str', no_log=True),
        valid_for=dict(type='str'),
        path_length=dict(type='int'),
        permitted_dns_domains=dict(type='list', elements='str', default=[]),
        permitted_uri_domains=dict(type='list', elements='str', default=[]),
        parent_cert_path=dict(type='path'),
        parent_key_path=dict(type='path', no_log=False),
        parent_key_passphrase=dict(type='str', no_log=True),
        parent_chain_path=dict(type='path'),
        renew_before=dict(type='str'),
        force=dict(type='bool', default=False),
        backup=dict(type='bool', default=False),
        mode=dict(type='raw', default='0644'),
        key_mode=dict(type='raw', default='0600', no_log=False),
    )


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_together=[('parent_cert_path', 'parent_key_path')],
        required_by={'parent_key_passphrase': 'parent_key_path', 'parent_chain_path': 'parent_cert_path'},
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib('cryptography'), exception=str(CRYPTOGRAPHY_IMPORT_ERROR))
    try:
        if module.params['state'] == 'absent':
            module.exit_json(**remove_ca(module))
        module.exit_json(**ensure_ca(module))
    except MtlsError as exc:
        module.fail_json(msg=str(exc), field=getattr(exc, 'field', None))
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg="mtls_ca failed unexpectedly: %s: %s" % (type(exc).__name__, exc),
                         exception=traceback.format_exc())


if __name__ == '__main__':
    main()

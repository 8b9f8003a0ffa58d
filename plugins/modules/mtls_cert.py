#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: mtls_cert
short_description: Issue leaf certificates for mutual TLS from a local CA, one or a thousand per call
version_added: 0.1.0
description:
  - Issues server, client or dual-use leaf certificates signed by a CA whose certificate and key are files
    on the target (for example made by M(zerotrust.mtls.mtls_ca)).
  - Works on one certificate (O(cert_path) and O(key_path)) or on a batch (O(certs) with O(dest_dir)), where
    each item is written as C(<dest_dir>/<name>.crt) and C(<dest_dir>/<name>.key). A batch of 1,000 certificates
    takes about a second in a single task, so loop inside the module, not over the task.
  - In batch mode a certificate and its key are replaced together, even if the run is killed - the layout of
    kubelet's AtomicWriter. The files live in a hidden version directory C(<dest_dir>/..<timestamp>.<pid>.<n>/),
    C(<dest_dir>/..data) is a symlink to the current version, and every visible name (C(<name>.crt),
    C(<name>.key), C(<name>.chain.crt), C(<name>.fullchain.crt)) is a symlink C(..data/<name>.crt) and so on that
    never changes. A run writes a new version (unchanged files hard-linked into it), then renames a new
    C(..data) over the old one - one atomic step switches every file - and removes the old version. Readers that
    open the visible names (nginx, Envoy, M(zerotrust.mtls.mtls_secret)) see the old set or the new set, never a
    mix. Tools that list the directory should skip names starting with a dot and follow symlinks.
  - A O(dest_dir) holding plain files from an older release is converted on the first run without changing a
    byte (reason V(files_updated) for the items that were only converted); the next run reports no change.
  - Every run first removes what killed runs left in the directory - version directories C(..data) does not
    point to, temporary symlinks, and C(.<name>.<pid>.<n>.tmp) files - when the process that made them no longer
    exists. This is not reported as a change; check mode removes nothing and RV(leftovers_removed) says what
    would go.
  - Single mode (O(cert_path), O(key_path), which may be in different directories) writes plain files, each
    replaced atomically on its own; replacing a certificate and its key as one step is a property of batch mode.
  - A certificate is (re)issued when it is missing, unreadable, does not match its key, was not issued by the
    given CA, is expired or due for renewal, or when its subject, SANs, usage or key type differ from the
    request. The first such reason is returned per certificate; otherwise nothing is written.
  - The CA is loaded and checked once per call (it must be a CA, not expired, and match its key); every item is
    validated and every certificate built before the first file is written, so a failure changes nothing.
  - Certificates start being valid 5 minutes before they are issued, so that peers whose clocks are slightly
    behind accept them at once.
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
      - Idempotent until a certificate enters its renewal window (see O(renew_before)); then it is reissued once.
  action:
    description: Has an action plugin that runs in the controller's process when the target is the controller.
    support: full
    details:
      - When the task runs on the controller as the controller's user (connection C(local), no C(become),
        no C(async), no C(environment)), the action plugin runs this module's code directly in the worker
        process Ansible forks for the task. That skips a new Python interpreter, the module payload and a
        JSON round trip of every item, which for a 1,000-certificate no-change run is most of the time.
        Arguments are validated with the same specification, the result is the same, and no_log values are
        masked the same way.
      - Set the variable C(mtls_in_process=false) to always run it as an ordinary module, for example to use
        the C(ansible_python_interpreter) of the host instead of the controller's Python.
options:
  ca_cert_path:
    description: The issuing CA certificate (PEM). The first certificate in the file is the issuer.
    type: path
    required: true
  ca_key_path:
    description: The issuing CA private key (PEM, optionally encrypted).
    type: path
    required: true
  ca_key_passphrase:
    description: Passphrase of O(ca_key_path) when it is encrypted.
    type: str
  ca_chain_path:
    description:
      - The issuers of the CA up to (and optionally including) the root, PEM, in order from the CA's own
        issuer upwards. A copy of the CA certificate in this file is ignored.
      - Each link is checked. It is what the chain files contain after the CA certificate.
    type: path
  cert_path:
    description: Where to write the certificate in single mode. Requires O(key_path); excludes O(certs).
    type: path
  key_path:
    description: Where to write the private key in single mode.
    type: path
  chain_path:
    description:
      - Single mode; when given, also write the chain a TLS peer must send after its certificate there - the
        issuing CA certificate followed by the contents of O(ca_chain_path).
    type: path
  fullchain_path:
    description: Single mode; when given, also write the certificate followed by the chain (as in O(chain_path)).
    type: path
  certs:
    description:
      - Batch mode; one entry per certificate. Values not given in an item default to the top-level options.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - File name stem of this certificate - C(<dest_dir>/<name>.crt), C(<dest_dir>/<name>.key).
          - Letters, digits, C(.), C(_) and C(-) only, not starting with a dot; unique within O(certs).
        type: str
        required: true
      common_name:
        description: Subject common name. Defaults to O(certs[].name).
        type: str
      organization:
        description: Subject organization. Defaults to O(organization).
        type: str
      dns_names:
        description: DNS subject alternative names. Defaults to O(dns_names).
        type: list
        elements: str
      ip_addresses:
        description: IP subject alternative names. Defaults to O(ip_addresses).
        type: list
        elements: str
      uris:
        description: URI subject alternative names (SPIFFE IDs). Defaults to O(uris).
        type: list
        elements: str
      emails:
        description: E-mail subject alternative names. Defaults to O(emails).
        type: list
        elements: str
      usage:
        description: Extended key usage. Defaults to O(usage).
        type: str
        choices: [server, client, both]
      key_type:
        description: Private key type. Defaults to O(key_type).
        type: str
        choices: [ec_p256, ec_p384, rsa2048, rsa3072, rsa4096, ed25519]
      valid_for:
        description: Lifetime. Defaults to O(valid_for).
        type: str
  dest_dir:
    description: Batch mode; the existing directory that receives C(<name>.crt) and C(<name>.key) for each item.
    type: path
  write_chain:
    description: Batch mode; also write C(<dest_dir>/<name>.chain.crt) (the CA certificate and O(ca_chain_path)).
    type: bool
    default: false
  write_fullchain:
    description: Batch mode; also write C(<dest_dir>/<name>.fullchain.crt) (certificate followed by its chain).
    type: bool
    default: false
  common_name:
    description: Subject common name. Required in single mode; the default of O(certs[].common_name) is the item name.
    type: str
  organization:
    description: Subject organization (O).
    type: str
  dns_names:
    description: DNS subject alternative names; a leading C(*.) makes a wildcard.
    type: list
    elements: str
    default: []
  ip_addresses:
    description: IPv4 or IPv6 subject alternative names.
    type: list
    elements: str
    default: []
  uris:
    description:
      - URI subject alternative names. SPIFFE IDs (C(spiffe://trust-domain/path)) are checked against the SPIFFE
        specification and at most one is allowed per certificate.
    type: list
    elements: str
    default: []
  emails:
    description: E-mail (rfc822Name) subject alternative names.
    type: list
    elements: str
    default: []
  usage:
    description:
      - V(server) sets extended key usage serverAuth, V(client) clientAuth, V(both) both.
      - Key usage is digitalSignature (plus keyEncipherment for RSA keys); basicConstraints is CA:FALSE, critical.
    type: str
    choices: [server, client, both]
    default: both
  key_type:
    description: Type of the private key.
    type: str
    choices: [ec_p256, ec_p384, rsa2048, rsa3072, rsa4096, ed25519]
    default: ec_p256
  valid_for:
    description:
      - Lifetime of a newly issued certificate, as a number with units C(w), C(d), C(h), C(m), C(s), for example
        V(30d) or V(1d12h). It may not reach beyond the CA's own expiry.
    type: str
    default: 30d
  renew_before:
    description:
      - When an existing certificate is renewed. Either a duration before expiry (V(10d)) or a percentage of its
        lifetime left (V(33%)).
      - By default a certificate is renewed when a third of its lifetime is left, as cert-manager does.
    type: str
  rotate_key:
    description:
      - Generate a new private key whenever a certificate is reissued, as cert-manager does by default.
      - When V(false), an existing readable key of the right type is reused.
    type: bool
    default: true
  force:
    description: Reissue every certificate (and key, following O(rotate_key)) even when nothing else requires it.
    type: bool
    default: false
requirements:
  - cryptography >= 42.0
seealso:
  - module: zerotrust.mtls.mtls_ca
  - module: zerotrust.mtls.mtls_cert_info
'''

EXAMPLES = r'''
- name: One server certificate with its chain
  zerotrust.mtls.mtls_cert:
    ca_cert_path: /etc/pki/mtls/intermediate.crt
    ca_key_path: /etc/pki/mtls/intermediate.key
    ca_key_passphrase: "{{ vault_intermediate_passphrase }}"
    ca_chain_path: /etc/pki/mtls/root.crt
    cert_path: /etc/pki/mtls/web.crt
    key_path: /etc/pki/mtls/web.key
    fullchain_path: /etc/pki/mtls/web.fullchain.crt
    common_name: web.prod.example.com
    dns_names: [web.prod.example.com, web.prod.svc.cluster.local]
    uris: [spiffe://prod.example.com/ns/prod/sa/web]
    usage: server
    valid_for: 90d

- name: A thousand client certificates in one call
  zerotrust.mtls.mtls_cert:
    ca_cert_path: /etc/pki/mtls/intermediate.crt
    ca_key_path: /etc/pki/mtls/intermediate.key
    dest_dir: /etc/pki/mtls/clients
    usage: client
    valid_for: 30d
    renew_before: 33%
    certs: "{{ range(1000) | map('string') | map('regex_replace', '^', 'client-') | map('community.general.dict_kv', 'name') | list }}"

- name: Per-item overrides
  zerotrust.mtls.mtls_cert:
    ca_cert_path: /etc/pki/mtls/intermediate.crt
    ca_key_path: /etc/pki/mtls/intermediate.key
    dest_dir: /etc/pki/mtls/services
    write_fullchain: true
    certs:
      - name: api
        dns_names: [api.example.com]
        usage: server
      - name: billing-client
        common_name: billing
        usage: client
        key_type: ed25519
'''

RETURN = r'''
changed:
  description: Whether any file was (or in check mode would be) written.
  returned: always
  type: bool
certs:
  description: One entry per certificate, in the order requested. In check mode, values of certificates that would be
    issued are null.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The item name (in single mode the file name of O(cert_path) without its extension).
      type: str
      sample: client-0001
    changed:
      description: Whether files of this certificate were (or would be) written.
      type: bool
    reason:
      description:
        - Why the certificate was issued - V(missing), V(unreadable), V(key_mismatch), V(issuer_changed),
          V(expired), V(renewal_due), V(subject_changed), V(sans_changed), V(usage_changed),
          V(key_type_changed), V(forced) - or V(files_updated) when only a mode or chain file was fixed, or
          V(unchanged).
      type: str
      sample: renewal_due
    serial:
      description: Serial number of the certificate, uppercase hex.
      type: str
      sample: 5A1B8C...
    not_after:
      description: Expiry, ISO 8601 UTC.
      type: str
      sample: '2026-12-22T15:55:00Z'
    sha256_fingerprint:
      description: SHA-256 fingerprint of the certificate, uppercase colon-separated hex.
      type: str
reason:
  description: Single mode; as RV(certs[].reason).
  returned: when O(cert_path) is used
  type: str
serial:
  description: Single mode; as RV(certs[].serial).
  returned: when O(cert_path) is used
  type: str
not_after:
  description: Single mode; as RV(certs[].not_after).
  returned: when O(cert_path) is used
  type: str
sha256_fingerprint:
  description: Single mode; as RV(certs[].sha256_fingerprint).
  returned: when O(cert_path) is used
  type: str
key_fingerprint:
  description: Single mode; C(sha256:) and the hex SHA-256 of the public key - never the private key.
  returned: when O(cert_path) is used
  type: str
  sample: sha256:3f1c...
cert_path:
  description: Single mode; the certificate file.
  returned: when O(cert_path) is used
  type: str
key_path:
  description: Single mode; the private key file.
  returned: when O(cert_path) is used
  type: str
summary:
  description: Count of certificates per reason.
  returned: always
  type: dict
  sample: {unchanged: 998, renewal_due: 2}
leftovers_removed:
  description:
    - How many leftovers of killed runs were removed (in check mode, would be) before anything else - see the
      description. Removing them is not a change.
  returned: always
  type: int
  sample: 0
backup_files:
  description: Copies made of replaced files when O(backup=true).
  returned: always
  type: list
  elements: str
'''

import os
import re
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.zerotrust.mtls.plugins.module_utils import files
from ansible_collections.zerotrust.mtls.plugins.module_utils import pki

KEY_TYPE_CHOICES = list(pki.KEY_TYPES)
USAGE_CHOICES = list(pki.USAGES)
_ITEM_NAME = re.compile(r'^[A-Za-z0-9_-][A-Za-z0-9._-]*$')
_INVOCATION_ECHO_LIMIT = 50
_ITEM_KEYS = ('name', 'common_name', 'organization', 'dns_names', 'ip_addresses', 'uris', 'emails',
              'usage', 'key_type', 'valid_for')


class _Item(object):
    """One requested certificate and what we found and decided about it."""

    __slots__ = ('name', 'spec', 'cert_path', 'key_path', 'chain_path', 'fullchain_path',
                 'cert_bytes', 'key_bytes', 'cert_mode', 'key_mode', 'cert', 'key', 'reason', 'new_cert', 'new_key',
                 'new_cert_pem', 'new_key_pem', 'changed')

    def __init__(self, name, spec, cert_path, key_path, chain_path=None, fullchain_path=None):
        self.name = name
        self.spec = spec
        self.cert_path = cert_path
        self.key_path = key_path
        self.chain_path = chain_path
        self.fullchain_path = fullchain_path
        self.cert = self.key = self.new_cert = self.new_key = None
        self.cert_bytes = self.key_bytes = self.new_cert_pem = self.new_key_pem = None
        self.cert_mode = self.key_mode = None
        self.reason = None
        self.changed = False


def _read_with_mode(path, field):
    try:
        return files.read_with_mode(path)
    except (IOError, OSError) as exc:
        raise files.FileError(path, "%s %s cannot be read: %s; fix its permissions." % (field, path, exc.strerror), field)


def _read(path, field):
    try:
        return files.read_if_exists(path)
    except (IOError, OSError) as exc:
        raise files.FileError(path, "%s %s cannot be read: %s; fix its permissions." % (field, path, exc.strerror), field)


def _build_items(params):
    defaults = dict((key, params.get(key)) for key in _ITEM_KEYS if key != 'name')
    if params['certs'] is not None:
        if not params['dest_dir']:
            raise pki.PkiError('dest_dir', "dest_dir is required with certs; give the directory for <name>.crt and <name>.key.")
        dest_dir = params['dest_dir']
        if not os.path.isdir(dest_dir):
            raise pki.PkiError('dest_dir', "dest_dir %s is not an existing directory; create it first." % dest_dir)
        files.check_writable(os.path.join(dest_dir, '.probe'), 'dest_dir')
        if not params['certs']:
            raise pki.PkiError('certs', "certs is empty; list at least one certificate or use cert_path.")
        items, seen, parsed_valid_for = [], set(), {}
        for index, entry in enumerate(params['certs']):
            prefix = 'certs[%d].' % index
            if not isinstance(entry, dict):
                raise pki.PkiError('certs[%d]' % index, "certs[%d] must be a dictionary with at least a name." % index)
            name = entry.get('name')
            if not isinstance(name, str) or not _ITEM_NAME.match(name):
                raise pki.PkiError(prefix + 'name', "%sname must be a file name stem of letters, digits, '.', '_' and '-' "
                                                    "not starting with a dot, got %r." % (prefix, name))
            if name in seen:
                raise pki.PkiError(prefix + 'name', "%sname %r is used twice in certs; give each certificate its own name."
                                   % (prefix, name))
            seen.add(name)
            merged = dict(defaults)
            for key, value in entry.items():
                if value is not None:
                    merged[key] = value
            valid_for = merged['valid_for']
            if valid_for not in parsed_valid_for:
                parsed_valid_for[valid_for] = pki.parse_duration(valid_for, prefix + 'valid_for')
            spec = pki.LeafSpec(
                merged.get('common_name') or name, dns_names=merged['dns_names'], ip_addresses=merged['ip_addresses'],
                uris=merged['uris'], emails=merged['emails'], usage=merged['usage'], key_type=merged['key_type'],
                valid_for=parsed_valid_for[valid_for], organization=merged['organization'], field_prefix=prefix)
            base = os.path.join(dest_dir, name)
            items.append(_Item(
                name, spec, base + '.crt', base + '.key',
                chain_path=(base + '.chain.crt') if params['write_chain'] else None,
                fullchain_path=(base + '.fullchain.crt') if params['write_fullchain'] else None))
        return items
    if not params['cert_path'] or not params['key_path']:
        raise pki.PkiError('cert_path', "cert_path and key_path (one certificate) or certs with dest_dir (a batch) "
                                        "are required; give one of them.")
    if not params['common_name']:
        raise pki.PkiError('common_name', "common_name is required with cert_path; give the subject common name.")
    spec = pki.LeafSpec(
        params['common_name'], dns_names=params['dns_names'], ip_addresses=params['ip_addresses'],
        uris=params['uris'], emails=params['emails'], usage=params['usage'], key_type=params['key_type'],
        valid_for=pki.parse_duration(params['valid_for'], 'valid_for'), organization=params['organization'])
    for field in ('cert_path', 'key_path', 'chain_path', 'fullchain_path'):
        if params[field]:
            files.check_writable(params[field], field)
    name = os.path.splitext(os.path.basename(params['cert_path']))[0]
    return [_Item(name, spec, params['cert_path'], params['key_path'], params['chain_path'], params['fullchain_path'])]


def _inspect(item, issuer, renew_before, now, force):
    """Read the existing files of ``item`` and decide whether and why to reissue."""
    item.cert_bytes, item.cert_mode = _read_with_mode(item.cert_path, 'cert_path')
    item.key_bytes, item.key_mode = _read_with_mode(item.key_path, 'key_path')
    cert_error = key_error = None
    if item.cert_bytes is not None:
        try:
            item.cert = pki.load_certificate(item.cert_bytes, 'cert_path')
        except pki.PkiError as exc:
            cert_error = exc
    if item.key_bytes is not None:
        try:
            item.key = pki.load_private_key(item.key_bytes, 'key_path')
        except pki.PkiError as exc:
            key_error = exc
    reason = pki.reissue_reason(
        item.spec, issuer, item.cert, item.key, cert_error=cert_error, key_error=key_error,
        renew_before=renew_before, now=now, cert_missing=item.cert_bytes is None,
        key_missing=item.key_bytes is None)
    if reason is None and force:
        reason = 'forced'
    item.reason = reason


def _planned_files(item, chain_pem, cert_mode, key_mode):
    """[(path, content, mode, is_key, bytes_on_disk, mode_on_disk, option)] that ``item`` should have on disk.

    ``bytes_on_disk`` and ``mode_on_disk`` are what _inspect read (None: no file), or files.UNREAD
    and None for the chain files.

    In check mode a certificate to be issued has no content yet; nothing is written then.
    """
    cert_pem = item.new_cert_pem if item.new_cert_pem is not None else item.cert_bytes
    key_pem = item.new_key_pem if item.new_key_pem is not None else item.key_bytes
    planned = [(item.cert_path, cert_pem, cert_mode, False, item.cert_bytes, item.cert_mode, 'cert_path'),
               (item.key_path, key_pem, key_mode, True, item.key_bytes, item.key_mode, 'key_path')]
    if item.chain_path:
        planned.append((item.chain_path, chain_pem, cert_mode, False, files.UNREAD, None, 'chain_path'))
    if item.fullchain_path:
        planned.append((item.fullchain_path, (cert_pem or b'') + chain_pem, cert_mode, False, files.UNREAD, None,
                        'fullchain_path'))
    return planned


def _current_cert_and_key(item):
    if item.new_cert is not None:
        return item.new_cert, item.new_key
    if item.reason in (None, 'files_updated'):
        return item.cert, item.key
    return None, None  # check mode: would be issued, nothing known yet


def _result_entry(item):
    # Kept to the essentials: with 1,000 certificates, every extra field costs time in
    # Ansible's result processing.
    cert, _key = _current_cert_and_key(item)
    entry = {'name': item.name, 'changed': item.changed, 'reason': item.reason or 'unchanged',
             'serial': None, 'not_after': None, 'sha256_fingerprint': None}
    if cert is not None:
        entry['serial'] = '%X' % cert.serial_number
        entry['not_after'] = pki.iso8601(cert.not_valid_after_utc)
        entry['sha256_fingerprint'] = pki.sha256_fingerprint(cert)
    return entry


def _diff_state(cert, key):
    if cert is None:
        return None
    state = {'serial': '%X' % cert.serial_number, 'not_after': pki.iso8601(cert.not_valid_after_utc),
             'sha256_fingerprint': pki.sha256_fingerprint(cert)}
    if key is not None:
        state['key_fingerprint'] = pki.key_fingerprint(key)
    return state


def run_module(module):
    """Does the work for ``module``: anything with ``params``, ``check_mode`` and ``_diff``.

    That is an AnsibleModule when this file runs as a module, and a plain stand-in when
    the action plugin runs it inside the controller (plugins/action/mtls_cert.py).
    Raises KNOWN_ERRORS for bad input; failure_result() turns them into the result.
    """
    params = module.params
    cert_mode = files.parse_mode(params['mode'], files.CERT_MODE, 'mode')
    key_mode = files.parse_mode(params['key_mode'], files.KEY_MODE, 'key_mode')
    renew_before = pki.parse_renew_before(params['renew_before'], 'renew_before')
    items = _build_items(params)
    now = pki._utcnow()

    ca_cert_bytes = _read(params['ca_cert_path'], 'ca_cert_path')
    if ca_cert_bytes is None:
        raise pki.PkiError('ca_cert_path', "ca_cert_path %s does not exist; give the CA certificate file." % params['ca_cert_path'])
    ca_key_bytes = _read(params['ca_key_path'], 'ca_key_path')
    if ca_key_bytes is None:
        raise pki.PkiError('ca_key_path', "ca_key_path %s does not exist; give the CA private key file." % params['ca_key_path'])
    chain_bytes = None
    if params['ca_chain_path']:
        chain_bytes = _read(params['ca_chain_path'], 'ca_chain_path')
        if chain_bytes is None:
            raise pki.PkiError('ca_chain_path', "ca_chain_path %s does not exist; give the CA chain file or leave it out."
                               % params['ca_chain_path'])
    issuer = pki.load_issuer(ca_cert_bytes, ca_key_bytes, 'ca_cert_path', 'ca_key_path',
                             passphrase=params['ca_key_passphrase'], chain_pem=chain_bytes,
                             chain_field='ca_chain_path', now=now, passphrase_field='ca_key_passphrase')
    chain_pem = issuer.chain_pem()

    # What killed runs left (never a change; check mode only counts it).
    if params['certs'] is not None:
        leftovers = files.remove_leftovers(params['dest_dir'], dry_run=module.check_mode)
    else:
        leftovers = []
        for field in ('cert_path', 'key_path', 'chain_path', 'fullchain_path'):
            if params[field]:
                leftovers += files.remove_leftovers(os.path.dirname(os.path.abspath(params[field])),
                                                    names=[os.path.basename(params[field])], dry_run=module.check_mode)
        leftovers = sorted(set(leftovers))

    # Decide everything, and build every certificate, before the first write.
    for item in items:
        _inspect(item, issuer, renew_before, now, params['force'])
        if item.reason is None:
            continue
        pki.check_leaf(issuer, item.spec, now)
        if module.check_mode:
            continue
        reuse_key = (not params['rotate_key'] and item.key is not None and item.reason != 'key_type_changed'
                     and pki.key_type_of(item.key) == item.spec.key_type)
        item.new_key = item.key if reuse_key else pki.generate_private_key(item.spec.key_type)
        item.new_cert = pki.build_leaf(issuer, item.spec, item.new_key, now)
        item.new_cert_pem = pki.certificate_pem(item.new_cert)
        item.new_key_pem = item.key_bytes if reuse_key else pki.private_key_pem(item.new_key)

    backup_files = []
    # Batch mode: kubelet's versioned layout, every file of dest_dir switched in one rename.
    batch = files.VersionedBatch(params['dest_dir']) if params['certs'] is not None else files.AtomicBatch()
    with batch:
        for item in items:
            if item.reason is not None:
                item.changed = True
            planned = _planned_files(item, chain_pem, cert_mode, key_mode)
            for path, content, mode, is_key, known, known_mode, field in planned:
                if item.reason is None:
                    # The certificate stays: its cert and key bytes are already right, so only
                    # their modes, the chain files and (batch mode) the versioned layout can need fixing.
                    if known is not files.UNREAD:
                        if known_mode == mode and batch.in_layout(path):
                            continue
                    elif not files.needs_write(path, content, mode) and batch.in_layout(path):
                        continue
                    item.changed = True
                    item.reason = 'files_updated'
                if not module.check_mode:
                    batch.stage(path, content, mode, backup=params['backup'],
                                backup_mode=files.KEY_MODE if is_key else None, existing=known,
                                field='dest_dir' if params['certs'] is not None else field)
        if not module.check_mode:
            backups = batch.commit()
            backup_files = sorted(path for path in backups.values() if path)

    results = [_result_entry(item) for item in items]
    summary = {}
    for entry in results:
        summary[entry['reason']] = summary.get(entry['reason'], 0) + 1
    outcome = dict(changed=any(item.changed for item in items), certs=results, summary=summary,
                   backup_files=backup_files, leftovers_removed=len(leftovers))
    if params['certs'] is None:
        for key in ('reason', 'serial', 'not_after', 'sha256_fingerprint'):
            outcome[key] = results[0][key]
        _cert, key = _current_cert_and_key(items[0])
        outcome['key_fingerprint'] = pki.key_fingerprint(key) if key is not None else None
        outcome['cert_path'], outcome['key_path'] = items[0].cert_path, items[0].key_path
    if params['certs'] is not None and len(params['certs']) > _INVOCATION_ECHO_LIMIT:
        # Ansible echoes every argument back in `invocation` (shown with -vvv). For a big
        # batch that doubles the result and the controller's work for no information the
        # caller lacks; keep the other arguments and only count the items.
        module_args = dict(params)
        module_args['certs'] = '(%d items, see certs[].name in the result)' % len(params['certs'])
        outcome['invocation'] = {'module_args': module_args}
    if module._diff:
        before, after = {}, {}
        for item in items:
            if not item.changed:
                continue
            before[item.name] = _diff_state(item.cert, item.key)
            after[item.name] = _diff_state(item.new_cert, item.new_key) if item.new_cert is not None else (
                _diff_state(item.cert, item.key) if item.reason == 'files_updated' else '(would be issued: %s)' % item.reason)
        outcome['diff'] = {'before': before, 'after': after}
    return outcome


def argument_spec():
    list_of_str = dict(type='list', elements='str', default=[])
    return dict(
        ca_cert_path=dict(type='path', required=True),
        ca_key_path=dict(type='path', required=True),
        ca_key_passphrase=dict(type='str', no_log=True),
        ca_chain_path=dict(type='path'),
        cert_path=dict(type='path'),
        key_path=dict(type='path', no_log=False),
        chain_path=dict(type='path'),
        fullchain_path=dict(type='path'),
        certs=dict(type='list', elements='dict', options=dict(
            name=dict(type='str', required=True),
            common_name=dict(type='str'),
            organization=dict(type='str'),
            dns_names=dict(type='list', elements='str'),
            ip_addresses=dict(type='list', elements='str'),
            uris=dict(type='list', elements='str'),
            emails=dict(type='list', elements='str'),
            usage=dict(type='str', choices=USAGE_CHOICES),
            key_type=dict(type='str', choices=KEY_TYPE_CHOICES, no_log=False),
            valid_for=dict(type='str'),
        )),
        dest_dir=dict(type='path'),
        write_chain=dict(type='bool', default=False),
        write_fullchain=dict(type='bool', default=False),
        common_name=dict(type='str'),
        organization=dict(type='str'),
        dns_names=dict(list_of_str),
        ip_addresses=dict(list_of_str),
        uris=dict(list_of_str),
        emails=dict(list_of_str),
        usage=dict(type='str', choices=USAGE_CHOICES, default='both'),
        key_type=dict(type='str', choices=KEY_TYPE_CHOICES, default='ec_p256', no_log=False),
        valid_for=dict(type='str', default='30d'),
        renew_before=dict(type='str'),
        rotate_key=dict(type='bool', default=True, no_log=False),
        force=dict(type='bool', default=False),
        backup=dict(type='bool', default=False),
        mode=dict(type='raw', default='0644'),
        key_mode=dict(type='raw', default='0600', no_log=False),
    )


# Cross-option rules, shared by AnsibleModule and by the action plugin's validator.
VALIDATION_RULES = dict(
    mutually_exclusive=[('certs', 'cert_path'), ('certs', 'key_path'), ('certs', 'chain_path'),
                        ('certs', 'fullchain_path')],
    required_together=[('cert_path', 'key_path')],
    required_one_of=[('certs', 'cert_path')],
    required_by={'certs': 'dest_dir'},
)

# Bad input and unwritable files: reported as one sentence naming the field.
KNOWN_ERRORS = (pki.PkiError, files.FileError)


def failure_result(error):
    """The fail_json arguments for one of KNOWN_ERRORS."""
    return dict(msg=str(error), field=getattr(error, 'field', None))


def unexpected_failure_result(error):
    # Say what happened without echoing parameters (they may hold passphrases).
    return dict(msg="mtls_cert failed unexpectedly: %s: %s" % (type(error).__name__, error),
                exception=traceback.format_exc())


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True, **VALIDATION_RULES)
    if not pki.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib('cryptography'), exception=str(pki.CRYPTOGRAPHY_IMPORT_ERROR))
    try:
        module.exit_json(**run_module(module))
    except KNOWN_ERRORS as exc:
        module.fail_json(**failure_result(exc))
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(**unexpected_failure_result(exc))


if __name__ == '__main__':
    main()

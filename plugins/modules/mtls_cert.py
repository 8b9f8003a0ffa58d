#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mtls_cert
short_description: Issue leaf certificates for mutual TLS from a local CA, one or a thousand per call
version_added: 0.1.0
author:
  - zerotrust.mtls maintainers (@zerotrust)
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
extends_documentation_fragment:
  - zerotrust.mtls.attributes
  - zerotrust.mtls.attributes.in_process_action
  - zerotrust.mtls.attributes.renews
  - zerotrust.mtls.file_output
attributes:
  idempotent:
    details:
      - Idempotent until a certificate enters its renewal window (see O(renew_before)); then it is reissued once.
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
    description: The CA that signs these certificates.
  - module: zerotrust.mtls.mtls_cert_info
    description: Expiry, renewal state and chain of the certificates written here.
  - module: zerotrust.mtls.mtls_secret
    description: Deliver a certificate, its key and its CA to Kubernetes Secrets.
"""

EXAMPLES = r"""
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
"""

RETURN = r"""
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
  description: Single mode; why the certificate was (or would be) issued - see RV(certs[].reason) for the values.
  returned: when O(cert_path) is used
  type: str
  sample: missing
serial:
  description: Single mode; the serial number (RV(certs[].serial)).
  returned: when O(cert_path) is used
  type: str
not_after:
  description:
    - Single mode; the expiry, ISO 8601 UTC.
    - Null in check mode when the certificate would be issued.
  returned: when O(cert_path) is used
  type: str
  sample: '2026-12-22T15:55:00Z'
sha256_fingerprint:
  description: Single mode; RV(certs[].sha256_fingerprint) of the one certificate.
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
"""

from ansible_collections.zerotrust.mtls.plugins.module_utils import issuance, module_backend


def main():
    # The argument spec and the work are the backend's (module_utils/issuance.py), shared
    # with the action plugin that runs them in the controller process.
    module_backend.module_main(issuance)


if __name__ == "__main__":
    main()

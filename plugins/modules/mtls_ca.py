#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mtls_ca
short_description: Create, renew and remove a root or intermediate CA for mutual TLS
version_added: 0.1.0
author:
  - zerotrust.mtls maintainers (@zerotrust)
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
extends_documentation_fragment:
  - zerotrust.mtls.attributes
  - zerotrust.mtls.attributes.renews
  - zerotrust.mtls.file_output
attributes:
  idempotent:
    details:
      - Idempotent until the CA is due for renewal (O(renew_before)); the run that finds it due re-signs it, once.
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
    description: Issue server and client certificates from this CA.
  - module: zerotrust.mtls.mtls_crl
    description: Revoke certificates this CA issued.
  - module: zerotrust.mtls.mtls_cert_info
    description: Check the expiry and chain of the CA and of what it issued.
"""

EXAMPLES = r"""
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
"""

RETURN = r"""
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
"""

from ansible_collections.zerotrust.mtls.plugins.module_utils import ca_backend, module_backend


def main():
    module_backend.module_main(ca_backend)


if __name__ == "__main__":
    main()

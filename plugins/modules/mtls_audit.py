#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: mtls_audit
short_description: Audit every certificate in files and Secrets and diagnose the mesh
version_added: 0.1.0
description:
  - Reads certificates from files (O(paths), directories are searched for C(*.crt) and C(*.pem)) and, with a
    cluster, from Secrets and the C(istio-ca-root-cert) ConfigMaps of O(namespaces), and reports for each its
    subject, days left, whether it is due (inside O(due_within) or its chain is broken) and whether its chain
    verifies to O(trust_bundle_path).
  - With O(mesh=true), diagnoses Istio - the effective PeerAuthentication mode and DestinationRule TLS modes
    per namespace, DestinationRules that send plaintext to STRICT namespaces, STRICT namespaces with pods that
    have no sidecar, and trust bundles that differ between namespaces.
  - Read-only. Secret keys holding private keys (C(tls.key), C(ca-key.pem)) are never decoded or returned.
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
    description: Certificate files or directories to audit; the first certificate of a file is audited, the rest is its chain.
    type: list
    elements: path
    default: []
  trust_bundle_path:
    description: Trusted roots (PEM) each chain must verify to. Without it chains are not checked.
    type: path
  chain_path:
    description: Extra intermediates (PEM) available when verifying.
    type: path
  due_within:
    description: A certificate is due when it expires within this duration (V(14d), V(72h)).
    type: str
    default: 14d
  cluster:
    description: Also read Secrets and ConfigMaps (and with O(mesh) the Istio objects) through the Kubernetes API.
    type: bool
    default: false
  namespaces:
    description: Namespaces to read from the cluster; all namespaces when empty.
    type: list
    elements: str
    default: []
  mesh:
    description: Diagnose the Istio mesh (needs O(cluster=true)).
    type: bool
    default: false
  root_namespace:
    description: Istio's root namespace, where a PeerAuthentication without selector is mesh-wide.
    type: str
    default: istio-system
requirements:
  - cryptography >= 42.0
  - kubernetes >= 30.1.0 (Python client), with O(cluster=true)
seealso:
  - module: zerotrust.mtls.mtls_cert_info
'''

EXAMPLES = r'''
- name: Audit the PKI on disk and the cluster, and diagnose the mesh
  zerotrust.mtls.mtls_audit:
    paths: [/etc/pki/mtls/server, /etc/pki/mtls/client, /etc/pki/mtls/intermediate/ca.crt]
    trust_bundle_path: /etc/pki/mtls/trust/bundle.pem
    due_within: 14d
    cluster: true
    mesh: true
    kubeconfig: ~/.kube/config
  register: audit
'''

RETURN = r'''
certificates:
  description: One row per certificate source, soonest expiry first.
  returned: always
  type: list
  elements: dict
  contains:
    source:
      description: File path, or C(Secret/<namespace>/<name>[<key>]) / C(ConfigMap/...).
      type: str
    subject:
      description: Subject (RFC 4514).
      type: str
    days_left:
      description: Whole days until expiry.
      type: int
    chain_valid:
      description: Whether the chain verifies to the trust bundle (null when not checked).
      type: bool
    due:
      description: Expires within O(due_within) or has a broken chain.
      type: bool
due:
  description: Number of certificates that are due.
  returned: always
  type: int
table:
  description: The rows as aligned text lines.
  returned: always
  type: list
  elements: str
mesh:
  description: Per namespace modes and the list of problems (sentences); null without O(mesh).
  returned: always
  type: dict
'''

import glob
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zerotrust.mtls.plugins.module_utils import audit
from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import MtlsError, read_file
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_certs import load_certificates
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import PkiError
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_time import parse_duration, utcnow
from ansible_collections.zerotrust.mtls.plugins.module_utils.args_kube_auth import KUBE_AUTH_SPEC as KUBE_AUTH_ARGSPEC
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube import (
    DESTINATION_RULE,
    NAMESPACE,
    PEER_AUTHENTICATION,
    POD,
    SECRET,
    KubeClient,
    ResourceKind,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_connection import ConnectionSettings
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_errors import KubeError

CONFIG_MAP = ResourceKind("v1", "ConfigMap", "configmaps", True, None)


def _files(paths):
    found = []
    for path in paths:
        if os.path.isdir(path):
            for pattern in ('*.crt', '*.pem'):
                found.extend(sorted(glob.glob(os.path.join(path, pattern))))
        elif os.path.exists(path):
            found.append(path)
        else:
            raise PkiError('paths', "paths: %s does not exist." % path)
    return found


def _list(client, kind, namespaces):
    if not namespaces:
        return client.list(kind)
    items = []
    for namespace in namespaces:
        items.extend(client.list(kind, namespace))
    return items


def _optional_list(client, kind, namespaces, warnings):
    try:
        return _list(client, kind, namespaces)
    except KubeError as error:
        if error.status == 404:
            warnings.append("%s is not installed in this cluster (%s); the mesh diagnosis skips it." % (kind.kind, error))
            return []
        raise


def run(module):
    params = module.params
    now = utcnow()
    due_seconds = int(parse_duration(params['due_within'], 'due_within').total_seconds())
    roots = load_certificates(read_file(params['trust_bundle_path'], 'trust_bundle_path'), 'trust_bundle_path') \
        if params['trust_bundle_path'] else []
    extra = load_certificates(read_file(params['chain_path'], 'chain_path'), 'chain_path') if params['chain_path'] else []
    rows = []
    for path in _files(params['paths']):
        rows.extend(audit.inspect_pem(path, read_file(path, 'paths'), roots, extra, due_seconds, now))
    mesh = None
    warnings = []
    if params['cluster']:
        client = KubeClient(ConnectionSettings.from_params(params))
        try:
            namespaces = params['namespaces'] or sorted(
                (n.get('metadata') or {}).get('name') for n in client.list(NAMESPACE))
            sources = []
            for secret in _list(client, SECRET, params['namespaces']):
                secret.setdefault('kind', 'Secret')
                sources.extend(audit.secret_certificates(secret))
            bundles = {}
            for config_map in _list(client, CONFIG_MAP, params['namespaces']):
                config_map['kind'] = 'ConfigMap'
                metadata = config_map.get('metadata') or {}
                if metadata.get('name') == 'istio-ca-root-cert':
                    bundles[metadata.get('namespace')] = ((config_map.get('data') or {}).get('root-cert.pem') or '').encode()
                sources.extend(audit.secret_certificates(config_map)
                               if metadata.get('name') in ('istio-ca-root-cert',) else [])
            for source, pem in sources:
                rows.extend(audit.inspect_pem(source, pem, roots, extra, due_seconds, now))
            if params['mesh']:
                mesh = audit.diagnose_mesh(
                    namespaces,
                    _optional_list(client, PEER_AUTHENTICATION, params['namespaces'] + (
                        [params['root_namespace']] if params['namespaces'] else []), warnings),
                    _optional_list(client, DESTINATION_RULE, params['namespaces'], warnings),
                    _list(client, POD, params['namespaces']),
                    bundles, params['root_namespace'])
        finally:
            client.close()
    rows.sort(key=lambda r: r.get('seconds_left', -10 ** 12))
    return dict(changed=False, certificates=rows, due=sum(1 for r in rows if r.get('due')),
                table=audit.table(rows), mesh=mesh, warnings=warnings)


def main():
    argument_spec = dict(
        paths=dict(type='list', elements='path', default=[]),
        trust_bundle_path=dict(type='path'),
        chain_path=dict(type='path'),
        due_within=dict(type='str', default='14d'),
        cluster=dict(type='bool', default=False),
        namespaces=dict(type='list', elements='str', default=[]),
        mesh=dict(type='bool', default=False),
        root_namespace=dict(type='str', default='istio-system'),
    )
    argument_spec.update(KUBE_AUTH_ARGSPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if module.params['mesh'] and not module.params['cluster']:
        module.fail_json(msg="mesh=true needs cluster=true: the mesh is diagnosed from the Kubernetes API.")
    try:
        result = run(module)
    except (MtlsError, KubeError) as error:
        module.fail_json(msg=str(error), changed=False)
    warnings = result.pop('warnings')
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == '__main__':
    main()

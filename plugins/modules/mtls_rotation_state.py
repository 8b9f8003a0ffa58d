#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: mtls_rotation_state
short_description: Phase state, CA promotion and run records of a certificate rotation
version_added: 0.1.0
description:
  - Keeps the state of a multi-phase rotation (for example the root CA rotation of
    C(playbooks/rotate_root_ca.yml)) in a JSON file beside the PKI, so that a rerun resumes
    where a failed or stopped run ended, and mirrors it into a ConfigMap so operators see it.
  - With O(operation=complete_phase), first moves CA files as the phase requires (O(promote),
    O(archive)) and only then records the phase, so a crash in between repeats the file moves
    (they are idempotent) instead of recording work that was not done.
  - The CA key that is replaced or archived is never deleted - it is copied into the archive
    directory (mode C(0700), key C(0600)) and the copy is checked before the original goes.
  - With O(operation=record), writes the run record the certificate exporter reads -
    C(<rotation>.last_success), C(<rotation>.last_failure) (epoch seconds) and
    C(<rotation>.failures_total) - into O(record_configmap).
  - Never reads a private key into its result or diff; it only checks that keys match their
    certificates.
author:
  - zerotrust.mtls maintainers (@zerotrust)
extends_documentation_fragment:
  - zerotrust.mtls.attributes
  - zerotrust.mtls.kube_auth
attributes:
  check_mode:
    support: full
    details:
      - Nothing is written; C(changed) says whether the state, files or ConfigMaps would change.
  diff_mode:
    support: partial
    details:
      - Shows the state before and after (phases, fingerprints); never key material.
  idempotent:
    support: full
    details:
      - Recording a phase that is already done, or promoting a CA that is already in place, changes nothing.
options:
  rotation:
    description: Name of the rotation, for example V(root_ca), V(intermediate), V(client_certs). Prefixes the record keys.
    type: str
    required: true
  operation:
    description:
      - V(read) returns the state (or null).
      - V(start) creates the state of a new rotation when there is none; when the last rotation is complete it
        starts a new one only with O(restart_completed=true).
      - V(complete_phase) performs O(promote) and O(archive), then records O(phase) as done.
      - V(record) writes the run record (O(success)) to O(record_configmap) only.
    type: str
    choices: [read, start, complete_phase, record]
    default: read
  state_path:
    description: The state file (JSON, mode C(0600)). Required unless O(operation=record).
    type: path
  phase:
    description: The phase to record as done with O(operation=complete_phase); phases complete in order.
    type: int
  phase_count:
    description: Number of phases of the rotation; when O(phase) reaches it the rotation is V(complete).
    type: int
  restart_completed:
    description: With O(operation=start), start a new rotation even though the last one is complete.
    type: bool
    default: false
  data:
    description:
      - Facts to keep in the state, for example the fingerprints of the old and new roots. Values are stored as
        given; never put secrets here.
    type: dict
    default: {}
  promote:
    description:
      - CA file sets to install into their active paths before the phase is recorded. The pair in C(dest) is
        copied into C(archive_dir) first when it holds another key.
    type: list
    elements: dict
    default: []
    suboptions:
      source:
        description: Dict with C(cert), C(key) and optional C(chain) paths of the CA to install.
        type: dict
        required: true
      dest:
        description: Dict with C(cert), C(key) and optional C(chain) paths to install it to.
        type: dict
        required: true
      archive_dir:
        description: Where the replaced CA is kept.
        type: path
        required: true
      carry_crls:
        description:
          - Move the replaced CA's CRLs (C(ca.crl), C(chain.crl) beside C(dest.cert)) into C(archive_dir) with it,
            so they are not taken for the new CA's. The root CA rotation sets it; the trust bundles deliver the
            archived CRLs while the old root stays trusted (M(zerotrust.mtls.mtls_trust_bundle)).
        type: bool
        default: false
      key_passphrase:
        description: Passphrase of the source key, used only to check that it matches its certificate.
        type: str
  archive:
    description:
      - CA file sets to move into an archive directory (copied, verified, then removed from their place).
    type: list
    elements: dict
    default: []
    suboptions:
      cert:
        description: Certificate path.
        type: path
        required: true
      key:
        description: Key path.
        type: path
      chain:
        description: Chain path.
        type: path
      archive_dir:
        description: Archive directory (created C(0700)).
        type: path
        required: true
  state_configmap:
    description:
      - Mirror the state into this ConfigMap (C(name), C(namespace)); skipped when not given.
      - The namespace is created when missing.
    type: dict
  record_configmap:
    description:
      - The rotation-record ConfigMap (C(name), C(namespace)) the exporter reads; used by O(operation=record).
    type: dict
  success:
    description: With O(operation=record), whether the run succeeded.
    type: bool
    default: true
requirements:
  - cryptography >= 42.0
  - kubernetes >= 30.1.0 (Python client), when a ConfigMap is given
seealso:
  - module: zerotrust.mtls.mtls_ca
'''

EXAMPLES = r'''
- name: Start (or resume) a root CA rotation
  zerotrust.mtls.mtls_rotation_state:
    rotation: root_ca
    operation: start
    state_path: /etc/pki/mtls/rotation/root_ca.state.json
    phase_count: 5
    data:
      old_root_sha256: "{{ old_root.sha256_fingerprint }}"
  register: rotation

- name: Phase 3 done - the new root and intermediate are now the active CA
  zerotrust.mtls.mtls_rotation_state:
    rotation: root_ca
    operation: complete_phase
    phase: 3
    state_path: /etc/pki/mtls/rotation/root_ca.state.json
    promote:
      - source: {cert: /etc/pki/mtls/rotation/next/root/ca.crt, key: /etc/pki/mtls/rotation/next/root/ca.key}
        dest: {cert: /etc/pki/mtls/root/ca.crt, key: /etc/pki/mtls/root/ca.key}
        archive_dir: /etc/pki/mtls/rotation/previous/root
    state_configmap: {name: mtls-rotation-root-ca, namespace: mtls-system}
    kubeconfig: ~/.kube/config

- name: Record a failed run for the exporter
  zerotrust.mtls.mtls_rotation_state:
    rotation: root_ca
    operation: record
    success: false
    record_configmap: {name: mtls-rotation-status, namespace: mtls-system}
'''

RETURN = r'''
state:
  description: The rotation state after the operation (null when there is none).
  returned: always
  type: dict
  contains:
    id:
      description: Rotation id (UTC start time).
      type: str
    phase_completed:
      description: Last phase done (0 when none).
      type: int
    status:
      description: V(in_progress) or V(complete).
      type: str
    data:
      description: The facts stored with O(data).
      type: dict
    history:
      description: One entry per completed phase with its completion time (epoch seconds).
      type: list
promoted:
  description: Paths that were (or would be) replaced by O(promote).
  returned: always
  type: list
  elements: str
archived:
  description: Paths that were (or would be) moved into an archive by O(archive).
  returned: always
  type: list
  elements: str
record:
  description: The rotation-record data written with O(operation=record).
  returned: when O(operation=record)
  type: dict
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zerotrust.mtls.plugins.module_utils import files
from ansible_collections.zerotrust.mtls.plugins.module_utils import pki
from ansible_collections.zerotrust.mtls.plugins.module_utils import rotation as rot
from ansible_collections.zerotrust.mtls.plugins.module_utils.args_kube_auth import KUBE_AUTH_SPEC as KUBE_AUTH_ARGSPEC
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube import NAMESPACE, KubeClient, ResourceKind, resource_path
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_connection import ConnectionSettings
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_errors import KubeError
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_validation import validate_namespace_name, validate_object_name

CONFIG_MAP = ResourceKind("v1", "ConfigMap", "configmaps", True, None)
APPLY = "application/apply-patch+yaml"


def _configmap_ref(value, field):
    if not isinstance(value, dict) or not value.get('name') or not value.get('namespace'):
        raise rot.RotationError("%s must be a dict with name and namespace." % field)
    validate_object_name(value['name'], field + '.name')
    validate_namespace_name(value['namespace'], field + '.namespace')
    return value['name'], value['namespace']


def _apply_configmap(client, name, namespace, data, dry_run):
    """Server-side apply of a ConfigMap we own; creates the namespace when missing."""
    if client.namespace_exists(namespace) is False and not dry_run:
        client.request("PATCH", resource_path(NAMESPACE, None, namespace), "patch", NAMESPACE, namespace,
                       query=[("fieldManager", "zerotrust.mtls"), ("force", "true")],
                       body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
                       content_type=APPLY)
    manifest = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "zerotrust.mtls"}},
        "data": data,
    }
    query = [("fieldManager", "zerotrust.mtls"), ("force", "true")]
    if dry_run:
        query.append(("dryRun", "All"))
    client.request("PATCH", resource_path(CONFIG_MAP, namespace, name), "patch", CONFIG_MAP, name, namespace,
                   query=query, body=manifest, content_type=APPLY)


def _read_configmap(client, name, namespace):
    obj = client.get(CONFIG_MAP, name, namespace)
    return (obj or {}).get('data') or {}


def _client(module):
    return KubeClient(ConnectionSettings.from_params(module.params))


def _public_state(state):
    return state


def run(module):
    params = module.params
    rotation = rot.validate_rotation_name(params['rotation'])
    operation = params['operation']
    now = time.time()
    result = dict(changed=False, state=None, promoted=[], archived=[])

    if operation == 'record':
        name, namespace = _configmap_ref(params['record_configmap'], 'record_configmap')
        client = _client(module)
        existing = _read_configmap(client, name, namespace)
        data = rot.record_run(existing, rotation, params['success'], now)
        result['record'] = dict((k, v) for k, v in data.items() if k.startswith(rotation + '.'))
        result['changed'] = data != existing
        if result['changed']:
            _apply_configmap(client, name, namespace, data, module.check_mode)
        return result

    if not params['state_path']:
        raise rot.RotationError("state_path is required unless operation is record.")
    state_path = params['state_path']
    state = rot.load_state(state_path)
    before = state

    if operation == 'start':
        if state is None or (state.get('status') == 'complete' and params['restart_completed']):
            if not params['phase_count']:
                raise rot.RotationError("phase_count is required to start a rotation.")
            state = rot.new_state(rotation, now, params['phase_count'], params['data'])
    elif operation == 'complete_phase':
        if state is None:
            raise rot.RotationError("phase %s cannot be recorded: %s holds no rotation; run operation=start first."
                                    % (params['phase'], state_path))
        if params['phase'] is None:
            raise rot.RotationError("phase is required with operation=complete_phase.")
        for index, item in enumerate(params['promote']):
            for role in ('source', 'dest'):
                if not isinstance(item[role], dict) or not item[role].get('cert') or not item[role].get('key'):
                    raise rot.RotationError("promote[%d].%s must name cert and key paths." % (index, role))
            result['promoted'].extend(rot.promote_pair(item['source'], item['dest'], item['archive_dir'],
                                                       passphrase=item.get('key_passphrase'),
                                                       dry_run=module.check_mode,
                                                       carry_crls=item.get('carry_crls')))
        for item in params['archive']:
            result['archived'].extend(rot.archive_move(item, item['archive_dir'], dry_run=module.check_mode))
        state, _changed = rot.complete_phase(state, params['phase'], now, params['data'])

    if state is not None and state is not before:
        result['changed'] = True
        if not module.check_mode:
            directory = os.path.dirname(os.path.abspath(state_path))
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o700)
            # Keep the previous state beside it, so a broken edit can be undone by hand.
            files.atomic_write(state_path, rot.state_json(state), 0o600, backup=before is not None)
    result['changed'] = result['changed'] or bool(result['promoted'] or result['archived'])

    if state is not None and params['state_configmap']:
        name, namespace = _configmap_ref(params['state_configmap'], 'state_configmap')
        client = _client(module)
        wanted = rot.state_configmap_data(state)
        if _read_configmap(client, name, namespace) != wanted:
            _apply_configmap(client, name, namespace, wanted, module.check_mode)
            result['changed'] = True

    result['state'] = _public_state(state)
    if module._diff:
        result['diff'] = dict(before=rot.state_json(before).decode() if before else '',
                              after=rot.state_json(state).decode() if state else '')
    return result


def main():
    argument_spec = dict(
        rotation=dict(type='str', required=True),
        operation=dict(type='str', default='read', choices=['read', 'start', 'complete_phase', 'record']),
        state_path=dict(type='path'),
        phase=dict(type='int'),
        phase_count=dict(type='int'),
        restart_completed=dict(type='bool', default=False),
        data=dict(type='dict', default={}),
        promote=dict(type='list', elements='dict', default=[], options=dict(
            source=dict(type='dict', required=True),
            dest=dict(type='dict', required=True),
            archive_dir=dict(type='path', required=True),
            key_passphrase=dict(type='str', no_log=True),
            carry_crls=dict(type='bool', default=False),
        )),
        archive=dict(type='list', elements='dict', default=[], options=dict(
            cert=dict(type='path', required=True),
            key=dict(type='path', no_log=False),
            chain=dict(type='path'),
            archive_dir=dict(type='path', required=True),
        )),
        state_configmap=dict(type='dict'),
        record_configmap=dict(type='dict'),
        success=dict(type='bool', default=True),
    )
    argument_spec.update(KUBE_AUTH_ARGSPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        result = run(module)
    except (rot.RotationError, pki.PkiError, files.FileError, KubeError) as error:
        module.fail_json(msg=str(error), changed=False)
    module.exit_json(**result)


if __name__ == '__main__':
    main()

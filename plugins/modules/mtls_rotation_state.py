#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mtls_rotation_state
short_description: Phase state and run records of a certificate rotation
version_added: 0.1.0
author:
  - zerotrust.mtls maintainers (@zerotrust)
description:
  - Keeps the state of a multi-phase rotation (for example the root CA rotation of
    C(playbooks/rotate_root_ca.yml)) in a JSON file beside the PKI, so that a rerun resumes
    where a failed or stopped run ended, and mirrors it into a ConfigMap so operators see it.
  - The CA files a phase moves are moved by M(zerotrust.mtls.mtls_rotation_promote) before this module
    records the phase with O(operation=complete_phase), so a crash in between repeats the file moves
    (they are idempotent) instead of recording work that was not done.
  - O(operation=complete_phase) still performs the deprecated O(promote) and O(archive) before it records
    the phase, with the same code as M(zerotrust.mtls.mtls_rotation_promote).
  - With O(operation=record), writes the run record the certificate exporter reads -
    C(<rotation>.last_success), C(<rotation>.last_failure) (epoch seconds) and
    C(<rotation>.failures_total) - into O(record_configmap).
  - Never reads a private key into its result or diff; it only checks that keys match their
    certificates.
extends_documentation_fragment:
  - zerotrust.mtls.attributes
  - zerotrust.mtls.kube_auth
  - zerotrust.mtls.rotation_promote
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
      - V(complete_phase) records O(phase) as done (after the deprecated O(promote) and O(archive), when given).
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
    description:
      - With O(operation=start), start a new rotation even though the last one is complete.
      - With O(operation=read), RV(plan) shows the phases of such a new rotation.
    type: bool
    default: false
  stop_after_phase:
    description:
      - The last phase this run does (the gate of C(rotation_stop_after_phase)); RV(plan) lists the phases
        to do up to it. Only for a rotation with a fixed phase list (V(root_ca)).
    type: int
  data:
    description:
      - Facts to keep in the state, for example the fingerprints of the old and new roots. Values are stored as
        given; never put secrets here.
    type: dict
    default: {}
  promote:
    description:
      - Deprecated, will be removed in version 1.0.0 of zerotrust.mtls - use
        O(zerotrust.mtls.mtls_rotation_promote#module:promote), then record the phase with this module.
      - CA file sets to install into their active paths before the phase is recorded, as
        M(zerotrust.mtls.mtls_rotation_promote) installs them.
  archive:
    description:
      - Deprecated, will be removed in version 1.0.0 of zerotrust.mtls - use
        O(zerotrust.mtls.mtls_rotation_promote#module:archive), then record the phase with this module.
      - CA file sets to move into an archive directory (copied, verified, then removed from their place)
        before the phase is recorded.
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
  - module: zerotrust.mtls.mtls_rotation_promote
  - module: zerotrust.mtls.mtls_ca
"""

EXAMPLES = r"""
- name: Start (or resume) a root CA rotation
  zerotrust.mtls.mtls_rotation_state:
    rotation: root_ca
    operation: start
    state_path: /etc/pki/mtls/rotation/root_ca.state.json
    phase_count: 5
    data:
      old_root_sha256: "{{ old_root.sha256_fingerprint }}"
  register: rotation

- name: Make the new root the active CA
  zerotrust.mtls.mtls_rotation_promote:
    promote:
      - source: {cert: /etc/pki/mtls/rotation/next/root/ca.crt, key: /etc/pki/mtls/rotation/next/root/ca.key}
        dest: {cert: /etc/pki/mtls/root/ca.crt, key: /etc/pki/mtls/root/ca.key}
        archive_dir: /etc/pki/mtls/rotation/previous/root

- name: Phase 3 done - the new root and intermediate are now the active CA
  zerotrust.mtls.mtls_rotation_state:
    rotation: root_ca
    operation: complete_phase
    phase: 3
    state_path: /etc/pki/mtls/rotation/root_ca.state.json
    state_configmap: {name: mtls-rotation-root-ca, namespace: mtls-system}
    kubeconfig: ~/.kube/config

- name: Record a failed run for the exporter
  zerotrust.mtls.mtls_rotation_state:
    rotation: root_ca
    operation: record
    success: false
    record_configmap: {name: mtls-rotation-status, namespace: mtls-system}
"""

RETURN = r"""
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
plan:
  description:
    - What a run of the rotation does from this state - the one list of its phases the playbooks print.
    - Null for a rotation without a fixed phase list (only V(root_ca) has one).
  returned: unless O(operation=record)
  type: dict
  contains:
    phase_count:
      description: Number of phases.
      type: int
      sample: 5
    phases:
      description: 'Every phase, as C(phase <n>: <what it does>).'
      type: list
      elements: str
    pending:
      description:
        - The phases still to do, up to O(stop_after_phase); empty for a complete rotation unless
          O(restart_completed=true).
      type: list
      elements: str
      sample: ["phase 3: switch signing to the new intermediate and reissue leaves and client certificates"]
    next_phase:
      description: Number of the next phase to do (null when there is none).
      type: int
promoted:
  description: Paths that were (or would be) replaced by the deprecated O(promote).
  returned: always
  type: list
  elements: str
archived:
  description: Paths that were (or would be) moved into an archive by the deprecated O(archive).
  returned: always
  type: list
  elements: str
record:
  description: The rotation-record data written with O(operation=record).
  returned: when O(operation=record)
  type: dict
"""

from ansible_collections.zerotrust.mtls.plugins.module_utils import module_backend, rotation_state


def main():
    module_backend.module_main(rotation_state)


if __name__ == "__main__":
    main()

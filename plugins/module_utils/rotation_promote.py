# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backend of mtls_rotation_promote: install staged CAs into their active paths and
move retired ones into an archive, the file work between two phases of a rotation.

The rotation playbooks call the module, then record the phase with mtls_rotation_state;
a crash in between repeats the moves on the rerun, and they are idempotent.
mtls_rotation_state's deprecated ``promote``/``archive`` options run the same
``move_files``. No AnsibleModule and no Kubernetes in here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.zerotrust.mtls.plugins.module_utils import backend_results
from ansible_collections.zerotrust.mtls.plugins.module_utils import rotation as rot
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import check_cryptography

VALIDATION_RULES = {}

# A source to fix, an archive copy that does not verify, a file that cannot be written:
# MtlsError and its subclasses (RotationError, PkiError, FileError), one sentence each.
KNOWN_ERRORS = backend_results.KNOWN_ERRORS
failure_result, unexpected_failure_result = backend_results.failure_results("mtls_rotation_promote", changed=False)

PROMOTE_OPTIONS = dict(
    source=dict(type="dict", required=True),
    dest=dict(type="dict", required=True),
    archive_dir=dict(type="path", required=True),
    key_passphrase=dict(type="str", no_log=True),
    carry_crls=dict(type="bool", default=False),
)

ARCHIVE_OPTIONS = dict(
    cert=dict(type="path", required=True),
    key=dict(type="path", no_log=False),
    chain=dict(type="path"),
    archive_dir=dict(type="path", required=True),
)


def argument_spec():
    return dict(
        promote=dict(type="list", elements="dict", default=[], options=PROMOTE_OPTIONS),
        archive=dict(type="list", elements="dict", default=[], options=ARCHIVE_OPTIONS),
    )


def check_sources(promote):
    """Refuse the whole list before anything moves: each entry names its paths, and each
    source key is readable and matches its certificate."""
    for index, item in enumerate(promote):
        for role in ("source", "dest"):
            if not isinstance(item[role], dict) or not item[role].get("cert") or not item[role].get("key"):
                raise rot.RotationError("promote[%d].%s must name cert and key paths." % (index, role), "promote[%d].%s" % (index, role))
        rot.pair_material(item["source"]["cert"], item["source"]["key"], item.get("key_passphrase"), "promote source")


def move_files(promote, archive, dry_run=False):
    """(promoted, archived): the paths ``promote`` replaced and ``archive`` moved (or would)."""
    check_sources(promote)
    promoted = []
    for item in promote:
        promoted.extend(
            rot.promote_pair(
                item["source"], item["dest"], item["archive_dir"], passphrase=item.get("key_passphrase"), dry_run=dry_run, carry_crls=item.get("carry_crls")
            )
        )
    archived = []
    for item in archive:
        archived.extend(rot.archive_move(item, item["archive_dir"], dry_run=dry_run))
    return promoted, archived


def _destinations(promote):
    """{active path: the staged path it is installed from}."""
    origin = {}
    for item in promote:
        for role in ("cert", "key", "chain"):
            if item["dest"].get(role):
                origin[item["dest"][role]] = item["source"].get(role)
    return origin


def _diff(params, present_before, promoted, archived):
    """Where each changed path's content comes from or goes to: paths only, never content."""
    origin = _destinations(params["promote"])
    before, after = {}, {}
    for path in promoted:
        if path in origin:
            before[path] = "present" if path in present_before else "absent"
            after[path] = "from %s" % origin[path]
        else:
            # promote_pair reports the CRLs it carries to the archive with the replaced CA.
            archive_dir = [item["archive_dir"] for item in params["promote"] if os.path.dirname(item["dest"]["cert"]) == os.path.dirname(path)]
            before[path], after[path] = "present", "moved to %s" % (archive_dir or ["the archive"])[0]
    for item in params["archive"]:
        for path in [item[role] for role in ("cert", "key", "chain") if item.get(role) in archived]:
            before[path], after[path] = "present", "moved to %s" % item["archive_dir"]
    return dict(before=before, after=after)


def run_module(module):
    """Promotes and archives what ``module.params`` asks for (in check mode: predicts it)."""
    check_cryptography()
    params = module.params
    present_before = set(path for path in _destinations(params["promote"]) if os.path.exists(path))
    promoted, archived = move_files(params["promote"], params["archive"], dry_run=module.check_mode)
    result = dict(changed=bool(promoted or archived), promoted=promoted, archived=archived)
    if module._diff:
        result["diff"] = _diff(params, present_before, promoted, archived)
    return result

# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rotation bookkeeping: the phase state of a rotation, its run records, CA promotion.

A rotation (root CA, intermediate, client certificates) is a sequence of phases. The
state of the current rotation lives in a JSON file beside the PKI (authoritative: the
PKI files are where the work happens) and is mirrored into a ConfigMap so operators and
AWX see it. Each run also leaves a record for the exporter (``<rotation>.last_success``,
``<rotation>.last_failure``, ``<rotation>.failures_total``, epoch seconds / a count).

Nothing in here talks to Kubernetes or to AnsibleModule: pure data and file helpers.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from ansible_collections.zerotrust.mtls.plugins.module_utils import files
from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_certs import certificates_pem, load_certificate, load_certificates
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_fingerprints import sha256_fingerprint
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_keys import key_matches_certificate, load_private_key

STATE_VERSION = 1

ROOT_CA_PHASES = (
    (1, "create the new root CA and its intermediate"),
    (2, "publish trust bundles holding the old and the new root"),
    (3, "switch signing to the new intermediate and reissue leaves and client certificates"),
    (4, "verify every leaf chains to the new root"),
    (5, "remove the old root from every bundle and archive the old CA"),
)

# The phases of each rotation that has a fixed plan, by rotation name: the one list the
# playbooks print (mtls_rotation_state returns it as ``plan``) and the tests check.
INTERMEDIATE_PHASES = (
    (1, "create a new intermediate signed by the active root"),
    (2, "make it the active intermediate and hand it to Istio, SPIRE and cert-manager"),
    (3, "reissue every leaf from it and verify each chains to it"),
)

PHASES = {"root_ca": ROOT_CA_PHASES, "intermediate": INTERMEDIATE_PHASES}

RECORD_FIELDS = ("last_success", "last_failure", "failures_total")


class RotationError(MtlsError):
    """A rotation problem told as one sentence."""


def validate_rotation_name(name):
    """Rotation names become ConfigMap key prefixes: [-._a-zA-Z0-9]+ and no dot."""
    if not isinstance(name, str) or not name:
        raise RotationError("rotation must be a non-empty name such as root_ca.")
    for char in name:
        if not (char.isalnum() or char in "-_"):
            raise RotationError("rotation must only hold letters, digits, '-' and '_' (it prefixes ConfigMap keys), got %r." % name)
    return name


def load_state(path):
    """The state dict stored at ``path``, or None when there is no state file."""
    content = files.read_if_exists(path)
    if content is None:
        return None
    try:
        state = json.loads(content.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RotationError("state file %s is not valid JSON (%s); restore it from its backup or the state ConfigMap before rerunning." % (path, exc))
    if not isinstance(state, dict) or not isinstance(state.get("phase_completed"), int):
        raise RotationError("state file %s has no integer phase_completed; restore it from its backup or the state ConfigMap before rerunning." % path)
    return state


def state_json(state):
    return (json.dumps(state, indent=2, sort_keys=True) + "\n").encode("utf-8")


def new_state(rotation, now, phase_count, data=None):
    """A fresh rotation: nothing completed yet; its id is the UTC start time."""
    return {
        "version": STATE_VERSION,
        "rotation": rotation,
        "id": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)),
        "started": int(now),
        "updated": int(now),
        "phase_completed": 0,
        "phase_count": phase_count,
        "status": "in_progress",
        "history": [],
        "data": dict(data or {}),
    }


def complete_phase(state, phase, now, data=None):
    """Return (new_state, changed) with ``phase`` recorded as done.

    Phases complete in order; recording a phase that is already done changes nothing,
    so a rerun that repeats a finished phase stays idempotent.
    """
    done = state["phase_completed"]
    if phase <= done:
        merged = dict(state.get("data") or {})
        merged.update(data or {})
        if merged == (state.get("data") or {}):
            return state, False
        updated = dict(state, data=merged, updated=int(now))
        return updated, True
    if phase != done + 1:
        raise RotationError(
            "phase %d cannot be recorded as done: rotation %s %s has only completed phase %d, so "
            "phase %d must run first." % (phase, state["rotation"], state["id"], done, done + 1)
        )
    merged = dict(state.get("data") or {})
    merged.update(data or {})
    history = list(state.get("history") or [])
    history.append({"phase": phase, "completed": int(now)})
    count = state.get("phase_count") or phase
    updated = dict(state, phase_completed=phase, data=merged, history=history, updated=int(now), status="complete" if phase >= count else "in_progress")
    return updated, True


def pending_phases(state, phases, stop_after=None):
    """The (number, description) of phases a run would do, honouring the gate."""
    done = state["phase_completed"] if state else 0
    if state and state.get("status") == "complete":
        return []
    return [(number, text) for number, text in phases if number > done and (stop_after is None or number <= stop_after)]


def plan(rotation, state, stop_after=None, restart_completed=False):
    """What a run of ``rotation`` would do from ``state``: its phases, the ones still to do
    (up to the gate ``stop_after``), the next one. None for a rotation without a fixed plan.
    A complete rotation has nothing to do unless a new one starts (``restart_completed``)."""
    phases = PHASES.get(rotation)
    if phases is None:
        return None
    if stop_after is not None and not 1 <= stop_after <= len(phases):
        raise RotationError("stop_after_phase must be a phase number from 1 to %d, got %d." % (len(phases), stop_after), "stop_after_phase")
    if state and state.get("status") == "complete" and restart_completed:
        state = None
    pending = pending_phases(state, phases, stop_after)
    return {
        "phase_count": len(phases),
        "phases": ["phase %d: %s" % phase for phase in phases],
        "pending": ["phase %d: %s" % phase for phase in pending],
        "next_phase": pending[0][0] if pending else None,
    }


def state_configmap_data(state):
    """The state as the string map a ConfigMap holds (history as JSON)."""
    data = {
        "rotation": state["rotation"],
        "id": state["id"],
        "status": state["status"],
        "phase_completed": str(state["phase_completed"]),
        "phase_count": str(state.get("phase_count") or ""),
        "started": str(state["started"]),
        "updated": str(state["updated"]),
        "history": json.dumps(state.get("history") or [], sort_keys=True),
    }
    for key, value in sorted((state.get("data") or {}).items()):
        data["data." + key] = str(value)
    return data


def record_run(existing, rotation, success, now):
    """The rotation-record ConfigMap data after one run of ``rotation``.

    Keys follow docs/exporter.md: ``<rotation>.last_success`` and
    ``<rotation>.last_failure`` in epoch seconds, ``<rotation>.failures_total`` a
    counter that only grows (the exporter turns it into CertRotationFailures).
    """
    validate_rotation_name(rotation)
    data = dict(existing or {})
    if success:
        data[rotation + ".last_success"] = str(int(now))
    else:
        data[rotation + ".last_failure"] = str(int(now))
        try:
            total = int(data.get(rotation + ".failures_total", "0"))
        except ValueError:
            total = 0
        data[rotation + ".failures_total"] = str(total + 1)
    data.setdefault(rotation + ".failures_total", "0")
    return data


def bundle_pem(pems, field="roots"):
    """One PEM bundle from several PEM texts, each certificate once, in first-seen order."""
    seen = set()
    certs = []
    for pem in pems:
        if not pem:
            continue
        for cert in load_certificates(pem if isinstance(pem, bytes) else pem.encode("ascii"), field):
            fingerprint = sha256_fingerprint(cert)
            if fingerprint not in seen:
                seen.add(fingerprint)
                certs.append(cert)
    if not certs:
        raise RotationError("%s holds no certificate, so there is no trust bundle to write." % field)
    return certificates_pem(certs)


def pair_material(cert_path, key_path, passphrase, field):
    """(cert_pem, key_pem) of a CA pair after checking the key matches the certificate."""
    cert_pem = files.read_if_exists(cert_path)
    key_pem = files.read_if_exists(key_path)
    if cert_pem is None or key_pem is None:
        raise RotationError("%s: %s or %s is missing." % (field, cert_path, key_path))
    cert = load_certificate(cert_pem, field)
    key = load_private_key(key_pem, field, passphrase=passphrase)
    if not key_matches_certificate(key, cert):
        raise RotationError("%s: the key %s does not match the certificate %s." % (field, key_path, cert_path))
    return cert_pem, key_pem


def promote_pair(source, dest, archive_dir, passphrase=None, dry_run=False, carry_crls=False):
    """Make ``dest`` hold the CA of ``source``; the CA it replaces is copied to ``archive_dir`` first.

    ``source`` and ``dest`` are dicts with ``cert``, ``key`` and optionally ``chain``
    paths. Order matters for a crash at any moment: (1) the replaced CA is written to
    the archive (key 0600) and that copy is checked; (2) the new certificate, key and
    chain are switched in - in one rename when they share a directory (the versioned
    layout mtls_ca writes, files.VersionedBatch), otherwise renamed back to back, when
    a rerun repairs what a crash between two renames left. With ``carry_crls`` the
    replaced CA's CRLs beside ``dest`` move to the archive with it. Returns a list of the
    paths that changed (or would).
    """
    cert_pem, key_pem = pair_material(source["cert"], source["key"], passphrase, "promote source")
    chain_pem = files.read_if_exists(source["chain"]) if source.get("chain") else None
    wanted = [(dest["cert"], cert_pem, files.CERT_MODE), (dest["key"], key_pem, files.KEY_MODE)]
    if dest.get("chain") and chain_pem is not None:
        wanted.append((dest["chain"], chain_pem, files.CERT_MODE))
    if all(files.read_if_exists(path) == content for path, content, _mode in wanted):
        return []
    changed = [path for path, content, _mode in wanted if files.read_if_exists(path) != content]
    old_cert = files.read_if_exists(dest["cert"])
    replaced_crls = _crls_beside(dest) if carry_crls and old_cert is not None and old_cert != cert_pem else []
    if dry_run:
        return changed + replaced_crls
    old_key = files.read_if_exists(dest["key"])
    if old_key is not None and old_key != key_pem:
        # The CA key being replaced is never lost: keep it (and its certificate) in the archive.
        archive_copy(dest, archive_dir)
    elif old_cert is not None and old_cert != cert_pem:
        archive_copy(dest, archive_dir, key=False)
    for path in replaced_crls:
        _archive_file(path, archive_dir)
    directory = files.same_directory([path for path, _content, _mode in wanted])
    with files.VersionedBatch(directory) if directory is not None else files.AtomicBatch() as batch:
        for path, content, mode in wanted:
            batch.stage(path, content, mode)
        batch.commit()
    # The replaced CA's CRLs go with it (trust_bundle delivers them from the archive while
    # the rotation keeps the old root trusted); left here they would pass for the new CA's.
    for path in replaced_crls:
        files.remove(path)
    return changed + replaced_crls


# CRLs kept beside a CA by mtls_crl and playbooks/tasks/crl_sign.yml.
CRL_FILES = ("ca.crl", "chain.crl")


def _crls_beside(pair):
    directory = os.path.dirname(pair["cert"])
    return [os.path.join(directory, name) for name in CRL_FILES if os.path.isfile(os.path.join(directory, name))]


def _archive_file(path, archive_dir):
    """Copy one public file into ``archive_dir`` and check the copy."""
    if not os.path.isdir(archive_dir):
        os.makedirs(archive_dir, 0o700)
    content = files.read_if_exists(path)
    target = os.path.join(archive_dir, os.path.basename(path))
    files.atomic_write(target, content, files.CERT_MODE)
    if files.read_if_exists(target) != content:
        raise RotationError("the archive copy %s does not match %s; nothing was replaced." % (target, path))
    return target


def archive_copy(pair, archive_dir, key=True):
    """Copy a CA's files into ``archive_dir`` (0700; key 0600) and check the copy."""
    if not os.path.isdir(archive_dir):
        os.makedirs(archive_dir, 0o700)
    os.chmod(archive_dir, 0o700)
    copied = []
    for role in ("cert", "key", "chain"):
        if role == "key" and not key:
            continue
        path = pair.get(role)
        content = files.read_if_exists(path) if path else None
        if content is None:
            continue
        target = os.path.join(archive_dir, os.path.basename(path))
        existing = files.read_if_exists(target)
        if existing is not None and existing != content:
            # Never overwrite an archived key with a different one: keep both.
            target = files.backup_path_for(target)
        mode = files.KEY_MODE if role == "key" else files.CERT_MODE
        files.atomic_write(target, content, mode)
        if files.read_if_exists(target) != content:
            raise RotationError("the archive copy %s does not match %s; nothing was replaced." % (target, path))
        copied.append(target)
    return copied


def archive_move(pair, archive_dir, dry_run=False):
    """Move a CA's files into ``archive_dir``: copy, verify, then remove the originals.

    Returns the archived paths. A crash in between leaves both copies, never none.
    """
    present = [pair[role] for role in ("cert", "key", "chain") if pair.get(role) and os.path.exists(pair[role])]
    if not present:
        return []
    if dry_run:
        return present
    archive_copy(pair, archive_dir)
    for path in present:
        files.remove(path)
    return present

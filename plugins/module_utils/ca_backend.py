# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backend of mtls_ca: a root or intermediate CA kept in files.

plugins/modules/mtls_ca.py builds its AnsibleModule from ``argument_spec()`` and
``VALIDATION_RULES`` and runs this file through module_backend.run_as_module. A run is
three steps, all options checked before the first one:

- decide: read the CA files and say whether and why the certificate is re-signed, and
  whether it gets a new key (``_read_existing``, ``_decide``);
- build: the new key and certificate, in memory (``_build``);
- write: stage the certificate, key and chain and switch them together (``_write``).

An existing CA key is never replaced or removed without a backup copy, and a key that
cannot be read is an error, never a reason to make a new one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.zerotrust.mtls.plugins.module_utils import backend_results, files
from ansible_collections.zerotrust.mtls.plugins.module_utils.args_file_output import FILE_OUTPUT_SPEC
from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import read_file
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
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import PkiError
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_time import iso8601, parse_duration, parse_renew_before, utcnow

_PATH_FIELDS = ("cert_path", "key_path", "chain_path")


class _Ca(backend_results.RunState):
    """One CA request: the options as parsed, what the files hold, what was decided and built."""

    __slots__ = (
        "is_root",
        "key_type",
        "valid_for",
        "path_length",
        "renew_before",
        "cert_mode",
        "key_mode",
        "directory",
        "issuer",
        "cert_bytes",
        "key_bytes",
        "cert",
        "key",
        "encrypt_existing_key",
        "reason",
        "new_key_needed",
        "new_cert",
        "new_key",
    )

    def parent_chain(self):
        return ([self.issuer.cert] + self.issuer.chain) if self.issuer is not None else []

    def final(self):
        """(certificate, key) of the CA after this run; None where check mode cannot know them yet."""
        cert = self.new_cert if self.new_cert is not None else (self.cert if self.reason is None else None)
        key = self.new_key if self.new_key is not None else (self.key if self.reason is None or not self.new_key_needed else None)
        return cert, key


def _request(params, now):
    """Every option checked, before anything is read: the _Ca to work on."""
    ca = _Ca(params, now)
    ca.is_root = not params["parent_cert_path"]
    if not params["common_name"]:
        raise PkiError("common_name", "common_name is required with state=present; give the CA's subject common name.")
    ca.key_type = validate_key_type(params["key_type"])
    ca.valid_for = parse_duration(params["valid_for"] or ("3650d" if ca.is_root else "1825d"), "valid_for")
    ca.path_length = params["path_length"]
    if ca.path_length is None and not ca.is_root:
        ca.path_length = 0
    ca.renew_before = parse_renew_before(params["renew_before"], "renew_before")
    ca.cert_mode = files.parse_mode(params["mode"], files.CERT_MODE, "mode")
    ca.key_mode = files.parse_mode(params["key_mode"], files.KEY_MODE, "key_mode")
    for field in _PATH_FIELDS:
        if params[field]:
            files.check_writable(params[field], field)
    ca.directory = _versioned_directory(params)
    return ca


def _versioned_directory(params):
    """The one directory of all the paths, written in the versioned layout (one rename
    switches the pair); None when they are in several, each replaced by its own rename."""
    paths = [params[field] for field in _PATH_FIELDS if params[field]]
    directory = files.same_directory(paths)
    if directory is None:
        return None
    for field in _PATH_FIELDS:
        if os.path.basename(params[field] or "").startswith(".."):
            raise files.FileError(
                params[field],
                "%s %s: names starting with '..' are reserved for the versioned layout of %s; choose another file name." % (field, params[field], directory),
                field,
            )
    if len(set(os.path.basename(path) for path in paths)) != len(paths):
        raise files.FileError(params["key_path"], "cert_path, key_path and chain_path must be three different files.", "key_path")
    return directory


def _load_parent(ca):
    """The parent CA of an intermediate, then the request checked against it."""
    params = ca.params
    if not ca.is_root:
        ca.issuer = load_issuer(
            read_file(params["parent_cert_path"], "parent_cert_path"),
            read_file(params["parent_key_path"], "parent_key_path"),
            "parent_cert_path",
            "parent_key_path",
            passphrase=params["parent_key_passphrase"],
            chain_pem=read_file(params["parent_chain_path"], "parent_chain_path") if params["parent_chain_path"] else None,
            chain_field="parent_chain_path",
            now=ca.now,
            passphrase_field="parent_key_passphrase",
        )
    # Path length under the parent, lifetime within the parent's, name constraint syntax:
    # checked before looking at what exists, so bad input always fails.
    check_ca(
        params["common_name"],
        ca.valid_for,
        issuer=ca.issuer,
        path_length=ca.path_length,
        permitted_dns_domains=params["permitted_dns_domains"],
        permitted_uri_domains=params["permitted_uri_domains"],
        now=ca.now,
    )


def _read_existing(ca):
    """Decide step, part one: the CA files as they are."""
    params = ca.params
    ca.cert_bytes = read_file(params["cert_path"], "cert_path", required=False)
    ca.key_bytes = read_file(params["key_path"], "key_path", required=False)
    # A plain key with a passphrase given is encrypted in place (same key), once.
    ca.encrypt_existing_key = bool(ca.key_bytes is not None and params["key_passphrase"] and not is_encrypted_pem(ca.key_bytes))
    if ca.key_bytes is not None:
        # An existing CA key we cannot read is an error, never a reason to make a new one:
        # that would silently orphan every certificate the CA has issued.
        ca.key = load_private_key(ca.key_bytes, "key_path", None if ca.encrypt_existing_key else params["key_passphrase"], passphrase_field="key_passphrase")
    if ca.cert_bytes is not None:
        try:
            ca.cert = load_certificate(ca.cert_bytes, "cert_path")
        except PkiError:
            ca.cert = None  # unreadable certificate: re-sign it from the key (drift)


def _decide(ca):
    """Decide step, part two: why the certificate is re-signed (None: it stays), and whether with a new key."""
    params = ca.params
    if params["force"]:
        ca.reason = "forced"
    elif ca.cert_bytes is not None and ca.cert is None:
        ca.reason = "drift"
    else:
        ca.reason = ca_reissue_reason(
            ca.cert,
            ca.key,
            params["common_name"],
            ca.key_type,
            organization=params["organization"],
            path_length=ca.path_length,
            permitted_dns_domains=params["permitted_dns_domains"],
            permitted_uri_domains=params["permitted_uri_domains"],
            issuer=ca.issuer,
            renew_before=ca.renew_before,
            now=ca.now,
        )
    ca.new_key_needed = ca.reason is not None and (ca.key is None or params["force"] or key_type_of(ca.key) != ca.key_type)


def _build(ca):
    """Build step: the new key (or the kept one) and the new certificate, in memory."""
    params = ca.params
    ca.new_key = generate_private_key(ca.key_type) if ca.new_key_needed else ca.key
    ca.new_cert = build_ca(
        ca.new_key,
        params["common_name"],
        ca.valid_for,
        organization=params["organization"],
        issuer=ca.issuer,
        path_length=ca.path_length,
        permitted_dns_domains=params["permitted_dns_domains"],
        permitted_uri_domains=params["permitted_uri_domains"],
        now=ca.now,
    )


def _planned_files(ca, batch):
    """[(path, content, mode, field, backup)] the CA should have on disk; in check mode a
    certificate to be issued has no content yet, and nothing is written then."""
    params = ca.params
    planned = []
    cert, _key = ca.final()
    if cert is not None:
        planned.append((params["cert_path"], certificate_pem(cert), ca.cert_mode, "cert_path", params["backup"]))
        if params["chain_path"]:
            planned.append((params["chain_path"], certificates_pem([cert] + ca.parent_chain()), ca.cert_mode, "chain_path", params["backup"]))
    if ca.new_key_needed and ca.new_key is not None:
        # Replacing an existing CA key always keeps a copy of the old one.
        planned.append(
            (params["key_path"], private_key_pem(ca.new_key, params["key_passphrase"]), ca.key_mode, "key_path", params["backup"] or ca.key_bytes is not None)
        )
    elif ca.encrypt_existing_key:
        # The plain key is kept as a backup: if the passphrase turns out to be wrong or
        # lost, that copy is the only way back to the CA.
        planned.append((params["key_path"], private_key_pem(ca.key, params["key_passphrase"]), ca.key_mode, "key_path", True))
    elif ca.key_bytes is not None and (files.current_mode(params["key_path"]) != ca.key_mode or not batch.in_layout(params["key_path"])):
        # The key stays: only its mode or (same directory) the versioned layout can need fixing.
        planned.append((params["key_path"], ca.key_bytes, ca.key_mode, "key_path", False))
    return planned


def _write(ca, check_mode):
    """Write step: (changed, reason to report, backup files)."""
    changed, reason, backups = ca.reason is not None, ca.reason, []
    if ca.encrypt_existing_key and not (ca.new_key_needed and ca.new_key is not None):
        reason = reason or "key_encrypted"
    batch = files.VersionedBatch(ca.directory) if ca.directory is not None else files.AtomicBatch()
    with batch:
        for path, content, mode, field, backup in _planned_files(ca, batch):
            if not files.needs_write(path, content, mode) and batch.in_layout(path):
                continue
            # Plain files of older releases are converted to the versioned layout (same bytes).
            changed, reason = True, reason or "files_updated"
            if not check_mode:
                batch.stage(path, content, mode, backup=backup, backup_mode=files.KEY_MODE if field == "key_path" else None, field=field)
        if not check_mode:
            backups = sorted(path for path in batch.commit().values() if path)
    return changed, reason, backups


def _state(cert, key, key_encrypted):
    if cert is None:
        return None
    state = {
        "subject": cert.subject.rfc4514_string(),
        "serial": "%X" % cert.serial_number,
        "not_after": iso8601(cert.not_valid_after_utc),
        "sha256_fingerprint": sha256_fingerprint(cert),
    }
    if key is not None:
        state["key_fingerprint"] = key_fingerprint(key)
        state["key_encrypted"] = key_encrypted
    return state


def _outcome(ca, changed, reason, backups, leftovers, diff):
    cert, key = ca.final()
    outcome = dict(
        changed=changed,
        reason=reason or "unchanged",
        backup_files=backups,
        is_root=ca.is_root,
        layout="versioned" if ca.directory is not None else "files",
        leftovers_removed=len(leftovers),
        subject=None,
        serial=None,
        not_before=None,
        not_after=None,
        sha256_fingerprint=None,
        key_fingerprint=None,
        cert_pem=None,
        chain_pem=None,
    )
    if cert is not None:
        outcome.update(
            subject=cert.subject.rfc4514_string(),
            serial="%X" % cert.serial_number,
            not_before=iso8601(cert.not_valid_before_utc),
            not_after=iso8601(cert.not_valid_after_utc),
            sha256_fingerprint=sha256_fingerprint(cert),
            cert_pem=certificate_pem(cert).decode("ascii"),
            chain_pem=certificates_pem([cert] + ca.parent_chain()).decode("ascii"),
        )
    if key is not None:
        outcome["key_fingerprint"] = key_fingerprint(key)
    if diff:
        after = _state(cert, key, bool(ca.params["key_passphrase"])) if cert is not None else ("(would be %s)" % reason if reason else None)
        before = _state(ca.cert, ca.key, ca.key_bytes is not None and is_encrypted_pem(ca.key_bytes))
        outcome["diff"] = {"before": before or {}, "after": after or {}}
    return outcome


def ensure_ca(module):
    """state=present: the CA in ``module.params`` exists and is what was asked for."""
    ca = _request(module.params, utcnow())
    _load_parent(ca)
    # What killed runs left (never a change; check mode only counts it), once the
    # request is known to be valid.
    leftovers = files.remove_leftovers_beside([module.params[field] for field in _PATH_FIELDS], dry_run=module.check_mode)
    _read_existing(ca)
    _decide(ca)
    if ca.reason is not None and not module.check_mode:
        _build(ca)
    changed, reason, backups = _write(ca, module.check_mode)
    return _outcome(ca, changed, reason, backups, leftovers, module._diff)


def remove_ca(module):
    """state=absent: the CA files removed, the key always with a backup copy."""
    params = module.params
    backups = []
    targets = [(params["cert_path"], False), (params["key_path"], True)]
    if params["chain_path"]:
        targets.append((params["chain_path"], False))
    present = [(path, is_key) for path, is_key in targets if files.read_if_exists(path) is not None]
    before = dict((path, "present") for path, _is_key in present)
    if not module.check_mode:
        for path, is_key in present:
            # A CA key is never destroyed without a copy; in the versioned layout its file in
            # the hidden version directory goes too.
            result = files.remove_versioned(path, backup=params["backup"] or is_key, backup_mode=files.KEY_MODE if is_key else None)
            if result.backup_path:
                backups.append(result.backup_path)
    outcome = dict(changed=bool(present), reason="removed" if present else "absent", backup_files=backups)
    if module._diff:
        outcome["diff"] = {"before": before, "after": dict((path, "absent") for path in before)}
    return outcome


# --------------------------------------------------------------------------- the backend interface


# ``module``: an AnsibleModule, or anything with ``params``, ``check_mode`` and ``_diff``.
run_module = backend_results.run_by_state(ensure_ca, remove_ca)


def argument_spec():
    spec = dict(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        cert_path=dict(type="path", required=True),
        key_path=dict(type="path", required=True, no_log=False),
        chain_path=dict(type="path"),
        common_name=dict(type="str"),
        organization=dict(type="str"),
        key_type=dict(type="str", choices=list(KEY_TYPES), default="ec_p256", no_log=False),
        key_passphrase=dict(type="str", no_log=True),
        valid_for=dict(type="str"),
        path_length=dict(type="int"),
        permitted_dns_domains=dict(type="list", elements="str", default=[]),
        permitted_uri_domains=dict(type="list", elements="str", default=[]),
        parent_cert_path=dict(type="path"),
        parent_key_path=dict(type="path", no_log=False),
        parent_key_passphrase=dict(type="str", no_log=True),
        parent_chain_path=dict(type="path"),
        renew_before=dict(type="str"),
        force=dict(type="bool", default=False),
    )
    spec.update(FILE_OUTPUT_SPEC)
    return spec


VALIDATION_RULES = dict(
    required_together=[("parent_cert_path", "parent_key_path")],
    required_by={"parent_key_passphrase": "parent_key_path", "parent_chain_path": "parent_cert_path"},
)

# Bad input and unusable files (errors.MtlsError and its subclasses): one sentence each.
KNOWN_ERRORS = backend_results.KNOWN_ERRORS
failure_result, unexpected_failure_result = backend_results.failure_results("mtls_ca")

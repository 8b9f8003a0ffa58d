# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issuance of leaf certificates: the backend of mtls_cert.

Both plugins/modules/mtls_cert.py (as a module, on any host) and plugins/action/mtls_cert.py
(in the controller's worker process, see plugins/plugin_utils/in_process.py) import this
file; neither imports the other. A run is three steps:

- decide: the requested certificates (``issuance_items.build_items``), then read the
  existing files and say per certificate whether and why to reissue (``_inspect``);
- build: make every key and certificate in memory, before the first write (``_issue``);
- write: stage every file and switch them in one batch (``_write``), then report.

The backend interface the callers use: ``argument_spec()``, ``VALIDATION_RULES``,
``run_module(ctx)`` (``ctx`` has ``params``, ``check_mode`` and ``_diff``),
``KNOWN_ERRORS``, ``failure_result(exc)`` and ``unexpected_failure_result(exc)``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.mtls.plugins.module_utils import backend_results, files
from ansible_collections.zerotrust.mtls.plugins.module_utils.args_file_output import FILE_OUTPUT_SPEC
from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import read_file
from ansible_collections.zerotrust.mtls.plugins.module_utils.issuance_items import build_items
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_build import USAGES, build_leaf, check_leaf
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_certs import (
    certificate_pem,
    load_certificate,
    load_issuer,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_fingerprints import key_fingerprint, sha256_fingerprint
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_keys import (
    KEY_TYPES,
    generate_private_key,
    key_type_of,
    load_private_key,
    private_key_pem,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_renewal import reissue_reason
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import PkiError, check_cryptography
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_time import (
    iso8601,
    parse_renew_before,
    utcnow,
)

KEY_TYPE_CHOICES = list(KEY_TYPES)
USAGE_CHOICES = list(USAGES)
_INVOCATION_ECHO_LIMIT = 50


def _inspect(item, issuer, renew_before, now, force):
    """Read the existing files of ``item`` and decide whether and why to reissue."""
    item.cert_bytes, item.cert_mode = files.read_with_mode(item.cert_path, "cert_path")
    item.key_bytes, item.key_mode = files.read_with_mode(item.key_path, "key_path")
    cert_error = key_error = None
    if item.cert_bytes is not None:
        try:
            item.cert = load_certificate(item.cert_bytes, "cert_path")
        except PkiError as exc:
            cert_error = exc
    if item.key_bytes is not None:
        try:
            item.key = load_private_key(item.key_bytes, "key_path")
        except PkiError as exc:
            key_error = exc
    reason = reissue_reason(
        item.spec,
        issuer,
        item.cert,
        item.key,
        cert_error=cert_error,
        key_error=key_error,
        renew_before=renew_before,
        now=now,
        cert_missing=item.cert_bytes is None,
        key_missing=item.key_bytes is None,
    )
    if reason is None and force:
        reason = "forced"
    item.reason = reason


def _planned_files(item, chain_pem, cert_mode, key_mode):
    """[(path, content, mode, is_key, bytes_on_disk, mode_on_disk, option)] that ``item`` should have on disk.

    ``bytes_on_disk`` and ``mode_on_disk`` are what _inspect read (None: no file), or files.UNREAD
    and None for the chain files.

    In check mode a certificate to be issued has no content yet; nothing is written then.
    """
    cert_pem = item.new_cert_pem if item.new_cert_pem is not None else item.cert_bytes
    key_pem = item.new_key_pem if item.new_key_pem is not None else item.key_bytes
    planned = [
        (item.cert_path, cert_pem, cert_mode, False, item.cert_bytes, item.cert_mode, "cert_path"),
        (item.key_path, key_pem, key_mode, True, item.key_bytes, item.key_mode, "key_path"),
    ]
    if item.chain_path:
        planned.append((item.chain_path, chain_pem, cert_mode, False, files.UNREAD, None, "chain_path"))
    if item.fullchain_path:
        planned.append((item.fullchain_path, (cert_pem or b"") + chain_pem, cert_mode, False, files.UNREAD, None, "fullchain_path"))
    return planned


def _current_cert_and_key(item):
    if item.new_cert is not None:
        return item.new_cert, item.new_key
    if item.reason in (None, "files_updated"):
        return item.cert, item.key
    return None, None  # check mode: would be issued, nothing known yet


def _result_entry(item):
    # Kept to the essentials: with 1,000 certificates, every extra field costs time in
    # Ansible's result processing.
    cert, _key = _current_cert_and_key(item)
    entry = {"name": item.name, "changed": item.changed, "reason": item.reason or "unchanged", "serial": None, "not_after": None, "sha256_fingerprint": None}
    if cert is not None:
        entry["serial"] = "%X" % cert.serial_number
        entry["not_after"] = iso8601(cert.not_valid_after_utc)
        entry["sha256_fingerprint"] = sha256_fingerprint(cert)
    return entry


def _diff_state(cert, key):
    if cert is None:
        return None
    state = {"serial": "%X" % cert.serial_number, "not_after": iso8601(cert.not_valid_after_utc), "sha256_fingerprint": sha256_fingerprint(cert)}
    if key is not None:
        state["key_fingerprint"] = key_fingerprint(key)
    return state


def _read_issuer(params, now):
    """The CA (certificate, key, optional chain) that signs every certificate of the call."""
    ca_cert_bytes = read_file(params["ca_cert_path"], "ca_cert_path")
    ca_key_bytes = read_file(params["ca_key_path"], "ca_key_path")
    chain_bytes = read_file(params["ca_chain_path"], "ca_chain_path") if params["ca_chain_path"] else None
    return load_issuer(
        ca_cert_bytes,
        ca_key_bytes,
        "ca_cert_path",
        "ca_key_path",
        passphrase=params["ca_key_passphrase"],
        chain_pem=chain_bytes,
        chain_field="ca_chain_path",
        now=now,
        passphrase_field="ca_key_passphrase",
    )


def _remove_leftovers(params, check_mode):
    """What killed runs left (never a change; check mode only counts it)."""
    if params["certs"] is not None:
        return files.remove_leftovers(params["dest_dir"], dry_run=check_mode)
    return files.remove_leftovers_beside([params[field] for field in ("cert_path", "key_path", "chain_path", "fullchain_path")], dry_run=check_mode)


def _issue(item, issuer, params, now):
    """Build step: the new key (or the kept one) and certificate of ``item``, in memory."""
    reuse_key = not params["rotate_key"] and item.key is not None and item.reason != "key_type_changed" and key_type_of(item.key) == item.spec.key_type
    item.new_key = item.key if reuse_key else generate_private_key(item.spec.key_type)
    item.new_cert = build_leaf(issuer, item.spec, item.new_key, now)
    item.new_cert_pem = certificate_pem(item.new_cert)
    item.new_key_pem = item.key_bytes if reuse_key else private_key_pem(item.new_key)


def _stays(item, batch, path, content, mode, known, known_mode):
    """Whether a file of a certificate that stays is already right on disk.

    Its cert and key bytes are right, so only their modes, the chain files and (batch
    mode) the versioned layout can need fixing.
    """
    if known is not files.UNREAD:
        return known_mode == mode and batch.in_layout(path)
    return not files.needs_write(path, content, mode) and batch.in_layout(path)


def _write(items, params, chain_pem, cert_mode, key_mode, check_mode):
    """Write step: every file staged, then switched in one commit; returns the backup paths."""
    # Batch mode: kubelet's versioned layout, every file of dest_dir switched in one rename.
    batch = files.VersionedBatch(params["dest_dir"]) if params["certs"] is not None else files.AtomicBatch()
    backup_files = []
    with batch:
        for item in items:
            if item.reason is not None:
                item.changed = True
            planned = _planned_files(item, chain_pem, cert_mode, key_mode)
            for path, content, mode, is_key, known, known_mode, field in planned:
                if item.reason is None:
                    if _stays(item, batch, path, content, mode, known, known_mode):
                        continue
                    item.changed = True
                    item.reason = "files_updated"
                if not check_mode:
                    batch.stage(
                        path,
                        content,
                        mode,
                        backup=params["backup"],
                        backup_mode=files.KEY_MODE if is_key else None,
                        existing=known,
                        field="dest_dir" if params["certs"] is not None else field,
                    )
        if not check_mode:
            backups = batch.commit()
            backup_files = sorted(path for path in backups.values() if path)
    return backup_files


def _diff(items):
    before, after = {}, {}
    for item in items:
        if not item.changed:
            continue
        before[item.name] = _diff_state(item.cert, item.key)
        after[item.name] = (
            _diff_state(item.new_cert, item.new_key)
            if item.new_cert is not None
            else (_diff_state(item.cert, item.key) if item.reason == "files_updated" else "(would be issued: %s)" % item.reason)
        )
    return {"before": before, "after": after}


def _outcome(items, params, backup_files, leftovers, diff):
    results = [_result_entry(item) for item in items]
    summary = {}
    for entry in results:
        summary[entry["reason"]] = summary.get(entry["reason"], 0) + 1
    outcome = dict(changed=any(item.changed for item in items), certs=results, summary=summary, backup_files=backup_files, leftovers_removed=len(leftovers))
    if params["certs"] is None:
        for key in ("reason", "serial", "not_after", "sha256_fingerprint"):
            outcome[key] = results[0][key]
        _cert, key = _current_cert_and_key(items[0])
        outcome["key_fingerprint"] = key_fingerprint(key) if key is not None else None
        outcome["cert_path"], outcome["key_path"] = items[0].cert_path, items[0].key_path
    if params["certs"] is not None and len(params["certs"]) > _INVOCATION_ECHO_LIMIT:
        # Ansible echoes every argument back in `invocation` (shown with -vvv). For a big
        # batch that doubles the result and the controller's work for no information the
        # caller lacks; keep the other arguments and only count the items.
        module_args = dict(params)
        module_args["certs"] = "(%d items, see certs[].name in the result)" % len(params["certs"])
        outcome["invocation"] = {"module_args": module_args}
    if diff:
        outcome["diff"] = _diff(items)
    return outcome


def run_module(module):
    """Does the work for ``module``: anything with ``params``, ``check_mode`` and ``_diff``.

    That is an AnsibleModule when plugins/modules/mtls_cert.py runs as a module, and a
    plain stand-in when the action plugin runs this in the controller process.
    Raises KNOWN_ERRORS for bad input; failure_result() turns them into the result.
    """
    check_cryptography()
    params = module.params
    cert_mode = files.parse_mode(params["mode"], files.CERT_MODE, "mode")
    key_mode = files.parse_mode(params["key_mode"], files.KEY_MODE, "key_mode")
    renew_before = parse_renew_before(params["renew_before"], "renew_before")
    items = build_items(params)
    now = utcnow()
    issuer = _read_issuer(params, now)
    leftovers = _remove_leftovers(params, module.check_mode)

    # Decide everything, and build every certificate, before the first write.
    for item in items:
        _inspect(item, issuer, renew_before, now, params["force"])
        if item.reason is None:
            continue
        check_leaf(issuer, item.spec, now)
        if not module.check_mode:
            _issue(item, issuer, params, now)

    backup_files = _write(items, params, issuer.chain_pem(), cert_mode, key_mode, module.check_mode)
    return _outcome(items, params, backup_files, leftovers, module._diff)


def argument_spec():
    list_of_str = dict(type="list", elements="str", default=[])
    spec = dict(
        ca_cert_path=dict(type="path", required=True),
        ca_key_path=dict(type="path", required=True),
        ca_key_passphrase=dict(type="str", no_log=True),
        ca_chain_path=dict(type="path"),
        cert_path=dict(type="path"),
        key_path=dict(type="path", no_log=False),
        chain_path=dict(type="path"),
        fullchain_path=dict(type="path"),
        certs=dict(
            type="list",
            elements="dict",
            options=dict(
                name=dict(type="str", required=True),
                common_name=dict(type="str"),
                organization=dict(type="str"),
                dns_names=dict(type="list", elements="str"),
                ip_addresses=dict(type="list", elements="str"),
                uris=dict(type="list", elements="str"),
                emails=dict(type="list", elements="str"),
                usage=dict(type="str", choices=USAGE_CHOICES),
                key_type=dict(type="str", choices=KEY_TYPE_CHOICES, no_log=False),
                valid_for=dict(type="str"),
            ),
        ),
        dest_dir=dict(type="path"),
        write_chain=dict(type="bool", default=False),
        write_fullchain=dict(type="bool", default=False),
        common_name=dict(type="str"),
        organization=dict(type="str"),
        dns_names=dict(list_of_str),
        ip_addresses=dict(list_of_str),
        uris=dict(list_of_str),
        emails=dict(list_of_str),
        usage=dict(type="str", choices=USAGE_CHOICES, default="both"),
        key_type=dict(type="str", choices=KEY_TYPE_CHOICES, default="ec_p256", no_log=False),
        valid_for=dict(type="str", default="30d"),
        renew_before=dict(type="str"),
        rotate_key=dict(type="bool", default=True, no_log=False),
        force=dict(type="bool", default=False),
    )
    spec.update(FILE_OUTPUT_SPEC)
    return spec


# Cross-option rules, shared by AnsibleModule and by the action plugin's validator.
VALIDATION_RULES = dict(
    mutually_exclusive=[("certs", "cert_path"), ("certs", "key_path"), ("certs", "chain_path"), ("certs", "fullchain_path")],
    required_together=[("cert_path", "key_path")],
    required_one_of=[("certs", "cert_path")],
    required_by={"certs": "dest_dir"},
)

# Bad input and unusable files (errors.MtlsError and its subclasses): one sentence each.
KNOWN_ERRORS = backend_results.KNOWN_ERRORS
failure_result, unexpected_failure_result = backend_results.failure_results("mtls_cert")

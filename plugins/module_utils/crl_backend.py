# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backend of mtls_crl: a CRL signed by one of our CAs, kept fresh in a file.

plugins/modules/mtls_crl.py builds its AnsibleModule from ``argument_spec()`` and runs
this file through module_backend.run_as_module. A run is three steps, all options
checked before the first one:

- decide: read the current CRL and say whether and why it is re-signed (``_decide``);
- build: the new CRL, in memory (``_build``);
- write: one atomic rename (``_write``).

An existing file that is not a CRL is refused rather than replaced: its number is what
keeps the sequence monotonic, and a file we cannot parse may not be ours to overwrite.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


from ansible_collections.zerotrust.mtls.plugins.module_utils import backend_results, files
from ansible_collections.zerotrust.mtls.plugins.module_utils import crl as crl_utils
from ansible_collections.zerotrust.mtls.plugins.module_utils.crl_entries import parse_revoked
from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import read_file
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import PkiError
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_time import iso8601, parse_duration, parse_renew_before, utcnow


class _Crl(backend_results.RunState):
    """One CRL request: the options as parsed, the CRL there is, what was decided and built."""

    __slots__ = (
        "valid_for",
        "renew_before",
        "mode",
        "issuer",
        "wanted",
        "desired",
        "existing_bytes",
        "existing",
        "reason",
        "number",
        "this_update",
        "next_update",
        "new_crl",
    )


def _request(params, now):
    """Every option checked, before the current CRL is read: the _Crl to work on."""
    crl = _Crl(params, now)
    for field in ("ca_cert_path", "ca_key_path"):
        if not params[field]:
            raise PkiError(field, "%s is required with state=present; give the CA that signs the CRL." % field)
    crl.valid_for = parse_duration(params["valid_for"], "valid_for")
    crl.renew_before = parse_renew_before(params["renew_before"], "renew_before")
    if crl.renew_before is not None and crl.renew_before[0] == "absolute" and crl.renew_before[1] >= crl.valid_for:
        raise PkiError(
            "renew_before",
            "renew_before %s is not shorter than valid_for %s, so the CRL would be "
            "re-signed on every run; shorten renew_before." % (params["renew_before"], params["valid_for"]),
        )
    crl.mode = files.parse_mode(params["mode"], files.CERT_MODE, "mode")
    files.check_writable(params["crl_path"], "crl_path")
    crl.issuer = crl_utils.load_signer(
        read_file(params["ca_cert_path"], "ca_cert_path"), read_file(params["ca_key_path"], "ca_key_path"), params["ca_key_passphrase"], now=now
    )
    # The suboptions spec fills absent keys with None; the entries want only what was given.
    revoked = [dict((key, value) for key, value in entry.items() if value is not None) for entry in params["revoked"] or []]
    crl.wanted = parse_revoked(revoked, crl.issuer, now, read_file)
    return crl


def _read_existing(crl):
    path = crl.params["crl_path"]
    crl.existing_bytes = read_file(path, "crl_path", required=False)
    if crl.existing_bytes is None:
        return
    try:
        crl.existing = crl_utils.load_crl(crl.existing_bytes, "crl_path")
    except PkiError:
        raise PkiError(
            "crl_path",
            "crl_path %s exists but is not a certificate revocation list; move it "
            "aside or choose another path (an existing CRL is never overwritten "
            "unread, its number keeps the sequence growing)." % path,
        )


def _decide(crl):
    """Decide step: the entries the CRL lists and why it is re-signed (None: it stays), with its number and dates."""
    existing = crl.existing
    signed = existing is not None and crl_utils.signed_by(existing, crl.issuer.cert)
    crl.desired = crl_utils.desired_entries(crl.wanted, crl_utils.entries_of(existing) if signed else {}, crl.params["crl_mode"], crl.now)
    crl.reason = crl_utils.regenerate_reason(existing, signed, crl.desired, crl.valid_for, crl.renew_before, crl.now, ca_not_after=crl.issuer.not_after)
    old_number = crl_utils.crl_number(existing) if existing is not None else None
    if crl.reason is None:
        crl.number, crl.this_update, crl.next_update = old_number, existing.last_update_utc, existing.next_update_utc
    else:
        # The number only grows, even past a CRL another CA signed.
        crl.number = (old_number or 0) + 1
        crl.this_update, crl.next_update = crl_utils.plan_dates(crl.issuer, crl.valid_for, crl.now)


def _build(crl):
    """Build step: the new CRL, signed, in memory."""
    crl.new_crl = crl_utils.build_crl(crl.issuer, crl.desired, crl.number, crl.this_update, crl.next_update)


def _write(crl, outcome):
    """Write step: the new CRL (or the same bytes with the right mode) in one rename."""
    content = crl_utils.crl_pem(crl.new_crl) if crl.new_crl is not None else crl.existing_bytes
    result = files.atomic_write(crl.params["crl_path"], content, crl.mode, backup=crl.params["backup"], field="crl_path")
    if result.backup_path:
        outcome["backup_file"] = result.backup_path


def _outcome(crl, changed, reason, diff):
    issuer_name = crl.issuer.subject.rfc4514_string()
    outcome = dict(
        changed=changed,
        reason=reason or "unchanged",
        crl_number=crl.number,
        this_update=iso8601(crl.this_update),
        next_update=iso8601(crl.next_update),
        revoked=[crl_utils.serial_hex(serial) for serial in sorted(crl.desired)],
        revoked_entries=crl_utils.describe_entries(crl.desired),
        issuer=issuer_name,
        sha256_fingerprint=None,
        crl_pem=None,
    )
    final = crl.new_crl if crl.new_crl is not None else (crl.existing if reason in (None, "files_updated") else None)
    if final is not None:
        outcome.update(sha256_fingerprint=crl_utils.crl_fingerprint(final), crl_pem=crl_utils.crl_pem(final).decode("ascii"))
    if diff:
        existing = crl.existing
        before = (
            crl_utils.crl_state(
                crl_utils.crl_number(existing),
                existing.last_update_utc,
                existing.next_update_utc,
                existing.issuer.rfc4514_string(),
                crl_utils.entries_of(existing),
            )
            if existing
            else None
        )
        after = crl_utils.crl_state(crl.number, crl.this_update, crl.next_update, issuer_name, crl.desired)
        outcome["diff"] = {"before": before or {}, "after": after}
    return outcome


def ensure_crl(module):
    """state=present: the CRL in ``module.params['crl_path']`` lists what was asked for and is fresh."""
    crl = _request(module.params, utcnow())
    _read_existing(crl)
    _decide(crl)
    changed, reason = crl.reason is not None, crl.reason
    if crl.reason is None and files.current_mode(crl.params["crl_path"]) != crl.mode:
        changed, reason = True, "files_updated"
    if crl.reason is not None and not module.check_mode:
        _build(crl)
    outcome = _outcome(crl, changed, reason, module._diff)
    if changed and not module.check_mode:
        _write(crl, outcome)
    return outcome


def remove_crl(module):
    """state=absent: the CRL file removed (with a copy when backup)."""
    path = module.params["crl_path"]
    present = files.read_if_exists(path) is not None
    outcome = dict(changed=present, reason="removed" if present else "absent")
    if present and not module.check_mode:
        result = files.remove(path, backup=module.params["backup"])
        if result.backup_path:
            outcome["backup_file"] = result.backup_path
    if module._diff:
        outcome["diff"] = {"before": {"crl_path": "present"} if present else {}, "after": {"crl_path": "absent"} if present else {}}
    return outcome


# --------------------------------------------------------------------------- the backend interface


# ``module``: an AnsibleModule, or anything with ``params``, ``check_mode`` and ``_diff``.
run_module = backend_results.run_by_state(ensure_crl, remove_crl)


def argument_spec():
    return dict(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        ca_cert_path=dict(type="path"),
        ca_key_path=dict(type="path", no_log=False),
        ca_key_passphrase=dict(type="str", no_log=True),
        crl_path=dict(type="path", required=True),
        revoked=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                serial=dict(type="raw"),
                cert_path=dict(type="path"),
                reason=dict(type="str"),
                revocation_date=dict(type="str"),
            ),
        ),
        crl_mode=dict(type="str", choices=["generate", "update"], default="generate"),
        valid_for=dict(type="str", default=crl_utils.DEFAULT_VALID_FOR),
        renew_before=dict(type="str"),
        backup=dict(type="bool", default=False),
        mode=dict(type="raw", default="0644"),
    )


VALIDATION_RULES = {}

# Bad input and unusable files (errors.MtlsError and its subclasses): one sentence each.
KNOWN_ERRORS = backend_results.KNOWN_ERRORS
failure_result, unexpected_failure_result = backend_results.failure_results("mtls_crl")

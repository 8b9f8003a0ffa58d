# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The certificates one mtls_cert call asks for, checked before any file is read.

Part one of issuance's decide step: ``build_items(params)`` turns either cert_path and the
top-level options (one certificate) or each entry of certs over the top-level options (a
batch into dest_dir) into ``CertItem`` objects with a validated LeafSpec and their paths.
The rest of the decide step, and the build and write steps, fill in the other slots.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.zerotrust.mtls.plugins.module_utils import files
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_build import LeafSpec
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import PkiError
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_time import parse_duration

_ITEM_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
# The LeafSpec options passed on as they are, from the top level or from a certs entry;
# common_name (defaults to the entry's name) and valid_for (parsed) need more.
_SPEC_OPTIONS = ("organization", "dns_names", "ip_addresses", "uris", "emails", "usage", "key_type")
# What a certs entry may set over the top-level value (besides its own name).
_ENTRY_OPTIONS = ("common_name",) + _SPEC_OPTIONS + ("valid_for",)


class CertItem(object):
    """One requested certificate and what we found and decided about it."""

    __slots__ = (
        "name",
        "spec",
        "cert_path",
        "key_path",
        "chain_path",
        "fullchain_path",
        "cert_bytes",
        "key_bytes",
        "cert_mode",
        "key_mode",
        "cert",
        "key",
        "reason",
        "new_cert",
        "new_key",
        "new_cert_pem",
        "new_key_pem",
        "changed",
    )

    def __init__(self, name, spec, cert_path, key_path, chain_path=None, fullchain_path=None):
        self.name = name
        self.spec = spec
        self.cert_path = cert_path
        self.key_path = key_path
        self.chain_path = chain_path
        self.fullchain_path = fullchain_path
        self.cert = self.key = self.new_cert = self.new_key = None
        self.cert_bytes = self.key_bytes = self.new_cert_pem = self.new_key_pem = None
        self.cert_mode = self.key_mode = None
        self.reason = None
        self.changed = False


def _leaf_spec(options, common_name, valid_for, field_prefix=""):
    """The LeafSpec of ``options`` (the module's params, or a certs entry over them)."""
    return LeafSpec(common_name, valid_for=valid_for, field_prefix=field_prefix, **dict((key, options[key]) for key in _SPEC_OPTIONS))


def _batch_item(index, entry, defaults, seen, parsed_valid_for, params):
    """The CertItem of ``certs[index]``: its own options over the top-level ones."""
    prefix = "certs[%d]." % index
    if not isinstance(entry, dict):
        raise PkiError("certs[%d]" % index, "certs[%d] must be a dictionary with at least a name." % index)
    name = entry.get("name")
    if not isinstance(name, str) or not _ITEM_NAME.match(name):
        raise PkiError(
            prefix + "name", "%sname must be a file name stem of letters, digits, '.', '_' and '-' not starting with a dot, got %r." % (prefix, name)
        )
    if name in seen:
        raise PkiError(prefix + "name", "%sname %r is used twice in certs; give each certificate its own name." % (prefix, name))
    seen.add(name)
    merged = dict(defaults)
    for key, value in entry.items():
        if value is not None:
            merged[key] = value
    valid_for = merged["valid_for"]
    if valid_for not in parsed_valid_for:
        parsed_valid_for[valid_for] = parse_duration(valid_for, prefix + "valid_for")
    spec = _leaf_spec(merged, merged.get("common_name") or name, parsed_valid_for[valid_for], field_prefix=prefix)
    base = os.path.join(params["dest_dir"], name)
    return CertItem(
        name,
        spec,
        base + ".crt",
        base + ".key",
        chain_path=(base + ".chain.crt") if params["write_chain"] else None,
        fullchain_path=(base + ".fullchain.crt") if params["write_fullchain"] else None,
    )


def _batch_items(params):
    if not params["dest_dir"]:
        raise PkiError("dest_dir", "dest_dir is required with certs; give the directory for <name>.crt and <name>.key.")
    dest_dir = params["dest_dir"]
    if not os.path.isdir(dest_dir):
        raise PkiError("dest_dir", "dest_dir %s is not an existing directory; create it first." % dest_dir)
    files.check_writable(os.path.join(dest_dir, ".probe"), "dest_dir")
    if not params["certs"]:
        raise PkiError("certs", "certs is empty; list at least one certificate or use cert_path.")
    defaults = dict((key, params.get(key)) for key in _ENTRY_OPTIONS)
    # Shared by the entries: a batch of 1,000 usually names a handful of durations.
    seen, parsed_valid_for = set(), {}
    return [_batch_item(index, entry, defaults, seen, parsed_valid_for, params) for index, entry in enumerate(params["certs"])]


def build_items(params):
    """The requested certificates: the one of cert_path, or each of certs."""
    if params["certs"] is not None:
        return _batch_items(params)
    if not params["cert_path"] or not params["key_path"]:
        raise PkiError("cert_path", "cert_path and key_path (one certificate) or certs with dest_dir (a batch) are required; give one of them.")
    if not params["common_name"]:
        raise PkiError("common_name", "common_name is required with cert_path; give the subject common name.")
    spec = _leaf_spec(params, params["common_name"], parse_duration(params["valid_for"], "valid_for"))
    for field in ("cert_path", "key_path", "chain_path", "fullchain_path"):
        if params[field]:
            files.check_writable(params[field], field)
    name = os.path.splitext(os.path.basename(params["cert_path"]))[0]
    return [CertItem(name, spec, params["cert_path"], params["key_path"], params["chain_path"], params["fullchain_path"])]

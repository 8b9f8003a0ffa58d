# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A layout's data as a Secret object: the apply body, the data as the API stores it, what a
diff may show of it (fingerprints, never key bytes), and whether a write is needed.

Pure helpers for secret_sync: no Kubernetes calls and no AnsibleModule here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib

from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_fields import owned_keys
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki import (
    key_fingerprint,
    load_certificates,
    load_private_key,
    sha256_fingerprint,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.secret_layouts import LAYOUTS


def secret_type(layout):
    return LAYOUTS[layout]["type"]


def secret_manifest(name, namespace, layout, data, labels=None, annotations=None):
    """The apply body of one Secret (data base64-encoded, as the API stores it)."""
    metadata = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": secret_type(layout),
        "data": dict((key, base64.b64encode(value).decode("ascii")) for key, value in sorted(data.items())),
    }


def decoded_data(secret):
    """key -> bytes of an existing Secret."""
    out = {}
    for key, value in ((secret or {}).get("data") or {}).items():
        try:
            out[key] = base64.b64decode(value or "")
        except (TypeError, ValueError):
            out[key] = b""
    return out


def summarize_data(layout, data):
    """What a diff or a return value may show of Secret data: fingerprints only."""
    roles = LAYOUTS.get(layout, {}).get("keys", {})
    return dict((key, summarize_value(roles.get(key, "opaque"), value)) for key, value in sorted(data.items()))


def summarize_value(role, value):
    if role == "certs":
        try:
            certs = load_certificates(value, "data")
        except Exception:
            certs = []
        if certs:
            return [sha256_fingerprint(cert) for cert in certs]
    if role == "key":
        try:
            return key_fingerprint(load_private_key(value, "data"))
        except Exception:
            pass
    # anything else is reduced to a digest: it may be secret and must not be shown
    return "sha256:" + hashlib.sha256(value).hexdigest()


def write_needed(existing, desired, owned):
    """Why ``desired`` must be applied over ``existing``, or None when it need not be.

    ``owned`` is the fieldsV1 tree zerotrust.mtls owns on the existing object: a label or
    data key we set before and no longer declare must be removed, which is a change.
    """
    if existing is None:
        return "created"
    if existing.get("type") != desired["type"]:
        return "type"
    have_data = existing.get("data") or {}
    # Keys other managers added stay (server-side apply leaves them), so only ours count.
    if any(have_data.get(key) != value for key, value in desired["data"].items()):
        return "data"
    current_meta = existing.get("metadata") or {}
    for section in ("labels", "annotations"):
        wanted = desired["metadata"].get(section) or {}
        have = current_meta.get(section) or {}
        if any(have.get(key) != value for key, value in wanted.items()):
            return section
        if owned and owned_keys(owned, "metadata", section) - set(wanted):
            return section
    if owned and owned_keys(owned, "data") - set(desired["data"]):
        return "data"
    return None

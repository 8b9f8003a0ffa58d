# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server-side apply seen from the stored object: which fields field manager zerotrust.mtls
owns, and whether an apply would change anything.

What the backends compare to decide, without a request, that a write is not needed, and to
report after a dry run whether it would change something. Pure: no client here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.mtls.plugins.module_utils.kube import FIELD_MANAGER


def owned_fields(obj, manager=FIELD_MANAGER):
    """The fieldsV1 tree that ``manager`` owns through Apply (empty when none)."""
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            return entry.get("fieldsV1") or {}
    return {}


def owned_keys(fields, *path):
    """Keys owned under ``path`` of a fieldsV1 tree, e.g. owned_keys(f, 'metadata',
    'labels') -> {'app'}."""
    node = fields
    for part in path:
        node = node.get("f:" + part) or {}
    return set(key[2:] for key in node if key.startswith("f:"))


_VOLATILE_METADATA = ("resourceVersion", "managedFields", "generation", "uid", "creationTimestamp")


def comparable(obj):
    """An object without the fields the server changes on every write, for deciding
    whether a dry-run apply would change anything."""
    if obj is None:
        return None
    stripped = dict((k, v) for k, v in obj.items() if k != "status")
    stripped["metadata"] = dict((k, v) for k, v in (obj.get("metadata") or {}).items() if k not in _VOLATILE_METADATA)
    return stripped


_IDENTITY_PATHS = (("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace"))


def _manifest_fields(node, prefix=()):
    """{path: value} of the fields a manifest sets: maps are descended, lists and scalars
    are values (the lists of the kinds apply_needed is used for are atomic)."""
    fields = {}
    for key, value in node.items():
        path = prefix + (key,)
        if isinstance(value, dict) and value:
            fields.update(_manifest_fields(value, path))
        elif path not in _IDENTITY_PATHS:
            fields[path] = value
    return fields


def _owned_paths(tree, prefix=()):
    """Leaf paths of a fieldsV1 tree, or None when it names list items (k:, v:, i:),
    which a path of map keys cannot match."""
    paths = set()
    for key, child in tree.items():
        if key == ".":
            continue
        if not key.startswith("f:"):
            return None
        path = prefix + (key[2:],)
        below = _owned_paths(child, path) if child else set()
        if below is None:
            return None
        paths.update(below or [path])
    return paths


_MISSING = object()


def _value_at(obj, path):
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return _MISSING
        obj = obj[part]
    return obj


def apply_needed(existing, manifest, owned):
    """Whether a server-side apply of ``manifest`` over ``existing`` would change it:
    V(created), V(differs) (a declared field differs), None (it would change nothing), or
    V(unknown) when only a dry run can tell (a field that zerotrust.mtls set before and no
    longer declares, which the apply would remove unless another manager holds it).

    ``owned`` is the fieldsV1 tree zerotrust.mtls owns on ``existing``. None is said only
    when every declared field already has the declared value and we own nothing else, so
    skipping the write (and its dry run) is exact. The manifest's lists are compared as
    whole values, which is exact for atomic lists (those of the mesh policy kinds).
    """
    if existing is None:
        return "created"
    declared = _manifest_fields(manifest)
    if any(_value_at(existing, path) != value for path, value in declared.items()):
        return "differs"
    owned_paths = _owned_paths(owned or {})
    if owned_paths is None or owned_paths - set(declared):
        return "unknown"
    return None

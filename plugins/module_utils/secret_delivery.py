# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secret delivery: the backend of mtls_secret.

plugins/modules/mtls_secret.py (as a module) and plugins/action/mtls_secret.py (in the
controller process, see plugins/plugin_utils/in_process.py) both import this file. A run
is: decide without the cluster (``target_namespaces``, ``plan``: every source read, every
key checked against its certificate and every chain verified, before a connection is
made), then read, prove and write (``secret_sync.sync``). The backend interface is the
one module_utils/module_backend.py describes.

Key material never leaves this file in a result: the result and the diff carry
fingerprints (secret_layouts.summarize_data), and the errors name fields, not values.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible_collections.zerotrust.mtls.plugins.module_utils.args_kube_auth import APPLY_SPEC, KUBE_AUTH_SPEC
from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import MtlsError, read_file
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube import KubeClient
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_connection import ConnectionSettings
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_errors import KubeError
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_validation import (
    string_map,
    validate_annotations,
    validate_labels,
    validate_namespace_name,
    validate_object_name,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.secret_layouts import (
    LAYOUTS,
    Material,
    SecretLayoutError,
    build_secret_data,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.secret_sync import sync

SOURCE_ROLES = ("cert", "key", "chain", "ca", "crl")
ITEM_KEYS = set(["name", "labels", "annotations", "data", "key_passphrase"] + ["%s_%s" % (role, kind) for role in SOURCE_ROLES for kind in ("path", "content")])


class InputError(MtlsError):
    """Bad module input; one sentence."""


def read_source(path, field):
    """The bytes of a source file (errors.read_file), refused in the sentence operators and the
    kube_bad_input target know: "<field> <path> cannot be read (<reason>); ..."."""
    try:
        return read_file(path, field)
    except MtlsError as error:
        # read_file raised while handling the OSError: its strerror is the reason to give.
        reason = getattr(error.__context__, "strerror", None) or type(error.__context__).__name__
        raise InputError("%s %s cannot be read (%s); give the path of a readable PEM file." % (field, path, reason), field)


def material_for(item, defaults, prefix):
    """Material from one secrets item, falling back to the top-level options."""
    material = Material()
    for role in SOURCE_ROLES:
        path_key, content_key = role + "_path", role + "_content"
        in_item = item.get(path_key) is not None or item.get(content_key) is not None
        source = item if in_item else defaults
        where = prefix if in_item else ""
        path, content = source.get(path_key), source.get(content_key)
        if path is not None and content is not None:
            raise InputError("%s%s and %s%s are both set; give only one of them." % (where, path_key, where, content_key))
        if path is not None:
            material.add(role, read_source(path, where + path_key), where + path_key)
        elif content is not None:
            material.add(role, content.encode("utf-8"), where + content_key)
    if material.has("key"):
        own = item.get("key_passphrase") is not None
        material.unlock_key(item["key_passphrase"] if own else defaults.get("key_passphrase"), (prefix if own else "") + "key_passphrase")
    data = item.get("data") if item.get("data") is not None else defaults.get("data")
    if data is not None:
        material.add("data", data, (prefix if item.get("data") is not None else "") + "data")
    return material


def desired_items(params):
    """[(name, labels, annotations, item_prefix, item)] from name or secrets."""
    if params["secrets"] is not None:
        items = []
        seen = set()
        for index, item in enumerate(params["secrets"]):
            prefix = "secrets[%d]." % index
            if not isinstance(item, dict):
                raise InputError("%s is not a mapping; give name and sources per item." % prefix.rstrip("."))
            unknown = sorted(set(item) - ITEM_KEYS)
            if unknown:
                raise InputError("%s%s is not a known option; use %s." % (prefix, unknown[0], ", ".join(sorted(ITEM_KEYS))))
            if not item.get("name"):
                raise InputError("%sname is missing; give every item a name." % prefix)
            if item["name"] in seen:
                raise InputError("%sname %s appears twice in secrets; give each Secret once." % (prefix, item["name"]))
            seen.add(item["name"])
            labels = dict(params["labels"] or {}, **(item.get("labels") or {}))
            annotations = dict(params["annotations"] or {}, **(item.get("annotations") or {}))
            items.append((item["name"], labels, annotations, prefix, item))
        if not items:
            raise InputError("secrets is empty; list at least one Secret or use name.")
        return items
    return [(params["name"], params["labels"] or {}, params["annotations"] or {}, "", {})]


def target_namespaces(params):
    names = params["namespaces"] if params["namespaces"] is not None else [params["namespace"]]
    if not names:
        raise InputError("namespaces is empty; list at least one namespace.")
    ordered = []
    for index, namespace in enumerate(names):
        field = "namespaces[%d]" % index if params["namespaces"] is not None else "namespace"
        validate_namespace_name(namespace, field)
        if namespace not in ordered:  # a namespace listed twice is written once
            ordered.append(namespace)
    return ordered


def plan(params):
    """Everything decided without the cluster: [(name, manifest-per-namespace fn, summary)]."""
    layout = params["layout"]
    planned = []
    for name, labels, annotations, prefix, item in desired_items(params):
        validate_object_name(name, prefix + "name" if prefix else "name")
        validate_labels(labels, prefix + "labels" if item.get("labels") else "labels")
        validate_annotations(annotations, prefix + "annotations" if item.get("annotations") else "annotations")
        if params["state"] == "absent":
            planned.append((name, None, None, None))
            continue
        material = material_for(item, params, prefix)
        data = build_secret_data(layout, material)
        planned.append((name, data, string_map(labels), string_map(annotations)))
    return planned


def source_options():
    """Where a Secret's material comes from; the same for one Secret and for each of O(secrets)."""
    return dict(
        cert_path=dict(type="path"),
        cert_content=dict(type="str"),
        key_path=dict(type="path", no_log=False),
        key_content=dict(type="str", no_log=True),
        key_passphrase=dict(type="str", no_log=True),
        chain_path=dict(type="path"),
        chain_content=dict(type="str"),
        ca_path=dict(type="path"),
        ca_content=dict(type="str"),
        crl_path=dict(type="path"),
        crl_content=dict(type="str"),
        data=dict(type="dict", no_log=True),
    )


def argument_spec():
    spec = dict(
        name=dict(type="str"),
        namespace=dict(type="str"),
        namespaces=dict(type="list", elements="str"),
        layout=dict(type="str", default="tls", choices=sorted(LAYOUTS)),
        # not secret itself: the key material inside is marked per suboption
        secrets=dict(
            type="list",
            elements="dict",
            no_log=False,
            options=dict(name=dict(type="str", required=True), labels=dict(type="dict"), annotations=dict(type="dict"), **source_options()),
        ),
        labels=dict(type="dict", default={}),
        annotations=dict(type="dict", default={}),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        **source_options(),
    )
    spec.update(KUBE_AUTH_SPEC)
    spec.update(APPLY_SPEC)
    return spec


VALIDATION_RULES = dict(
    mutually_exclusive=[("namespace", "namespaces"), ("name", "secrets")],
    required_one_of=[("namespace", "namespaces"), ("name", "secrets")],
)

# Bad input, bad material and refusals of the cluster: one sentence each.
KNOWN_ERRORS = (InputError, KubeError, SecretLayoutError)


def failure_result(error):
    return dict(msg=str(error), changed=False)


def unexpected_failure_result(error):
    # The type and message only: no parameter (they hold keys and passphrases) is echoed.
    return dict(msg="mtls_secret failed unexpectedly: %s: %s" % (type(error).__name__, error), exception=traceback.format_exc(), changed=False)


def run_module(module):
    """Delivers the Secrets ``module`` (params, check_mode, _diff) asks for; returns the result."""
    params = module.params
    if params["parallel"] < 1 or params["parallel"] > 64:
        raise InputError("parallel %s is out of range; use 1 to 64." % params["parallel"])
    namespaces = target_namespaces(params)
    planned = plan(params)
    client = KubeClient(ConnectionSettings.from_params(params), pool_size=max(params["parallel"], 4))
    try:
        return sync(client, params, namespaces, planned, check_mode=module.check_mode, diff=module._diff)
    finally:
        client.close()

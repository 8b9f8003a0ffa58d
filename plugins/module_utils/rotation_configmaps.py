# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ConfigMaps of a rotation: the mirror of its state, and the run record the exporter reads.

Both are owned by this collection alone, so they are written by server-side apply as
its field manager, taking over any field another manager set (force). No AnsibleModule
in here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.mtls.plugins.module_utils import rotation as rot
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube import (
    CONFIG_MAP,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    KubeClient,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_connection import ConnectionSettings
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_validation import validate_namespace_name, validate_object_name


def configmap_ref(value, field):
    """(name, namespace) of the ConfigMap option ``field``."""
    if not isinstance(value, dict) or not value.get("name") or not value.get("namespace"):
        raise rot.RotationError("%s must be a dict with name and namespace." % field, field)
    validate_object_name(value["name"], field + ".name")
    validate_namespace_name(value["namespace"], field + ".namespace")
    return value["name"], value["namespace"]


def client_for(params):
    return KubeClient(ConnectionSettings.from_params(params))


def read_data(client, name, namespace):
    """The data of the ConfigMap, {} when it does not exist."""
    return (client.get(CONFIG_MAP, name, namespace) or {}).get("data") or {}


def configmap_manifest(name, namespace, data):
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE}},
        "data": data,
    }


def apply_configmap(client, manifest, dry_run):
    """Server-side apply of ``manifest`` through KubeClient.apply, like every other kind.
    Forced: the rotation's ConfigMaps are the collection's alone, so a field another
    manager took over is taken back rather than failing the rotation."""
    return client.apply(manifest, dry_run=dry_run, force_conflicts=True)


def write_data(client, name, namespace, data, dry_run):
    """Apply ``data`` as the ConfigMap's; its namespace is created first when missing
    (in check mode the dry run of the ConfigMap says whether it could be written)."""
    if not dry_run and client.namespace_exists(namespace) is False:
        client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, force_conflicts=True)
    apply_configmap(client, configmap_manifest(name, namespace, data), dry_run)


def sync_data(client, name, namespace, wanted, dry_run):
    """Make the ConfigMap hold ``wanted``; True when it changed (or would)."""
    if read_data(client, name, namespace) == wanted:
        return False
    write_data(client, name, namespace, wanted, dry_run)
    return True


def record_run(client, name, namespace, rotation, success, now, dry_run):
    """(changed, record): the ConfigMap's run records after this run of ``rotation``;
    ``record`` holds the keys of ``rotation`` only."""
    existing = read_data(client, name, namespace)
    data = rot.record_run(existing, rotation, success, now)
    record = dict((key, value) for key, value in data.items() if key.startswith(rotation + "."))
    if data == existing:
        return False, record
    write_data(client, name, namespace, data, dry_run)
    return True, record

# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The exporter watches what the collection writes.

- Every certificate key of every Secret layout the collection writes
  (plugins/module_utils/secret_layouts.py LAYOUTS) is read by the exporter's defaults for
  that layout's Secret type, and by the cert_exporter role's defaults (which become the
  Deployment's arguments); the role's defaults equal the exporter's own.
- The rotation record: the fields the writer puts into the ConfigMap
  (roles/rotation/tasks/record.yml -> mtls_rotation_state operation=record ->
  module_utils/rotation.record_run), for every rotation_record_key a playbook uses, are
  all understood by the exporter (nothing rejected, every field read back), and the
  ConfigMap the role points the exporter at is the one the playbooks write by default.
- Chain validity: on every chain of exporter/tests/chain_cases.py, the collection's
  verify_chain (what the modules enforce) and the exporter's mtls_cert_chain_valid agree.
- Fingerprints: the exporter prints them as the modules do ('AB:CD:...').
"""

import glob
import os
import re
import sys
import time

import pytest
import yaml
from cryptography.hazmat.primitives import hashes

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "exporter", "src"))
sys.path.insert(0, os.path.join(ROOT, "exporter", "tests"))
sys.path.insert(0, os.path.join(ROOT, ".build", "collections"))

import chain_cases  # noqa: E402
from ansible_collections.zerotrust.mtls.plugins.module_utils import pki  # noqa: E402
from ansible_collections.zerotrust.mtls.plugins.module_utils import rotation as writer  # noqa: E402
from ansible_collections.zerotrust.mtls.plugins.module_utils.secret_layouts import LAYOUTS  # noqa: E402
from mtls_exporter import chains, collector, objects  # noqa: E402

with open(os.path.join(ROOT, "roles", "cert_exporter", "defaults", "main.yml")) as _handle:
    ROLE_DEFAULTS = yaml.safe_load(_handle)


def _certificate_keys(layout):
    return sorted(key for key, role in LAYOUTS[layout]["keys"].items() if role == "certs")


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_the_exporter_reads_every_certificate_key_of_the_layout(layout):
    secret_type = LAYOUTS[layout]["type"]
    wanted = _certificate_keys(layout)
    selection = objects.KeySelection()
    assert secret_type in objects.DEFAULT_SECRET_TYPES, "the exporter does not read %s Secrets" % secret_type
    watched = selection.secret_keys_by_type.get(secret_type, ())
    assert not set(wanted) - set(watched), "layout %s writes %s, the exporter reads only %s" % (layout, sorted(set(wanted) - set(watched)), list(watched))
    # The role's Deployment: --secret-type per cert_exporter_secret_types, Opaque keys from
    # cert_exporter_opaque_secret_keys (a kubernetes.io/tls Secret is read at tls.crt, ca.crt).
    assert secret_type in ROLE_DEFAULTS["cert_exporter_secret_types"]
    if secret_type == objects.SECRET_TYPE_OPAQUE:
        role_keys = ROLE_DEFAULTS["cert_exporter_opaque_secret_keys"]
        assert not set(wanted) - set(role_keys), "layout %s writes %s, the role watches only %s" % (layout, sorted(set(wanted) - set(role_keys)), role_keys)


def test_the_role_defaults_are_the_exporter_defaults():
    assert set(ROLE_DEFAULTS["cert_exporter_opaque_secret_keys"]) == set(objects.DEFAULT_OPAQUE_SECRET_KEYS)
    assert set(ROLE_DEFAULTS["cert_exporter_configmap_keys"]) == set(objects.DEFAULT_CONFIGMAP_KEYS)
    assert set(ROLE_DEFAULTS["cert_exporter_secret_types"]) == set(objects.DEFAULT_SECRET_TYPES)


def _record_keys():
    """Every rotation_record_key the playbooks set (template values: their quoted words)."""
    keys = set()
    for path in glob.glob(os.path.join(ROOT, "playbooks", "*.yml")):
        with open(path) as handle:
            for match in re.finditer(r"^\s*rotation_record_key:\s*(.+)$", handle.read(), re.M):
                value = match.group(1).strip()
                if "{{" in value:
                    keys.update(re.findall(r"'([a-z0-9_]+)'", value))
                else:
                    keys.add(value.strip("\"'"))
    return sorted(keys)


def test_the_record_writer_calls_the_module_that_writes_record_run():
    with open(os.path.join(ROOT, "roles", "rotation", "tasks", "record.yml")) as handle:
        tasks = yaml.safe_load(handle)
    args = tasks[0]["zerotrust.mtls.mtls_rotation_state"]
    assert args["operation"] == "record"
    assert args["rotation"] == "{{ rotation_record_key }}"
    # The module runs its backend, whose record operation writes, through
    # rotation_configmaps, what rotation.record_run returns.
    with open(os.path.join(ROOT, "plugins", "modules", "mtls_rotation_state.py")) as handle:
        assert "module_main(rotation_state)" in handle.read()
    with open(os.path.join(ROOT, "plugins", "module_utils", "rotation_state.py")) as handle:
        assert "configmaps.record_run(" in handle.read()
    with open(os.path.join(ROOT, "plugins", "module_utils", "rotation_configmaps.py")) as handle:
        assert "rot.record_run(" in handle.read()


@pytest.mark.parametrize("success", [True, False])
def test_the_exporter_understands_every_record_the_playbooks_write(success):
    keys = _record_keys()
    assert {"rotate_root_ca", "rotate_intermediate", "rotate_client_certs", "audit"} <= set(keys), keys
    assert tuple(writer.RECORD_FIELDS) == tuple(collector.ROTATION_FIELDS)
    now = int(time.time())
    data = {}
    for key in keys:
        data = writer.record_run(data, key, success, now)
    state = collector.RotationState()
    assert state.replace(data) == [], "the exporter rejects keys the playbooks write"
    present, runs = state.snapshot()
    assert present and sorted(runs) == keys
    for key in keys:
        field = "last_success" if success else "last_failure"
        assert runs[key][field] == now
        assert runs[key]["failures_total"] == (0 if success else 1)


def test_the_exporter_reads_the_configmap_the_playbooks_write():
    with open(os.path.join(ROOT, "roles", "rotation", "tasks", "paths.yml")) as handle:
        text = handle.read()
    namespace = re.search(r"mtls_rotation_namespace \| default\('([^']+)'\)", text).group(1)
    name = re.search(r"mtls_rotation_record_configmap \| default\('([^']+)'\)", text).group(1)
    assert ROLE_DEFAULTS["cert_exporter_rotation_configmap"] == "%s/%s" % (namespace, name)


CHAIN_CASES = chain_cases.build_cases()


@pytest.mark.parametrize("case", CHAIN_CASES, ids=[case.name for case in CHAIN_CASES])
def test_verify_chain_and_the_exporter_agree_on_the_chain(case):
    try:
        pki.verify_chain(case.certificate, case.intermediates, [case.root], "chain")
        modules_accept = True
    except pki.PkiError:
        modules_accept = False
    assert modules_accept is case.valid, "verify_chain no longer judges %r as the exporter does" % case.name
    assert chain_cases.exporter_accepts(case) is modules_accept


def test_the_exporter_prints_fingerprints_as_the_modules_do():
    case = CHAIN_CASES[0]
    assert chains.colon_hex(case.root.fingerprint(hashes.SHA256())) == pki.sha256_fingerprint(case.root)

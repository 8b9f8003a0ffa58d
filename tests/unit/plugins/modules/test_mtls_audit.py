# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mtls_audit on files: rows, due count, table, and one-sentence failures."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json

import pytest

from ansible_collections.zerotrust.mtls.plugins.module_utils import pki
from ansible_collections.zerotrust.mtls.plugins.modules import mtls_audit
from ansible_collections.zerotrust.mtls.tests.unit.plugins import pki_cases

DAY = datetime.timedelta(days=1)


MODULE = mtls_audit


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("audit")
    root, inter = pki_cases.ca_hierarchy("Audit Root", "Audit Int")
    leaves = base / "leaves"
    leaves.mkdir()
    fresh = pki_cases.leaf(inter, "fresh", valid_for="30d")
    old = pki_cases.leaf(inter, "old", issued_ago=20 * DAY, valid_for="30d")
    (leaves / "fresh.crt").write_bytes(pki.certificates_pem([fresh, inter.cert]))
    (leaves / "old.crt").write_bytes(pki.certificates_pem([old, inter.cert]))
    (leaves / "fresh.key").write_bytes(pki.private_key_pem(pki.generate_private_key()))
    (base / "bundle.pem").write_bytes(pki.certificate_pem(root.cert))
    return base


def test_files_are_audited_and_due_counted(pki_dir, run):
    result = run(paths=[str(pki_dir / "leaves")], trust_bundle_path=str(pki_dir / "bundle.pem"))
    assert result["changed"] is False and result["mesh"] is None
    rows = result["certificates"]
    assert [r["subject"] for r in rows] == ["CN=old", "CN=fresh"], "soonest expiry first; keys are not read"
    assert rows[0]["due"] is True and rows[1]["due"] is False and all(r["chain_valid"] for r in rows)
    assert result["due"] == 1 and result["table"][0].startswith("DAYS")
    assert "PRIVATE KEY" not in json.dumps(result)


def test_a_missing_path_fails_with_one_sentence(pki_dir, run):
    result = run(paths=[str(pki_dir / "nope")])
    assert result["failed"] is True and result["msg"] == "paths: %s does not exist." % (pki_dir / "nope")


def test_mesh_needs_the_cluster(run):
    result = run(mesh=True)
    assert result["failed"] is True and "mesh=true needs cluster=true" in result["msg"]

# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mtls_trust_bundle run as Ansible runs it: check mode, diff, idempotence, clear refusals."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.zerotrust.mtls.plugins.modules import mtls_trust_bundle
from ansible_collections.zerotrust.mtls.tests.unit.plugins.module_utils.test_trust_bundle import _generation, _state


def run(capsys, check_mode=False, **args):
    args.update(_ansible_check_mode=check_mode, _ansible_diff=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            mtls_trust_bundle.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def paths(tmp_path):
    pki_dir = str(tmp_path / "pki")
    _generation(pki_dir, "old", 10, crl=True)
    _generation(os.path.join(pki_dir, "rotation", "root_ca", "next"), "new", 1)
    return dict(
        pki_dir=pki_dir,
        ca_dir="clusters/prod",
        roots_path=str(tmp_path / "pki" / "trust" / "bundle.pem"),
        chain_path=str(tmp_path / "chain.pem"),
        crl_path=str(tmp_path / "chain.crl"),
    )


def test_check_mode_predicts_the_real_run_and_the_rerun_changes_nothing(capsys, paths):
    predicted = run(capsys, check_mode=True, **paths)
    assert predicted["changed"] and not os.path.exists(paths["roots_path"])
    real = run(capsys, **paths)
    assert real["changed"] == predicted["changed"] and real["changed_paths"] == predicted["changed_paths"]
    assert len(real["roots"]) == 1 and len(real["chain"]) == 2 and real["crl_count"] == 2
    assert real["diff"]["after"][paths["roots_path"]] == real["roots"]
    with open(paths["roots_path"]) as handle:
        assert handle.read() == real["roots_pem"]
    assert not run(capsys, **paths)["changed"]


def test_the_rotation_state_widens_then_narrows_the_files(capsys, paths):
    run(capsys, **paths)
    _state(paths["pki_dir"], 1)
    widened = run(capsys, **paths)
    assert widened["overlap"] and widened["changed"] and len(widened["roots"]) == 2
    assert widened["rotation"]["phase_completed"] == 1
    _state(paths["pki_dir"], 5, status="complete")
    narrowed = run(capsys, **paths)
    assert not narrowed["overlap"] and narrowed["changed"] and len(narrowed["roots"]) == 1


def test_the_crl_file_goes_when_no_ca_has_a_crl(capsys, paths):
    run(capsys, **paths)
    for rel in ("root", "clusters/prod"):
        os.remove(os.path.join(paths["pki_dir"], rel, "ca.crl"))
    result = run(capsys, **paths)
    assert result["changed_paths"] == [paths["crl_path"]] and not os.path.exists(paths["crl_path"])


@pytest.mark.parametrize("field", ["chain_path", "crl_path"])
def test_chains_need_ca_dir(capsys, paths, field):
    args = dict(pki_dir=paths["pki_dir"], roots_path=paths["roots_path"])
    args[field] = paths[field]
    result = run(capsys, **args)
    assert result["failed"] and result["msg"] == ("%s needs ca_dir, the CA below the root (such as clusters/<name>)." % field)
    assert not os.path.exists(paths["roots_path"])

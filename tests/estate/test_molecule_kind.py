# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kind scenario's prepare, converge and verify, run against the local control plane.

No Docker engine runs here, so kind cannot: only the scenario's create and destroy
(which start and delete the kind cluster) are left out. Everything else is read from
molecule/kind/molecule.yml as molecule would use it - the inventories, the environment,
the playbooks - and run with ansible-playbook; the kubeconfig create.yml would write to
the ephemeral directory is the local cluster's. A variable the kind scenario's inventory
lacks, or a CRD its prepare does not provide, fails here.

Needs the local control plane (tests/cluster/up.sh); about as long as the local
scenario's converge (site.yml of inventories/local).
"""

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCENARIO = os.path.join(ROOT, "molecule", "kind")
KUBECONFIG = os.environ.get("MTLS_LOCAL_KUBECONFIG") or os.path.join(ROOT, ".cluster", "kubeconfig")


def _expand(value, env):
    return re.sub(r"\$\{([A-Z_]+)\}", lambda m: env.get(m.group(1), ""), value)


@pytest.mark.skipif(not os.path.isfile(KUBECONFIG), reason="the local control plane is not running")
def test_kind_scenario_converges_and_verifies_on_the_local_control_plane(tmp_path):
    with open(os.path.join(SCENARIO, "molecule.yml")) as handle:
        scenario = yaml.safe_load(handle)
    ephemeral = tmp_path / "ephemeral"
    ephemeral.mkdir()
    env = dict(os.environ)
    env.update(
        {
            "MOLECULE_PROJECT_DIRECTORY": ROOT,
            "MOLECULE_SCENARIO_DIRECTORY": SCENARIO,
            "MOLECULE_SCENARIO_NAME": "kind",
            "MOLECULE_EPHEMERAL_DIRECTORY": str(ephemeral),
            "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"),
        }
    )
    for key, value in (scenario["ansible"].get("env") or {}).items():
        env[key] = _expand(str(value), env)
    # What create.yml leaves behind: the cluster's kubeconfig at MTLS_KUBECONFIG.
    assert env.get("MTLS_KUBECONFIG", "").startswith(str(ephemeral)), "the kind scenario names no kubeconfig"
    shutil.copy(KUBECONFIG, env["MTLS_KUBECONFIG"])
    args = [_expand(a, env) for a in scenario["ansible"]["executor"]["args"]["ansible_playbook"]]
    playbooks = scenario["ansible"]["playbooks"]
    assert playbooks["converge"] == "../local/converge.yml" and playbooks["verify"] == "../local/verify.yml", (
        "the kind scenario must share converge and verify with the local scenario"
    )
    sequence = scenario["scenario"]["test_sequence"]
    bindir = os.path.dirname(sys.executable)
    try:
        for step in ("prepare", "converge", "verify"):
            assert step in sequence
            playbook = os.path.normpath(os.path.join(SCENARIO, playbooks[step]))
            proc = subprocess.run(
                [os.path.join(bindir, "ansible-playbook")] + args + [playbook], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500
            )
            with open(os.path.join(str(tmp_path), step + ".log"), "w") as log:
                log.write(proc.stdout + proc.stderr)
            assert proc.returncode == 0, "kind scenario %s failed:\n%s\n%s" % (step, proc.stdout[-5000:], proc.stderr[-2000:])
            assert "no hosts matched" not in proc.stdout
    finally:
        cleanup = os.path.normpath(os.path.join(SCENARIO, playbooks["cleanup"]))
        subprocess.run([os.path.join(bindir, "ansible-playbook")] + args + [cleanup], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)

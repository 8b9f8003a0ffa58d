# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every playbook matches hosts in every inventory of the repository.

A play whose pattern matches nothing prints "skipping: no hosts matched" and exits 0, so
a playbook run against an inventory that lacks its group (the example estate had no
`pki` group) looks like a success. This runs `ansible-playbook --list-hosts` for every
playbook in playbooks/ against every inventory in inventories/, and for the job
templates' playbooks against the inventory awx_configure.yml defines, and fails on a play
that matches no host.
"""

import glob
import json
import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "awx"))

import awx_model  # noqa: E402

PLAYBOOKS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "playbooks", "*.yml")))
INVENTORIES = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "inventories", "*")) if os.path.isdir(p))
# Vault-only values of inventories/example; --list-hosts does not need them, but a play
# whose hosts pattern used one would.
VAULT_VARS = {"vault_mtls_root_key_passphrase": "list-hosts-only-not-used", "vault_mtls_intermediate_key_passphrase": "list-hosts-only-not-used"}


def list_hosts(inventory, playbooks):
    """{(playbook, play name): [hosts]} from ansible-playbook --list-hosts."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    bindir = os.path.dirname(sys.executable)
    proc = subprocess.run(
        [os.path.join(bindir, "ansible-playbook"), "-i", inventory, "--list-hosts", "-e", json.dumps(VAULT_VARS)] + playbooks,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, "ansible-playbook --list-hosts -i %s failed:\n%s%s" % (inventory, proc.stdout[-3000:], proc.stderr[-3000:])
    assert "no hosts matched" not in proc.stdout + proc.stderr
    assert "Could not match supplied host pattern" not in proc.stdout + proc.stderr, proc.stderr
    result, playbook, play = {}, None, None
    for line in proc.stdout.splitlines():
        match = re.match(r"^playbook: (.+)$", line)
        if match:
            playbook = os.path.relpath(os.path.join(ROOT, match.group(1)), ROOT)
            continue
        match = re.match(r"^\s+play #\d+ \(([^)]*)\): (.*?)\tTAGS", line)
        if match:
            play = (playbook, match.group(2))
            result[play] = []
            continue
        if re.match(r"^\s+hosts \(\d+\):$", line) or re.match(r"^\s+pattern:", line):
            continue
        if play and line.strip():
            result[play].append(line.strip())
    return result


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_every_playbook_matches_hosts_in_every_inventory(inventory):
    plays = list_hosts(inventory, PLAYBOOKS)
    assert {p for p, _ in plays} == set(PLAYBOOKS), "some playbooks printed no play"
    empty = sorted("%s: %s" % play for play, hosts in plays.items() if not hosts)
    assert not empty, "plays that match no host in %s: %s" % (inventory, empty)


def test_the_job_templates_match_hosts_in_the_awx_inventory(tmp_path):
    defs = awx_model.load_definitions(
        {
            "awx_project_scm_url": "https://git.example.invalid/x.git",
            "awx_pki_host": "pki.example.com",
            "awx_kubeconfig_content": "unused",
            "awx_root_key_passphrase": "x" * 16,
            "awx_intermediate_key_passphrase": "y" * 16,
            "awx_pki_ssh_private_key": "unused",
        }
    )
    for name in {jt["inventory"] for jt in defs["job_templates"]}:
        path = tmp_path / "inventory.json"
        path.write_text(json.dumps(awx_model.inventory_script(defs, name)))
        script = tmp_path / "inventory.py"
        script.write_text("#!%s\nimport sys\nprint(open(%r).read())\n" % (sys.executable, str(path)))
        script.chmod(0o700)
        playbooks = sorted({jt["playbook"] for jt in defs["job_templates"] if jt["inventory"] == name})
        plays = list_hosts(str(script), playbooks)
        empty = sorted("%s: %s" % play for play, hosts in plays.items() if hosts != ["pki.example.com"])
        assert not empty, "job template plays that do not run on the PKI host alone: %s" % empty


def test_a_playbook_without_hosts_fails_this_check(tmp_path):
    """The check itself: a play for a group the inventory lacks is reported."""
    playbook = tmp_path / "orphan.yml"
    playbook.write_text("- name: A group nobody has\n  hosts: no_such_group\n  gather_facts: false\n  tasks: []\n")
    with pytest.raises(AssertionError):
        list_hosts("inventories/local", [str(playbook)])

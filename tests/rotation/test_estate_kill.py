# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SIGKILLs during the one-command root rotation of a site.yml estate, then resume.

One cluster of the shared local control plane, converged by site.yml (the inventory of
test_estate_rotation.py: Istio cacerts, a gateway credential, client certificates, an
ingress-nginx edge). `ansible-playbook playbooks/rotate_root_ca.yml` (its whole process
group: the module it runs dies too) is killed at seeded random moments spread over the
length of a run - in its pki plays and in the converge plays of the estate's roles - and
started again each time, without any variable set by hand. After every kill: every key
and certificate parses, every CA key ever seen is still there, and no key is readable by
others. Finally one more run completes the rotation: the state is complete, Istio's
cacerts and the trust bundle hold the new root alone, the client Secret chains to it, and
site.yml reports changed=0.
"""

import json
import os
import random
import subprocess
import time
import uuid

import pytest
from cryptography import x509

import harness
import test_estate_rotation as estate_test

KUBECONFIG = os.environ.get("MTLS_KUBECONFIG")
KILLS = int(os.environ.get("MTLS_ESTATE_KILLS", "6"))
SEED = int(os.environ.get("KILL_TEST_SEED", "20261203"))

pytestmark = pytest.mark.skipif(not KUBECONFIG, reason="MTLS_KUBECONFIG is not set: the local control plane (tests/cluster/up.sh) is not running")


def _state(pki):
    with open(os.path.join(pki, "rotation", "root_ca.state.json")) as handle:
        return json.load(handle)


@pytest.fixture
def estate(tmp_path):
    from kubernetes import client, config

    core = client.CoreV1Api(config.new_client_from_config(KUBECONFIG))
    ns = "ekl-%s" % uuid.uuid4().hex[:6]
    names = [ns + suffix for suffix in ("-sys", "-istio", "-edge", "-apps")]
    for name in names:
        core.create_namespace({"metadata": {"name": name}})
    inventory = str(tmp_path / "inventory.yml")
    estate_test._inventory(inventory, ns, str(tmp_path / "pki"), {"a": KUBECONFIG})
    try:
        yield core, ns, inventory
    finally:
        for name in names:
            core.delete_namespace(name)


def test_sigkill_during_the_estate_rotation_then_resume(tmp_path, estate):
    core, ns, inventory = estate
    pki = str(tmp_path / "pki")
    log = str(tmp_path / "playbooks.log")
    started = time.time()
    estate_test._playbook(inventory, "site.yml", log)
    ever_seen = harness.check_pki(pki)
    chooser = random.Random(SEED)
    command = [harness.ANSIBLE_PLAYBOOK, "-i", inventory, os.path.join(harness.REPO, "playbooks", "rotate_root_ca.yml"), "-e", "mtls_site_hosts=clusters"]
    # Each run resumes from the state and replays the plays before it, so the kills come
    # later and later (the n-th after 50-100 % of 10 + 12 n seconds; a whole run takes about
    # a minute here) to land in the pki plays and the converge plays of every phase.
    # Killing stops once a run has completed the rotation.
    kills, ended_first = [], 0
    while len(kills) < KILLS:
        delay = chooser.uniform(0.5, 1.0) * (10 + 12 * len(kills))
        process = subprocess.Popen(
            command, cwd=harness.REPO, env=harness.playbook_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            process.wait(delay)
            ended_first += 1
        except subprocess.TimeoutExpired:
            pass
        harness.kill_group(process)
        state = _state(pki) if os.path.exists(os.path.join(pki, "rotation", "root_ca.state.json")) else {}
        kills.append("%.1fs (phase %d done)" % (delay, state.get("phase_completed", 0)))
        present = harness.check_pki(pki, mismatches=[])
        lost = ever_seen - present
        assert not lost, "after kill %d at %s, %d CA key(s) are gone" % (len(kills), kills[-1], len(lost))
        ever_seen |= present
        if state.get("status") == "complete":
            break
    assert len(kills) - ended_first >= 3, "fewer than 3 kills hit a running rotation: %s" % kills

    # The resume: one more run, no variable set by hand.
    estate_test._playbook(inventory, "rotate_root_ca.yml", log)
    state = _state(pki)
    final = harness.check_pki(pki)
    assert not ever_seen - final, "CA keys lost by the final run"
    assert state["status"] == "complete" and state["phase_completed"] == 5, state
    with open(os.path.join(pki, "root", "ca.crt"), "rb") as handle:
        root = x509.load_pem_x509_certificate(handle.read())
    fingerprint = estate_test._fingerprint(root)
    assert [estate_test._fingerprint(c) for c in harness.load_certs(os.path.join(pki, "trust", "bundle.pem"))] == [fingerprint]
    cacerts = harness.secret_data(core, ns + "-istio", "cacerts")
    assert [estate_test._fingerprint(c) for c in x509.load_pem_x509_certificates(cacerts["root-cert.pem"])] == [fingerprint]
    client_chain = x509.load_pem_x509_certificates(harness.secret_data(core, ns + "-apps", "client-a-mtls")["tls.crt"])
    client_chain[0].verify_directly_issued_by(client_chain[1])
    client_chain[1].verify_directly_issued_by(root)
    after = estate_test._playbook(inventory, "site.yml", log)
    assert estate_test._recap_changed(after, "estate-a") == 0
    print(
        "\nestate kill test: %d SIGKILLs of rotate_root_ca.yml (seed %d) at %s; %d run(s) ended before their "
        "kill; %d CA keys tracked, none lost; the next run completed the rotation (rotation %s); site.yml "
        "changed=0 after; %.0f s" % (len(kills), SEED, ", ".join(kills), ended_first, len(ever_seen), state["id"], time.time() - started)
    )

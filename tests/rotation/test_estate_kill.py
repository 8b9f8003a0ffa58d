# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SIGKILLs at random moments of the one-command root rotation of a site.yml estate.

One cluster of the shared local control plane, converged by site.yml (the inventory of
test_estate_rotation.py: Istio cacerts, a gateway credential, client certificates, an
ingress-nginx edge). One uninterrupted `ansible-playbook playbooks/rotate_root_ca.yml`
measures the length of a run. Then the playbook is started again and again and SIGKILLed
after a seeded random delay over that length: the playbook, its workers and the modules
they run (harness.kill_tree; ansible-core's workers leave the playbook's process group, so
killing the group would let the running module finish). A run resumes from the state the
killed one left, and once a rotation is complete the next run starts another
(rotation_start_new=true, the only variable ever set), so the kills land in the pki plays
and the converge plays of every phase of several rotations. Only kills that hit a running
playbook count; MTLS_ESTATE_KILLS (30) must.

After every kill: every key and certificate parses, every CA key ever seen is still
there, no key is readable by others, no key/certificate pair is mismatched, and what is
delivered in the cluster at that moment still works: the client Secret's certificate and
key, trusting the roots of that Secret, complete a mutual-TLS handshake with a server
built from the gateway credential's certificate and key that verifies clients against
each client CA Secret the ingress role writes (the credential's ca.crt, the gateway's
<credential>-cacert and the edge's CA Secret, with their CRLs as nginx and Envoy check
them). Finally one more run completes the rotation: the state is complete, Istio's
cacerts and the trust bundle hold the newest root alone, the client Secret chains to it,
and site.yml reports changed=0.
"""

import collections
import json
import os
import random
import re
import subprocess
import time
import uuid

import pytest
from cryptography import x509

import harness
import test_estate_rotation as estate_test

KUBECONFIG = os.environ.get("MTLS_KUBECONFIG")
KILLS = int(os.environ.get("MTLS_ESTATE_KILLS", "30"))
SEED = int(os.environ.get("KILL_TEST_SEED", "20261203"))
# The delays are drawn from this share of the measured length of a run: from its start to
# just past its end (a run may take longer than the measured one). Every run replays the
# converge plays of the phases before its own, so a kill late in a run costs a whole run of
# waiting: DELAY_SKEW > 1 draws more of them early (with 3, two thirds land in the first
# third of a run - plan and trust converge - and one in seven in the last - verify, retire
# and narrow), which keeps 30 kills within about 12 minutes here. The length is that of the
# last run that went to its end (the measured one at first): the machine's load changes.
DELAY_SHARES = (0.03, 1.05)
DELAY_SKEW = float(os.environ.get("MTLS_ESTATE_KILL_SKEW", "3"))
CONVERGE_PLAY = "Converge the estate's roles for the root rotation"
# The three converge plays of a run, in order (rotation_converge_stages).
CONVERGE_STAGES = ("converge trust", "converge signing", "converge narrow")

pytestmark = pytest.mark.skipif(not KUBECONFIG, reason="MTLS_KUBECONFIG is not set: the local control plane (tests/cluster/up.sh) is not running")


def _state(pki):
    path = os.path.join(pki, "rotation", "root_ca.state.json")
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        return json.load(handle)


def _landing(log_path, before, after, started_new):
    """Where a kill landed: the phase the rotation was working on and the play the
    playbook was in (its last PLAY line: the n-th pki play or which converge; "start"
    before the first). A resumed run replays the converges of the phases before its own."""
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        plays = re.findall(r"^PLAY \[(.*)\] \*", handle.read(), re.M)
    if not plays:
        where = "start"
    elif plays[-1] == CONVERGE_PLAY:
        where = CONVERGE_STAGES[plays.count(CONVERGE_PLAY) - 1]
    else:
        where = "pki play %d" % (len(plays) - plays.count(CONVERGE_PLAY))
    if after.get("status") == "complete" and not (started_new and after.get("id") == before.get("id")):
        phase = 5  # recorded complete: the narrowing converge or the summary was cut
    elif after.get("status") == "complete":
        phase = 1  # a new rotation that had not recorded its start yet
    else:
        phase = after.get("phase_completed", 0) + 1
    return "phase %d %s" % (phase, where)


def _delivered_handshakes(core, ns, workdir, tag):
    """Mutual-TLS handshakes with what the cluster holds now: the client Secret's pair,
    trusting that Secret's roots, against the gateway credential's pair verifying clients
    with each client CA Secret of the ingress role. Returns the failures (label: error)."""
    gateway = harness.secret_data(core, ns + "-istio", "gw-mtls")
    client_cas = {
        "gateway ca.crt": {"ca.crt": gateway["ca.crt"]},
        "gateway -cacert": harness.secret_data(core, ns + "-istio", "gw-mtls-cacert"),
        "edge CA": harness.secret_data(core, ns + "-edge", "mtls-client-ca"),
    }
    client = estate_test.SecretClient(tag, workdir, [(label, 0, None) for label in client_cas])
    client.install(harness.secret_data(core, ns + "-apps", "client-a-mtls"))
    failures = []
    for label, data in client_cas.items():
        directory = os.path.join(workdir, "server-" + tag, label.replace(" ", "_"))
        try:
            server = harness.server_context(directory, gateway["tls.crt"], gateway["tls.key"], data["ca.crt"], data.get("ca.crl"))
            harness.mtls_exchange(server, client.contexts[label])
        except (AssertionError, OSError, ValueError) as exc:
            failures.append("%s: %s" % (label, exc))
    return failures


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
    workdir = str(tmp_path / "handshakes")
    started = time.time()
    estate_test._playbook(inventory, "site.yml", log)
    assert not _delivered_handshakes(core, ns, workdir, "site")
    ever_seen = harness.check_pki(pki)
    # One uninterrupted rotation measures the length of a run (it is a rotation of its own).
    measured_start = time.time()
    estate_test._playbook(inventory, "rotate_root_ca.yml", log)
    lengths = [time.time() - measured_start]
    completed = {_state(pki)["id"]}
    ever_seen |= harness.check_pki(pki)

    chooser = random.Random(SEED)
    command = [harness.ANSIBLE_PLAYBOOK, "-i", inventory, os.path.join(harness.REPO, "playbooks", "rotate_root_ca.yml"), "-e", "mtls_site_hosts=clusters"]
    # Unbuffered, so the log shows the play a run was in when it was killed.
    env = dict(harness.playbook_env(), PYTHONUNBUFFERED="1")
    kills, landings, ended_first, handshakes, processes = [], collections.Counter(), 0, 0, 0
    mismatches, handshake_failures = [], []
    attempt = 0
    while len(kills) < KILLS and attempt < 3 * KILLS:
        attempt += 1
        before = _state(pki)
        start_new = before.get("status") == "complete"
        length = lengths[-1]
        delay = (DELAY_SHARES[0] + (DELAY_SHARES[1] - DELAY_SHARES[0]) * chooser.random() ** DELAY_SKEW) * length
        run_log = str(tmp_path / ("run-%02d.log" % attempt))
        run_start = time.time()
        with open(run_log, "wb") as output:
            process = subprocess.Popen(
                command + (["-e", "rotation_start_new=true"] if start_new else []),
                cwd=harness.REPO,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                returncode = process.wait(delay)
                run_seconds = time.time() - run_start
            except subprocess.TimeoutExpired:
                returncode = None
            processes += harness.kill_tree(process)
        after = _state(pki)
        if after.get("status") == "complete":
            completed.add(after["id"])
        if returncode is not None:
            # It ended before its kill: it must have succeeded; it does not count.
            ended_first += 1
            # Every run here is a whole one (a new rotation, or a resume replaying each converge).
            lengths.append(run_seconds)
            with open(run_log, encoding="utf-8", errors="replace") as handle:
                assert returncode == 0, "run %d ended with rc %d before its kill:\n%s" % (attempt, returncode, handle.read()[-3000:])
            moment = "run %d ended after %.1fs" % (attempt, run_seconds)
        else:
            landing = _landing(run_log, before, after, start_new)
            landings[landing] += 1
            kills.append("%.1fs %s" % (delay, landing))
            moment = "kill %d at %s" % (len(kills), kills[-1])
        found = []
        present = harness.check_pki(pki, mismatches=found)
        mismatches += ["after %s: %s" % (moment, problem) for problem in found]
        lost = ever_seen - present
        assert not lost, "after %s, %d CA key(s) are gone" % (moment, len(lost))
        ever_seen |= present
        failed = _delivered_handshakes(core, ns, workdir, "attempt-%02d" % attempt)
        handshakes += 3 if returncode is None else 0
        handshake_failures += ["after %s: %s" % (moment, failure) for failure in failed]
    assert len(kills) >= KILLS, "only %d of %d kills hit a running rotation in %d runs: %s" % (len(kills), KILLS, attempt, kills)
    assert not mismatches, "%d key/certificate mismatch(es), first: %s" % (len(mismatches), mismatches[:5])
    assert not handshake_failures, "%d of %d handshakes failed after kills, first: %s" % (len(handshake_failures), handshakes, handshake_failures[:5])

    # The resume: one more run, no variable set by hand.
    estate_test._playbook(inventory, "rotate_root_ca.yml", log)
    state = _state(pki)
    completed.add(state["id"])
    final = harness.check_pki(pki, mismatches=mismatches)
    assert not mismatches, mismatches
    assert not ever_seen - final, "CA keys lost by the final run"
    ever_seen |= final
    assert state["status"] == "complete" and state["phase_completed"] == 5, state
    assert not _delivered_handshakes(core, ns, workdir, "final")
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
    per_phase = collections.Counter(label.split(" ", 2)[1] for label in landings.elements())
    print("\nestate kill trace: %s" % ", ".join(kills))
    print(
        "estate kill test: %d SIGKILLs hit running rotate_root_ca.yml runs (%d processes: playbooks, workers, modules; "
        "seed %d; delays %.2f-%.2f x a run's length, skew %g; length %.0f s measured, %.0f s at the end; %d run(s) ended "
        "before their kill); kills per phase %s (%s); %d rotations completed; %d mutual-TLS handshakes with the delivered "
        "Secrets after the kills, all succeeded (and after each run that ended); %d CA keys tracked, none lost; no "
        "key/certificate mismatch; site.yml changed=0 after; %.0f s"
        % (
            len(kills),
            processes,
            SEED,
            DELAY_SHARES[0],
            DELAY_SHARES[1],
            DELAY_SKEW,
            lengths[0],
            length,
            ended_first,
            ", ".join("%s: %d" % item for item in sorted(per_phase.items())),
            ", ".join("%s: %d" % item for item in sorted(landings.items())),
            len(completed),
            handshakes,
            len(ever_seen),
            time.time() - started,
        )
    )

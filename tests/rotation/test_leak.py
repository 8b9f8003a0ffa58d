# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Leak test: `-vvv --diff` runs of the rotation playbooks print no private key bytes.

The log of each run is searched for every base64 body line of every private key the PKI
holds before and after the run (the keys replaced during a run are archived, so they are
searched too), for a slice of each key file's base64 (how slurp would show it) and for
the root key passphrase.
"""

import os

import pytest

import harness


def _assert_clean(log_text, needles, what):
    found = sorted(set(source for needle, source in needles.items() if needle in log_text))
    assert not found, "%s printed private key material of: %s" % (what, ", ".join(found))


def _verbose_run(playbook, pki, log, *extra, timeout=300):
    before = harness.key_needles(pki)
    output = harness.run_playbook(playbook, pki, "-vvv", "--diff", *extra, log=log, timeout=timeout)
    needles = dict(before)
    needles.update(harness.key_needles(pki))
    needles[harness.DEMO_PASSPHRASE.decode()] = "the root key passphrase"
    needles[harness.DEMO_INTERMEDIATE_PASSPHRASE.decode()] = "the intermediate key passphrase"
    return output, needles


def test_rotation_playbooks_print_no_key_bytes(tmp_path):
    pki = str(tmp_path / "pki")
    harness.bootstrap(pki)
    log = str(tmp_path / "verbose.log")
    runs = [
        ("rotate_client_certs.yml", ["-e", "rotation_renew_before=99%"]),  # renews everything: new keys
        ("rotate_root_ca.yml", []),
        ("rotate_intermediate.yml", ["-e", "rotation_force=true"]),
        ("audit.yml", ["-e", "audit_fail_when_due=false"]),
    ]
    checked = 0
    total_lines = 0
    for playbook, extra in runs:
        if not os.path.exists(os.path.join(harness.REPO, "playbooks", playbook)):
            raise AssertionError("playbooks/%s is missing" % playbook)
        output, needles = _verbose_run(playbook, pki, log, *extra)
        assert "<127.0.0.1>" in output or "ESTABLISH LOCAL CONNECTION" in output, "the run was not verbose"
        _assert_clean(output, needles, playbook)
        checked += len(needles)
        total_lines += output.count("\n")
    print("\nleak test: %d -vvv --diff runs, %d log lines, %d key needles searched, none found" % (len(runs), total_lines, checked))


def test_site_playbook_prints_no_key_bytes(tmp_path):
    """site.yml converges the shared local cluster, so it runs on the inventory's own PKI
    (what `make run` uses) instead of a fresh one that would replace others' Secrets."""
    site = os.path.join(harness.REPO, "playbooks", "site.yml")
    kubeconfig = os.environ.get("MTLS_KUBECONFIG")
    if not os.path.exists(site) or not kubeconfig:
        pytest.skip(
            "site.yml is not in the tree yet or the local control plane is not running (MTLS_KUBECONFIG unset); run tests/rotation/run.sh with the cluster up"
        )
    pki = os.path.realpath(harness.LOCAL_PKI_DIR)
    # site.yml converges every role: give it longer than one rotation playbook.
    output, needles = _verbose_run("site.yml", pki, str(tmp_path / "site.log"), timeout=1200)
    assert needles, "site.yml left no key under %s to search for" % pki
    _assert_clean(output, needles, "site.yml")
    print("\nleak test: site.yml -vvv --diff, %d log lines, %d key needles searched, none found" % (output.count("\n"), len(needles)))

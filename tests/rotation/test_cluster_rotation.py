# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster side of the rotations, against the real kube-apiserver of tests/cluster:
the trust bundles in Secrets hold old + new roots during phases 2-4, signing moves to the
new intermediate in phase 3, only the new root is left after phase 5; the phase state
ConfigMap follows; the rotation-record ConfigMap gets last_success, last_failure and
failures_total; a failed run resumes; the audit diagnoses a broken mesh and exits non-zero.

Uses namespaces of its own (rot-<random>-*) on the shared cluster and deletes them.
"""

import base64
import json
import os
import subprocess
import uuid

import pytest

import harness

KUBECONFIG = os.environ.get("MTLS_KUBECONFIG")

pytestmark = pytest.mark.skipif(not KUBECONFIG, reason="MTLS_KUBECONFIG is not set: the local control plane (tests/cluster/up.sh) is not running")


@pytest.fixture
def cluster():
    from kubernetes import client, config

    api_client = config.new_client_from_config(KUBECONFIG)
    core = client.CoreV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    prefix = "rot-%s" % uuid.uuid4().hex[:6]
    names = {"mesh": prefix + "-mesh", "app": prefix + "-app", "system": prefix + "-sys"}
    for namespace in names.values():
        core.create_namespace({"metadata": {"name": namespace}})
    try:
        yield core, custom, names
    finally:
        for namespace in names.values():
            core.delete_namespace(namespace)


def _secret(core, namespace, name):
    data = core.read_namespaced_secret(name, namespace).data
    return dict((k, base64.b64decode(v)) for k, v in data.items())


def _count(pem):
    return pem.count(b"BEGIN CERTIFICATE")


def _configmap(core, namespace, name):
    return core.read_namespaced_config_map(name, namespace).data


def _fingerprint_of_file(path):
    from cryptography.hazmat.primitives import hashes

    return harness.load_certs(path)[0].fingerprint(hashes.SHA256())


def _fingerprint_of_pem(pem):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    return x509.load_pem_x509_certificates(pem)[0].fingerprint(hashes.SHA256())


def _run_playbook_to_fail(playbook, pki, *extra):
    """A run that the test expects to fail: its result, where harness.run_playbook would raise."""
    return subprocess.run(
        harness.playbook_command(playbook, pki, *extra),
        cwd=harness.REPO,
        env=harness.playbook_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=300,
        check=False,
    )


def test_root_rotation_in_the_cluster(tmp_path, cluster, monkeypatch):
    core, custom, ns = cluster
    monkeypatch.setenv("MTLS_ROTATION_NAMESPACE", ns["system"])
    pki = str(tmp_path / "pki")
    targets = str(tmp_path / "targets.json")
    with open(targets, "w") as handle:
        json.dump(
            {
                "mtls_rotation_namespace": ns["system"],
                "mtls_istio_cacerts": {"name": "cacerts", "namespace": ns["mesh"]},
                "mtls_spire_upstream": {"name": "spire-upstream", "namespace": ns["mesh"]},
                "mtls_trust_manager_source": {"name": "trust-source", "namespace": ns["mesh"]},
                "mtls_ca_bundle_secrets": [{"name": "client-ca", "namespace": ns["app"]}],
                "mtls_cert_manager_ca_secret": {"name": "ca-issuer", "namespace": ns["app"]},
            },
            handle,
        )
    extra = ["-e", "@" + targets]
    harness.bootstrap(pki)

    harness.run_playbook("rotate_root_ca.yml", pki, "-e", "rotation_stop_after_phase=2", *extra)
    cacerts = _secret(core, ns["mesh"], "cacerts")
    assert _count(cacerts["root-cert.pem"]) == 2, "phase 2 must publish old + new roots to Istio"
    assert _fingerprint_of_pem(cacerts["ca-cert.pem"]) == _fingerprint_of_file(os.path.join(pki, "intermediate", "ca.crt"))
    assert _count(_secret(core, ns["app"], "client-ca")["ca.crt"]) == 2
    assert _count(_secret(core, ns["mesh"], "spire-upstream")["bundle.crt"]) == 2
    assert _count(_secret(core, ns["mesh"], "trust-source")["ca.crt"]) == 2
    state = _configmap(core, ns["system"], "mtls-rotation-root-ca")
    assert state["phase_completed"] == "2" and state["status"] == "in_progress"
    old_intermediate = _fingerprint_of_pem(cacerts["ca-cert.pem"])

    harness.run_playbook("rotate_root_ca.yml", pki, "-e", "rotation_stop_after_phase=3", *extra)
    cacerts = _secret(core, ns["mesh"], "cacerts")
    new_intermediate = _fingerprint_of_file(os.path.join(pki, "intermediate", "ca.crt"))
    assert new_intermediate != old_intermediate
    assert _fingerprint_of_pem(cacerts["ca-cert.pem"]) == new_intermediate, "phase 3 must switch Istio signing"
    assert _fingerprint_of_pem(_secret(core, ns["app"], "ca-issuer")["tls.crt"]) == new_intermediate
    assert _count(cacerts["root-cert.pem"]) == 2, "both roots stay trusted until phase 5"

    harness.run_playbook("rotate_root_ca.yml", pki, *extra)
    cacerts = _secret(core, ns["mesh"], "cacerts")
    assert _count(cacerts["root-cert.pem"]) == 1
    assert _fingerprint_of_pem(cacerts["root-cert.pem"]) == _fingerprint_of_file(os.path.join(pki, "root", "ca.crt"))
    assert _count(_secret(core, ns["app"], "client-ca")["ca.crt"]) == 1
    state = _configmap(core, ns["system"], "mtls-rotation-root-ca")
    assert state["phase_completed"] == "5" and state["status"] == "complete"
    record = _configmap(core, ns["system"], "mtls-rotation-status")
    assert int(record["rotate_root_ca.last_success"]) > 0 and record["rotate_root_ca.failures_total"] == "0"
    assert int(record["rotate_client_certs.last_success"]) > 0

    # A failing run is recorded for the exporter and the rerun resumes it.
    failing = _run_playbook_to_fail(
        "rotate_intermediate.yml", pki, "-e", "rotation_force=true", "-e", "@" + targets, "-e", "mtls_root_key_passphrase=not-the-root-passphrase"
    )
    assert failing.returncode != 0
    record = _configmap(core, ns["system"], "mtls-rotation-status")
    assert record["rotate_intermediate.failures_total"] == "1" and int(record["rotate_intermediate.last_failure"]) > 0
    harness.run_playbook("rotate_intermediate.yml", pki, *extra)  # not forced: resumes the unfinished one
    assert _fingerprint_of_file(os.path.join(pki, "intermediate", "ca.crt")) != new_intermediate
    assert _fingerprint_of_pem(_secret(core, ns["mesh"], "cacerts")["ca-cert.pem"]) == _fingerprint_of_file(os.path.join(pki, "intermediate", "ca.crt"))
    record = _configmap(core, ns["system"], "mtls-rotation-status")
    assert int(record["rotate_intermediate.last_success"]) >= int(record["rotate_intermediate.last_failure"])
    assert record["rotate_intermediate.failures_total"] == "1"


def test_audit_diagnoses_a_broken_mesh(tmp_path, cluster, monkeypatch):
    core, custom, ns = cluster
    monkeypatch.setenv("MTLS_ROTATION_NAMESPACE", ns["system"])
    pki = str(tmp_path / "pki")
    harness.bootstrap(pki)
    app = ns["app"]
    custom.create_namespaced_custom_object(
        "security.istio.io",
        "v1",
        app,
        "peerauthentications",
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": {"name": "default", "namespace": app},
            "spec": {"mtls": {"mode": "STRICT"}},
        },
    )
    custom.create_namespaced_custom_object(
        "networking.istio.io",
        "v1",
        ns["mesh"],
        "destinationrules",
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "to-app-plaintext", "namespace": ns["mesh"]},
            "spec": {"host": "api.%s.svc.cluster.local" % app, "trafficPolicy": {"tls": {"mode": "DISABLE"}}},
        },
    )
    core.create_namespaced_pod(app, {"metadata": {"name": "no-sidecar"}, "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]}})
    root_pem = open(os.path.join(pki, "root", "ca.crt")).read()
    intermediate_pem = open(os.path.join(pki, "intermediate", "ca.crt")).read()
    core.create_namespaced_config_map(app, {"metadata": {"name": "istio-ca-root-cert"}, "data": {"root-cert.pem": root_pem}})
    core.create_namespaced_config_map(ns["mesh"], {"metadata": {"name": "istio-ca-root-cert"}, "data": {"root-cert.pem": intermediate_pem}})
    report = str(tmp_path / "audit.json")
    result = _run_playbook_to_fail(
        "audit.yml",
        pki,
        "-e",
        "mtls_rotation_namespace=%s" % ns["system"],
        "-e",
        '{"audit_namespaces": ["%s", "%s"]}' % (ns["mesh"], app),
        "-e",
        "audit_report_path=%s" % report,
    )
    output = result.stdout.decode()
    assert result.returncode != 0, "the audit must fail on a broken mesh:\n" + output[-3000:]
    with open(report) as handle:
        audit = json.load(handle)
    problems = "\n".join(audit["mesh"]["problems"])
    assert "DestinationRule %s/to-app-plaintext sends plaintext" % ns["mesh"] in problems
    assert "Namespace %s is STRICT but pod(s) no-sidecar have no sidecar" % app in problems
    assert "Trust bundles differ between namespaces" in problems
    assert audit["mesh"]["namespaces"][app]["peer_authentication"] == "STRICT"
    sources = [row["source"] for row in audit["certificates"]]
    assert "ConfigMap/%s/istio-ca-root-cert[root-cert.pem]" % app in sources
    record = _configmap(core, ns["system"], "mtls-rotation-status")
    assert record["audit.failures_total"] == "1"
    print("\naudit: %d certificates, %d mesh problems:\n  %s" % (len(sources), len(audit["mesh"]["problems"]), "\n  ".join(audit["mesh"]["problems"])))

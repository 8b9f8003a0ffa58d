"""End to end against the real kube-apiserver of the local control plane.

Secrets and ConfigMaps are created with the kubernetes client, the exporter runs as a
process (`python -m mtls_exporter`) on 127.0.0.1 and is scraped over HTTP.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time

import pytest

from cluster_helpers import api_client, kubeconfig_path, unique_name
from conftest import UTC, b64, key_pem, pem
from test_files_and_http import fetch, free_port, samples

SRC = os.path.join(os.path.dirname(__file__), "..", "src")


@pytest.fixture(scope="module")
def cluster():
    path = kubeconfig_path()
    from kubernetes import client

    api = api_client(path)
    core = client.CoreV1Api(api)
    run_label = unique_name("run")
    namespaces = [unique_name("mtls-exp-a"), unique_name("mtls-exp-b")]
    for namespace in namespaces:
        core.create_namespace({"metadata": {"name": namespace, "labels": {"zerotrust.mtls/test": "exporter"}}})
    try:
        yield {"kubeconfig": path, "core": core, "namespaces": namespaces, "run_label": run_label}
    finally:
        for namespace in namespaces:
            try:
                core.delete_namespace(namespace)
            except client.ApiException as error:
                if error.status != 404:
                    raise


def tls_secret(core, namespace, name, cert_pem: bytes, key_bytes: bytes, labels, ca_pem: bytes | None = None, secret_type="kubernetes.io/tls"):
    data = {"tls.crt": b64(cert_pem), "tls.key": b64(key_bytes)}
    if ca_pem:
        data["ca.crt"] = b64(ca_pem)
    return core.create_namespaced_secret(namespace, {"metadata": {"name": name, "labels": labels}, "type": secret_type, "data": data})


class Scraper:
    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}/metrics"

    def series(self):
        status, body = fetch(self.url)
        assert status == 200
        return samples(body)

    def values(self, name, **labels):
        return [v for n, found, v in self.series() if n == name and all(found.get(k) == val for k, val in labels.items())]

    def wait_for(self, description, predicate, timeout=30.0):
        deadline = time.time() + timeout
        while True:
            series = self.series()
            if predicate(series):
                return series
            assert time.time() < deadline, f"timed out waiting for {description}"
            time.sleep(0.3)


def start_exporter(arguments):
    """`python -m mtls_exporter` from the source tree, its stderr kept for the failure message."""
    return subprocess.Popen([sys.executable, "-m", "mtls_exporter", *arguments], env={**os.environ, "PYTHONPATH": SRC}, stderr=subprocess.PIPE, text=True)


def wait_until_ready(process, port, failure):
    """Polls /readyz until it answers 200; fails with the exporter's stderr if it exits, with `failure` after 60 s."""
    deadline = time.time() + 60
    while True:
        try:
            if fetch(f"http://127.0.0.1:{port}/readyz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.time() < deadline, failure
        time.sleep(0.2)


def pick(series, name, **labels):
    return [v for n, found, v in series if n == name and all(found.get(k) == val for k, val in labels.items())]


def test_exporter_against_local_cluster(cluster, root_ca, foreign_ca, tmp_path):
    core, (ns_a, ns_b), run = cluster["core"], cluster["namespaces"], cluster["run_label"]
    labels = {"zerotrust.mtls/run": run}
    now = datetime.datetime.now(UTC)

    good, good_key = root_ca.issue("good.svc", not_after=now + datetime.timedelta(days=20))
    expired, expired_key = root_ca.issue("expired.svc", not_before=now - datetime.timedelta(days=9), not_after=now - datetime.timedelta(days=2))
    foreign, foreign_key = foreign_ca.issue("foreign.svc")
    tls_secret(core, ns_a, "good", pem(good), key_pem(good_key), labels, ca_pem=root_ca.pem)
    tls_secret(core, ns_a, "expired", pem(expired), key_pem(expired_key), labels)
    tls_secret(core, ns_a, "foreign", pem(foreign), key_pem(foreign_key), labels)
    tls_secret(core, ns_a, "garbage-pem", b"-----BEGIN CERTIFICATE-----\nnot der\n-----END CERTIFICATE-----\n", key_pem(good_key), labels)
    tls_secret(core, ns_b, "garbage-key", pem(good), b"\x00\xff definitely not a key", labels)
    tls_secret(core, ns_b, "unlabelled", pem(good), key_pem(good_key), {})  # outside --label-selector
    intermediate = root_ca.intermediate("mesh intermediate")
    core.create_namespaced_secret(
        ns_b,
        {
            "metadata": {"name": "cacerts", "labels": labels},
            "type": "Opaque",
            "data": {
                "ca-cert.pem": b64(pem(intermediate.certificate)),
                "ca-key.pem": b64(key_pem(intermediate.key)),
                "cert-chain.pem": b64(pem(intermediate.certificate, root_ca.certificate)),
                "root-cert.pem": b64(root_ca.pem),
            },
        },
    )
    for namespace in (ns_a, ns_b):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "istio-ca-root-cert"}, "data": {"root-cert.pem": root_ca.pem.decode()}})
    core.create_namespaced_config_map(
        ns_a,
        {
            "metadata": {"name": "mtls-rotation-status"},
            "data": {"rotate_root_ca.last_success": "1790000000", "rotate_root_ca.failures_total": "0"},
        },
    )
    trust = tmp_path / "trust.pem"
    trust.write_bytes(root_ca.pem)

    port = free_port()
    command = [
        "--kubeconfig",
        cluster["kubeconfig"],
        "--listen",
        f"127.0.0.1:{port}",
        "--namespace",
        ns_a,
        "--namespace",
        ns_b,
        "--label-selector",
        f"zerotrust.mtls/run={run}",
        "--include-configmaps",
        "--trust-bundle",
        str(trust),
        "--rotation-configmap",
        f"{ns_a}/mtls-rotation-status",
        # Two objects per page: the initial lists have to follow continue tokens.
        "--page-size",
        "2",
    ]
    process = start_exporter(command)
    scraper = Scraper(port)
    try:
        wait_until_ready(process, port, "exporter did not finish its initial lists")

        series = scraper.series()
        # Right not_after for a certificate written to the cluster.
        assert pick(series, "x509_cert_not_after", secret_namespace=ns_a, secret_name="good", secret_key="tls.crt") == [good.not_valid_after_utc.timestamp()]
        assert pick(series, "x509_cert_expired", secret_name="good", secret_key="tls.crt") == [0.0]
        assert pick(series, "x509_cert_expired", secret_name="expired", secret_key="tls.crt") == [1.0]
        # Foreign CA: does not chain; our own does, also through cert-chain.pem.
        assert pick(series, "mtls_cert_chain_valid", secret_name="foreign", secret_key="tls.crt") == [0.0]
        assert pick(series, "mtls_cert_chain_valid", secret_name="good", secret_key="tls.crt") == [1.0]
        assert pick(series, "mtls_cert_chain_valid", secret_name="cacerts", secret_key="ca-cert.pem") == [1.0]
        # Garbage PEM: counted, nothing exported for it; garbage private key: not an error.
        assert pick(series, "x509_source_errors_total", reason="bad_pem") == [1.0]
        assert sum(v for n, _labels, v in series if n == "x509_source_errors_total") == 1.0
        assert not pick(series, "x509_cert_not_after", secret_name="garbage-pem")
        assert pick(series, "x509_cert_expired", secret_namespace=ns_b, secret_name="garbage-key", secret_key="tls.crt") == [0.0]
        # The label selector went to the API server: the unlabelled Secret is absent.
        assert not pick(series, "x509_cert_not_after", secret_name="unlabelled")
        # Istio cacerts: certificate keys exported, ca-key.pem never.
        assert {found["secret_key"] for n, found, _v in series if n == "x509_cert_not_after" and found.get("secret_name") == "cacerts"} == {
            "ca-cert.pem",
            "cert-chain.pem",
            "root-cert.pem",
        }
        bundle = "configmap/istio-ca-root-cert/root-cert.pem"
        assert pick(series, "mtls_trust_bundle_consistent", bundle=bundle) == [1.0]
        assert pick(series, "mtls_trust_bundle_instances", bundle=bundle) == [2.0]
        assert pick(series, "mtls_rotation_last_success_timestamp_seconds", rotation="rotate_root_ca") == [1790000000.0]
        assert pick(series, "x509_source_up", source_kind="kubernetes", source_name="secrets") == [1.0]

        # The exporter keeps serving and follows the watch: add, change, delete.
        later, later_key = root_ca.issue("later.svc")
        tls_secret(core, ns_b, "later", pem(later), key_pem(later_key), labels)
        expected_not_after = [later.not_valid_after_utc.timestamp()]
        scraper.wait_for("the new Secret", lambda s: pick(s, "x509_cert_not_after", secret_name="later", secret_key="tls.crt") == expected_not_after)

        core.delete_namespaced_secret("good", ns_a)
        scraper.wait_for("the deleted Secret's series to go", lambda s: not pick(s, "x509_cert_not_after", secret_name="good"))

        core.patch_namespaced_config_map("istio-ca-root-cert", ns_b, {"data": {"root-cert.pem": foreign_ca.pem.decode()}})
        scraper.wait_for("trust bundle disagreement", lambda s: pick(s, "mtls_trust_bundle_consistent", bundle=bundle) == [0.0])

        core.patch_namespaced_config_map(
            "mtls-rotation-status",
            ns_a,
            {"data": {"rotate_root_ca.last_failure": "1790000500", "rotate_root_ca.failures_total": "1"}},
        )
        scraper.wait_for(
            "the rotation failure",
            lambda s: pick(s, "mtls_rotation_failures_total", rotation="rotate_root_ca") == [1.0]
            and pick(s, "mtls_rotation_last_failure_timestamp_seconds", rotation="rotate_root_ca") == [1790000500.0],
        )
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=15)

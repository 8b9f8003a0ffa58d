"""What the collection writes, the exporter reads: the real modules (mtls_ca, mtls_cert,
mtls_secret, mtls_rotation_state) write to the local cluster, the exporter scrapes it."""

from __future__ import annotations

import json
import os
import subprocess
import time

from cryptography import x509

from cluster_helpers import REPO_ROOT, api_client, kubeconfig_path, scratch_namespace
from test_cluster_e2e import Scraper, pick, start_exporter, wait_until_ready
from test_files_and_http import free_port

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Root CA
      zerotrust.mtls.mtls_ca:
        cert_path: "{{ pki }}/root.crt"
        key_path: "{{ pki }}/root.key"
        common_name: exporter e2e root
        valid_for: 3650d
    - name: Cluster intermediate
      zerotrust.mtls.mtls_ca:
        cert_path: "{{ pki }}/intermediate.crt"
        key_path: "{{ pki }}/intermediate.key"
        parent_cert_path: "{{ pki }}/root.crt"
        parent_key_path: "{{ pki }}/root.key"
        common_name: exporter e2e intermediate
        valid_for: 365d
    - name: Workload certificate
      zerotrust.mtls.mtls_cert:
        ca_cert_path: "{{ pki }}/intermediate.crt"
        ca_key_path: "{{ pki }}/intermediate.key"
        ca_chain_path: "{{ pki }}/root.crt"
        cert_path: "{{ pki }}/web.crt"
        key_path: "{{ pki }}/web.key"
        common_name: web.shop.svc
        dns_names: [web.shop.svc]
        valid_for: 20d
    - name: kubernetes.io/tls Secret
      zerotrust.mtls.mtls_secret:
        kubeconfig: "{{ kubeconfig }}"
        name: web-tls
        namespace: "{{ namespace }}"
        layout: tls
        cert_path: "{{ pki }}/web.crt"
        key_path: "{{ pki }}/web.key"
        chain_path: "{{ pki }}/intermediate.crt"
        ca_path: "{{ pki }}/root.crt"
    - name: Istio cacerts
      zerotrust.mtls.mtls_secret:
        kubeconfig: "{{ kubeconfig }}"
        name: cacerts
        namespace: "{{ namespace }}"
        layout: istio_cacerts
        cert_path: "{{ pki }}/intermediate.crt"
        key_path: "{{ pki }}/intermediate.key"
        ca_path: "{{ pki }}/root.crt"
    - name: A failed rotation run, as the rotation playbooks record it
      zerotrust.mtls.mtls_rotation_state:
        kubeconfig: "{{ kubeconfig }}"
        rotation: root_ca
        operation: record
        success: false
        record_configmap: {name: mtls-rotation-status, namespace: "{{ namespace }}"}
"""


def test_certificates_written_by_the_collection(tmp_path):
    kubeconfig = kubeconfig_path()
    with scratch_namespace(api_client(kubeconfig), "mtls-exp-coll") as namespace:
        pki = tmp_path / "pki"
        pki.mkdir()
        (tmp_path / "write.yml").write_text(PLAYBOOK)
        subprocess.run(["bash", str(REPO_ROOT / "scripts" / "collection-link.sh")], check=True)
        env = {**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
        variables = {"pki": str(pki), "kubeconfig": kubeconfig, "namespace": namespace}
        process = None
        try:
            written = subprocess.run(
                [
                    str(REPO_ROOT / ".venv" / "bin" / "ansible-playbook"),
                    "-i",
                    "localhost,",
                    "-c",
                    "local",
                    str(tmp_path / "write.yml"),
                    "-e",
                    json.dumps(variables),
                ],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert written.returncode == 0, written.stdout[-5000:] + written.stderr[-2000:]

            # Public files only: the certificate and the root, never the keys.
            web = x509.load_pem_x509_certificate((pki / "web.crt").read_bytes())
            intermediate = x509.load_pem_x509_certificate((pki / "intermediate.crt").read_bytes())
            port = free_port()
            command = [
                "--kubeconfig",
                kubeconfig,
                "--listen",
                f"127.0.0.1:{port}",
                "--namespace",
                namespace,
                "--trust-bundle",
                str(pki / "root.crt"),
                "--rotation-configmap",
                f"{namespace}/mtls-rotation-status",
            ]
            process = start_exporter(command)
            wait_until_ready(process, port, "exporter did not become ready")
            series = Scraper(port).series()

            assert pick(series, "x509_cert_not_after", secret_name="web-tls", secret_key="tls.crt", subject_CN="web.shop.svc") == [
                web.not_valid_after_utc.timestamp()
            ]
            assert pick(series, "x509_cert_expired", secret_name="web-tls", subject_CN="web.shop.svc") == [0.0]
            # The collection's tls layout lets the leaf chain to the root through its own Secret.
            assert pick(series, "mtls_cert_chain_valid", secret_name="web-tls", subject_CN="web.shop.svc") == [1.0]
            assert pick(series, "x509_cert_not_after", secret_name="cacerts", secret_key="ca-cert.pem") == [intermediate.not_valid_after_utc.timestamp()]
            assert pick(series, "mtls_cert_chain_valid", secret_name="cacerts", secret_key="ca-cert.pem") == [1.0]
            assert not [labels for name, labels, _value in series if labels.get("secret_key") in ("tls.key", "ca-key.pem")]
            assert pick(series, "mtls_rotation_failures_total", rotation="root_ca") == [1.0]
            (last_failure,) = pick(series, "mtls_rotation_last_failure_timestamp_seconds", rotation="root_ca")
            assert time.time() - 600 < last_failure <= time.time()
            assert not pick(series, "x509_source_errors_total")
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=15)

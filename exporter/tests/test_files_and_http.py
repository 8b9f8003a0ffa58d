"""File sources, the CLI wiring and the real HTTP endpoint (no cluster needed)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import key_pem, pem
from mtls_exporter import certs
from mtls_exporter.cli import DEFAULT_LISTEN, build_parser
from mtls_exporter.files import FilePoller
from mtls_exporter.server import parse_listen
from mtls_exporter.store import CertificateStore

SRC = os.path.join(os.path.dirname(__file__), "..", "src")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str, timeout: float = 10.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def samples(text: str):
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def test_file_with_certificate_and_key_only_exports_the_certificate(tmp_path, root_ca, monkeypatch):
    certificate, key = root_ca.issue("node.example")
    combined = tmp_path / "node.pem"
    combined.write_bytes(pem(certificate) + key_pem(key))
    parsed_inputs = []
    real_loader = certs.x509.load_pem_x509_certificates
    monkeypatch.setattr(certs.x509, "load_pem_x509_certificates", lambda data: parsed_inputs.append(data) or real_loader(data))

    store = CertificateStore()
    FilePoller(store, [str(combined)]).poll_once()
    (source_object,) = store.snapshot()
    (key_certs,) = source_object.keys
    assert [c.serial_number for c in key_certs.certificates] == [str(certificate.serial_number)]
    assert key_certs.labels[0]["filepath"] == str(combined)
    assert key_certs.labels[0]["filename"] == "node.pem"
    assert parsed_inputs and all(b"PRIVATE KEY" not in data for data in parsed_inputs)


def test_file_changes_and_removal_are_followed(tmp_path, root_ca):
    path = tmp_path / "ca.pem"
    path.write_bytes(root_ca.pem)
    store = CertificateStore()
    poller = FilePoller(store, [str(path)])
    poller.poll_once()
    poller.poll_once()
    assert store.parse_count == 1  # unchanged file: not parsed again
    other, _unused = root_ca.issue("rotated.example")
    path.write_bytes(pem(other))
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    poller.poll_once()
    assert store.snapshot()[0].keys[0].certificates[0].subject[-1] == "rotated.example"
    path.unlink()
    poller.poll_once()
    assert store.snapshot() == []
    assert store.errors_snapshot() == {("file", str(path), "not_found"): 1}


def test_key_named_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match="private key"):
        FilePoller(CertificateStore(), [str(tmp_path / "tls.key")])


def test_trust_bundle_file_reload_keeps_previous_anchors_when_broken(tmp_path, root_ca, foreign_ca):
    bundle = tmp_path / "trust.pem"
    bundle.write_bytes(root_ca.pem)
    store = CertificateStore()
    poller = FilePoller(store, [], trust_bundle=str(bundle))
    poller.poll_once()
    first = store.trust_anchors.bundle_fingerprint
    bundle.write_bytes(b"half written")
    poller.poll_once()
    assert store.trust_anchors.bundle_fingerprint == first
    bundle.write_bytes(root_ca.pem + foreign_ca.pem)
    poller.poll_once()
    assert len(store.trust_anchors) == 2


def test_listen_parsing_and_default():
    assert DEFAULT_LISTEN == "127.0.0.1:9793"
    assert build_parser().parse_args([]).listen == DEFAULT_LISTEN
    assert parse_listen("0.0.0.0:9793") == ("0.0.0.0", 9793)
    with pytest.raises(ValueError):
        parse_listen("9793")


def test_cli_serves_file_certificates_over_http(tmp_path, root_ca, foreign_ca):
    """`python -m mtls_exporter` end to end on 127.0.0.1, with files only."""
    good, _unused = root_ca.issue("good.example")
    foreign, _unused = foreign_ca.issue("foreign.example")
    (tmp_path / "good.pem").write_bytes(pem(good))
    (tmp_path / "foreign.pem").write_bytes(pem(foreign))
    (tmp_path / "garbage.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nZm9v\n-----END CERTIFICATE-----\n")
    (tmp_path / "trust.pem").write_bytes(root_ca.pem)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mtls_exporter",
        "--no-secrets",
        "--listen",
        f"127.0.0.1:{port}",
        "--trust-bundle",
        str(tmp_path / "trust.pem"),
        "--file-poll-interval",
        "0.2",
    ]
    for name in ("good.pem", "foreign.pem", "garbage.pem"):
        command += ["--watch-file", str(tmp_path / name)]
    process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": SRC}, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while True:
            try:
                status, _unused = fetch(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, process.stderr.read()
            assert time.time() < deadline, "exporter never became ready"
            time.sleep(0.1)
        status, body = fetch(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        series = samples(body)
        chain = {labels["filename"]: value for name, labels, value in series if name == "mtls_cert_chain_valid"}
        assert chain == {"good.pem": 1.0, "foreign.pem": 0.0}
        errors = [(labels, value) for name, labels, value in series if name == "x509_source_errors_total"]
        assert errors == [({"source_kind": "file", "source_name": str(tmp_path / "garbage.pem"), "reason": "bad_pem"}, 1.0)]

        # The garbage file did not stop anything: fix it and it is picked up.
        (tmp_path / "garbage.pem").write_bytes(pem(good))
        deadline = time.time() + 10

        def fixed_file_exported():
            series = samples(fetch(f"http://127.0.0.1:{port}/metrics")[1])
            return any(name == "x509_cert_not_after" and labels.get("filename") == "garbage.pem" for name, labels, _unused in series)

        while not fixed_file_exported():
            assert time.time() < deadline, "fixed file never appeared"
            time.sleep(0.2)
        assert fetch(f"http://127.0.0.1:{port}/healthz")[0] == 200
        assert fetch(f"http://127.0.0.1:{port}/nope")[0] == 404
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_cli_rejects_private_key_option():
    result = subprocess.run(
        [sys.executable, "-m", "mtls_exporter", "--opaque-secret-keys", "ca.crt,ca-key.pem", "--listen", "127.0.0.1:0"],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "ca-key.pem" in result.stderr and "private keys" in result.stderr

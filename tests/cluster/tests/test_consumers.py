"""The real consumers act on what the roles write (issue 11).

Each test drives a real program (built from the Go module proxy by
tests/cluster/build-consumers.sh, or our exporter) through tests/cluster/pod_runner.py,
which runs it from the Pod object of the Deployment/StatefulSet the role or chart
created. What the roles write comes from one run of playbooks/site.yml with the local
inventory. A consumer whose binary is not built FAILS its test with one sentence.

Timings of each step are appended to <cluster dir>/logs/consumers-timings.jsonl.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

CHECKOUT = Path(__file__).resolve().parents[3]
CLUSTER_DIR = Path(os.environ.get("MTLS_CLUSTER_DIR") or CHECKOUT / ".cluster")
RUNNER = CHECKOUT / "tests" / "cluster" / "pod_runner.py"
BUILD_CONSUMERS = CHECKOUT / "tests" / "cluster" / "build-consumers.sh"
X509VERIFY_SRC = CHECKOUT / "tests" / "cluster" / "x509verify"
CACHE_DIR = Path(os.environ.get("MTLS_CACHE_DIR") or Path.home() / ".cache" / "zerotrust-mtls")
VENV_BIN = CHECKOUT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
FIELD_MANAGER = "zerotrust-mtls-consumer-tests"
TRUST_DOMAIN = "cluster.local"

CERT_MANAGER_VERSION = "v1.21.2"
HELM_VERSION = "v3.21.4"


# --------------------------------------------------------------------------- helpers

def timing(step: str, seconds: float, **extra) -> None:
    (CLUSTER_DIR / "logs").mkdir(parents=True, exist_ok=True)
    with open(CLUSTER_DIR / "logs" / "consumers-timings.jsonl", "a") as handle:
        handle.write(json.dumps({"step": step, "seconds": round(seconds, 2), "at": time.time(), **extra}) + "\n")


def run(argv: list[str], timeout: float = 300, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(CHECKOUT / "ansible.cfg"),
           "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=CHECKOUT, env=env, **kwargs)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(argv[:4])} ... failed with status {result.returncode}:\n"
                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}", pytrace=False)
    return result


def wait_for(description: str, predicate, timeout_s: float = 90, interval_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except ApiException as error:
            if error.status != 404:
                raise
            last = None
        if last:
            return last
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {description} (last value: {last!r})", pytrace=False)


def condition(obj: dict | None, kind: str = "Ready") -> str | None:
    for item in ((obj or {}).get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return item.get("status")
    return None


def apply_documents(api: client.ApiClient, documents: list[dict]) -> None:
    dynamic = DynamicClient(api)
    for document in documents:
        resource = dynamic.resources.get(api_version=document["apiVersion"], kind=document["kind"])
        namespace = document["metadata"].get("namespace") if resource.namespaced else None
        resource.server_side_apply(body=document, name=document["metadata"]["name"], namespace=namespace,
                                   field_manager=FIELD_MANAGER, force_conflicts=True)


def pod_runner(*args: str, timeout: float = 200) -> subprocess.CompletedProcess:
    return run([PYTHON, str(RUNNER), *args], timeout=timeout, check=False)


def require_consumer(name: str) -> str:
    """The cached binary of a consumer; a missing one fails the test with one sentence."""
    if not BUILD_CONSUMERS.exists():
        pytest.fail(f"{name} cannot run: tests/cluster/build-consumers.sh does not exist, so no consumer binary "
                    "is built.", pytrace=False)
    result = run([str(BUILD_CONSUMERS), "--print-bin", name], timeout=60, check=False)
    path = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    if result.returncode != 0 or not path or not os.access(path, os.X_OK):
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.fail(f"{name} is not built ({reason}); build it with tests/cluster/build-consumers.sh, then rerun.",
                    pytrace=False)
    return path


def runner_up(consumer: str, timeout: float = 150) -> dict:
    started = time.monotonic()
    result = pod_runner("up", "--only", consumer, "--timeout", str(timeout), timeout=timeout + 60)
    if result.returncode != 0:
        pytest.fail(f"the pod runner could not start {consumer}:\n{result.stderr[-4000:]}", pytrace=False)
    state = json.loads(pod_runner("status", "--json").stdout)
    entries = [c for c in state.get("containers", []) if c["consumer"] == consumer and c["state"] == "ready"]
    assert entries, f"{consumer} is not ready after pod_runner.py up: {state}"
    timing(f"{consumer}: pod runner up (ready)", time.monotonic() - started)
    return entries[0]


def http_get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


def x509verify_binary() -> str:
    """Our Go verifier (std lib only), built once per source hash and cached."""
    digest = hashlib.sha256()
    for name in ("go.mod", "main.go"):
        digest.update((X509VERIFY_SRC / name).read_bytes())
    target = CACHE_DIR / "bin" / f"x509verify-{digest.hexdigest()[:12]}" / "x509verify"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".x509verify.{os.getpid()}")
        started = time.monotonic()
        result = subprocess.run(["flock", "/tmp/zt-go-build.lock", "nice", "-n", "10", "go", "build", "-p", "2",
                                 "-trimpath", "-o", str(tmp), "."], cwd=X509VERIFY_SRC, capture_output=True,
                                text=True, timeout=900)
        if result.returncode != 0:
            pytest.fail(f"building tests/cluster/x509verify failed: {result.stderr[-2000:]}", pytrace=False)
        os.replace(tmp, target)
        timing("x509verify: go build", time.monotonic() - started)
    return str(target)


def split_pem(pem: str) -> list[str]:
    return re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?", pem, re.S)


def verify_chain(tmp: Path, roots_pem: str, chain_pem: str, uri: str | None = None) -> dict:
    """openssl verify -x509_strict and Go crypto/x509; returns Go's view of the leaf."""
    certs = split_pem(chain_pem)
    assert certs, "no certificate in the chain"
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "roots.pem").write_text(roots_pem)
    (tmp / "leaf.pem").write_text(certs[0])
    (tmp / "untrusted.pem").write_text("".join(certs[1:]) or "")
    (tmp / "chain.pem").write_text("".join(certs))
    argv = ["openssl", "verify", "-x509_strict", "-CAfile", str(tmp / "roots.pem")]
    if len(certs) > 1:
        argv += ["-untrusted", str(tmp / "untrusted.pem")]
    result = subprocess.run(argv + [str(tmp / "leaf.pem")], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), \
        f"openssl verify -x509_strict refused the chain: {result.stdout}{result.stderr}"
    argv = [x509verify_binary(), "-roots", str(tmp / "roots.pem"), "-cert", str(tmp / "chain.pem")]
    if uri:
        argv += ["-uri", uri]
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.returncode == 0, f"Go crypto/x509 refused the chain: {result.stderr}"
    return json.loads(result.stdout)


def fingerprint(pem: str) -> str:
    der = ssl.PEM_cert_to_DER_cert(split_pem(pem)[0])
    return hashlib.sha256(der).hexdigest()


def metric_values(text: str, name: str) -> list[tuple[dict, float]]:
    out = []
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        match = re.match(re.escape(name) + r"(?:\{(.*)\})?\s+(\S+)", line)
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1) or ""))
        out.append((labels, float(match.group(2))))
    return out


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def pki_dir() -> Path:
    result = run([str(VENV_BIN / "ansible"), "-i", "inventories/local", "localhost", "-m", "ansible.builtin.debug",
                  "-a", "var=mtls_pki_dir", "-o"], timeout=120)
    match = re.search(r'"mtls_pki_dir":\s*"([^"]+)"', result.stdout)
    assert match, f"cannot read mtls_pki_dir from the local inventory: {result.stdout}"
    return Path(match.group(1))


@pytest.fixture(scope="module")
def site(kubeconfig_path, pki_dir) -> dict:
    """One run of playbooks/site.yml with the local inventory: what the roles write."""
    started = time.monotonic()
    run([str(VENV_BIN / "ansible-playbook"), "-i", "inventories/local", "playbooks/site.yml",
         "-e", f"mtls_kubeconfig={kubeconfig_path}"], timeout=900)
    timing("site.yml", time.monotonic() - started)
    root = (pki_dir / "root" / "ca.crt").read_text()
    return {"root_pem": root, "intermediate_pem": (pki_dir / "clusters" / "local" / "ca.crt").read_text()}


@pytest.fixture(scope="module")
def runner(kubeconfig_path):
    """The pod runner for this module; stopped at the end when this module started it."""
    was_running = pod_runner("status").returncode != 3
    yield
    if not was_running and not os.environ.get("MTLS_KEEP_POD_RUNNER"):
        pod_runner("down")


@pytest.fixture(scope="module")
def core(admin_api) -> client.CoreV1Api:
    return client.CoreV1Api(admin_api)


@pytest.fixture(scope="module")
def custom(admin_api) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(admin_api)


# --------------------------------------------------------------------------- cert-manager

def cert_manager_chart_documents(tmp: Path) -> list[dict]:
    """The cert-manager chart that ships in the Go module, rendered by helm (from the proxy).

    Test-only changes: the chart's version fields are set to the release (its release tool
    does that), CRDs are left out (the cluster has them), and the two webhook
    configurations and the startupapicheck Job are dropped: the API server would dial the
    webhook Service on 127.200.0.x and get "connection refused" for every cert-manager
    object, and no webhook program runs here. The controller Deployment, its RBAC and
    ServiceAccount are applied as rendered.
    """
    helm = CACHE_DIR / "bin" / f"helm-{HELM_VERSION}" / "helm"
    if not helm.exists():
        started = time.monotonic()
        build = tmp / "helm-build"
        result = subprocess.run(["flock", "/tmp/zt-go-build.lock", "nice", "-n", "10", "go", "install", "-p", "2",
                                 "-trimpath", "-ldflags", "-s -w", f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"],
                                env={**os.environ, "GOBIN": str(build)}, capture_output=True, text=True, timeout=1800)
        if result.returncode != 0:
            pytest.fail(f"go install helm {HELM_VERSION} failed: {result.stderr[-2000:]}", pytrace=False)
        helm.parent.mkdir(parents=True, exist_ok=True)
        os.replace(build / "helm", helm)
        timing("helm: go install", time.monotonic() - started)
    result = subprocess.run(["go", "mod", "download", "-json", f"github.com/cert-manager/cert-manager@{CERT_MANAGER_VERSION}"],
                            capture_output=True, text=True, timeout=900, cwd=tmp)
    if result.returncode != 0:
        pytest.fail(f"go mod download of cert-manager {CERT_MANAGER_VERSION} failed: {result.stdout[-1000:]}"
                    f"{result.stderr[-1000:]}", pytrace=False)
    module_dir = Path(json.loads(result.stdout)["Dir"])
    chart = tmp / "cert-manager-chart"
    shutil.copytree(module_dir / "deploy" / "charts" / "cert-manager", chart)
    for path in [chart, *chart.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    meta = (chart / "Chart.yaml").read_text()
    meta = re.sub(r"(?m)^version: .*$", f"version: {CERT_MANAGER_VERSION}", meta)
    meta = re.sub(r"(?m)^appVersion: .*$", f"appVersion: {CERT_MANAGER_VERSION}", meta)
    (chart / "Chart.yaml").write_text(meta)
    result = subprocess.run([str(helm), "template", "cert-manager", str(chart), "--namespace", "cert-manager",
                             "--kube-version", "v1.35.4", "--set", "crds.enabled=false",
                             "--set", "startupapicheck.enabled=false"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"helm template of the cert-manager chart failed: {result.stderr}"
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    dropped = {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "Job"}
    return [d for d in documents if d["kind"] not in dropped]


@pytest.fixture(scope="module")
def cert_manager(site, admin_api, runner, tmp_path_factory):
    require_consumer("cert-manager-controller")
    started = time.monotonic()
    documents = cert_manager_chart_documents(tmp_path_factory.mktemp("cert-manager"))
    controller = [d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "cert-manager"]
    assert controller and controller[0]["spec"]["template"]["spec"]["containers"][0]["image"].endswith(
        f"cert-manager-controller:{CERT_MANAGER_VERSION}")
    apply_documents(admin_api, documents)
    timing("cert-manager: chart rendered and applied", time.monotonic() - started)
    return runner_up("cert-manager-controller")


def test_cert_manager_issues_from_the_roles_cluster_issuer(cert_manager, site, custom, core, tmp_path):
    started = time.monotonic()
    issuer = wait_for("ClusterIssuer mtls-ca to become Ready", lambda: (
        lambda obj: obj if condition(obj) == "True" else None)(
        custom.get_cluster_custom_object("cert-manager.io", "v1", "clusterissuers", "mtls-ca")), timeout_s=60)
    issuer_ready_s = time.monotonic() - started
    assert issuer["spec"]["ca"]["secretName"] == "mtls-intermediate-ca"
    inventory = yaml.safe_load((CHECKOUT / "inventories/local/group_vars/all/cluster.yml").read_text())
    certificates = inventory["cert_manager_certificates"]
    assert certificates, "the local inventory lists no cert_manager_certificates"
    for spec in certificates:
        name, namespace = spec["name"], spec["namespace"]
        wait_for(f"Certificate {namespace}/{name} to become Ready", lambda: condition(
            custom.get_namespaced_custom_object("cert-manager.io", "v1", namespace, "certificates", name)) == "True",
            timeout_s=60)
        secret = core.read_namespaced_secret(spec.get("secret_name", f"{name}-tls"), namespace)
        chain = base64.b64decode(secret.data["tls.crt"]).decode()
        leaf = verify_chain(tmp_path / name, site["root_pem"], chain, uri=(spec.get("uris") or [None])[0])
        assert leaf["dns_names"] == spec["dns_names"]
        assert leaf["lifetime_seconds"] == 720 * 3600, leaf  # duration: 720h from the inventory
        assert fingerprint(base64.b64decode(secret.data["ca.crt"]).decode()) == fingerprint(site["root_pem"]), \
            "the issued Secret's ca.crt is not our root"
    timing("cert-manager: issuer Ready, certificates issued and verified", time.monotonic() - started,
           issuer_ready_s=round(issuer_ready_s, 2))


def test_cert_manager_serves_certificate_expiry_metrics(cert_manager, core):
    text = wait_for("certmanager_certificate_expiration_timestamp_seconds for payments-api", lambda: (
        lambda body: body if 'name="payments-api"' in body else None)(
        http_get(f"http://{cert_manager['pod_ip']}:9402/metrics")), timeout_s=60)
    values = [v for labels, v in metric_values(text, "certmanager_certificate_expiration_timestamp_seconds")
              if labels.get("name") == "payments-api" and labels.get("namespace") == "zt-payments"]
    assert len(values) == 1
    secret = core.read_namespaced_secret("payments-api-tls", "zt-payments")
    not_after = subprocess.run(["openssl", "x509", "-noout", "-enddate"], input=base64.b64decode(secret.data["tls.crt"]),
                               capture_output=True).stdout.decode().strip().split("=", 1)[1]
    expected = time.mktime(time.strptime(not_after, "%b %d %H:%M:%S %Y %Z")) - time.timezone
    assert abs(values[0] - expected) < 2, (values[0], expected)

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
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from cryptography import x509
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

HELM_VERSION = "v3.21.4"


def consumer_versions() -> dict[str, str]:
    """The versions build-consumers.sh builds (tests/cluster/consumers/versions.env)."""
    path = CHECKOUT / "tests" / "cluster" / "consumers" / "versions.env"
    pairs = re.findall(r"(?m)^([A-Z_]+)=(\S+)$", path.read_text()) if path.exists() else []
    return dict(pairs)


# The charts are rendered from the same module versions as the binaries.
CERT_MANAGER_VERSION = consumer_versions().get("CERT_MANAGER_VERSION", "v1.20.3")


# --------------------------------------------------------------------------- helpers


def timing(step: str, seconds: float, **extra) -> None:
    (CLUSTER_DIR / "logs").mkdir(parents=True, exist_ok=True)
    with open(CLUSTER_DIR / "logs" / "consumers-timings.jsonl", "a") as handle:
        handle.write(json.dumps({"step": step, "seconds": round(seconds, 2), "at": time.time(), **extra}) + "\n")


def run(argv: list[str], timeout: float = 300, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(CHECKOUT / "ansible.cfg"), "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=CHECKOUT, env=env, **kwargs)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(argv[:4])} ... failed with status {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}", pytrace=False)
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
        resource.server_side_apply(body=document, name=document["metadata"]["name"], namespace=namespace, field_manager=FIELD_MANAGER, force_conflicts=True)


def delete_config_maps(core: client.CoreV1Api, name: str, namespaces) -> None:
    """ConfigMap `name` deleted in each namespace (one that is not there is fine), so that a
    consumer must write it again."""
    for namespace in namespaces:
        try:
            core.delete_namespaced_config_map(name, namespace)
        except ApiException as error:
            if error.status != 404:
                raise


def pod_runner(*args: str, timeout: float = 200) -> subprocess.CompletedProcess:
    return run([PYTHON, str(RUNNER), *args], timeout=timeout, check=False)


def require_consumer(name: str) -> str:
    """The cached binary of a consumer; a missing one fails the test with one sentence."""
    override = os.environ.get("MTLS_POD_RUNNER_BIN_" + name.upper().replace("-", "_"))
    if override:  # the pod runner's development override (see pod_runner.py)
        return override
    if not BUILD_CONSUMERS.exists():
        pytest.fail(f"{name} cannot run: tests/cluster/build-consumers.sh does not exist, so no consumer binary is built.", pytrace=False)
    result = run([str(BUILD_CONSUMERS), "--print-bin", name], timeout=60, check=False)
    path = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    if result.returncode != 0 or not path or not os.access(path, os.X_OK):
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.fail(f"{name} is not built ({reason}); build it with tests/cluster/build-consumers.sh, then rerun.", pytrace=False)
    return path


def runner_up(consumer: str, timeout: float = 150, namespace: str | None = None) -> dict:
    started = time.monotonic()
    result = pod_runner("up", "--only", namespace or consumer, "--timeout", str(timeout), timeout=timeout + 60)
    if result.returncode != 0:
        pytest.fail(f"the pod runner could not start {consumer}:\n{result.stderr[-4000:]}", pytrace=False)
    state = json.loads(pod_runner("status", "--json").stdout)
    entries = [
        c for c in state.get("containers", []) if c["consumer"] == consumer and c["state"] == "ready" and (namespace is None or c["namespace"] == namespace)
    ]
    assert entries, f"{consumer} is not ready after pod_runner.py up: {state}"
    timing(f"{consumer}: pod runner up (ready)", time.monotonic() - started)
    return entries[0]


def http_get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


def x509verify_binary() -> str:
    """Our Go verifier (tests/cluster/x509verify, std lib only), built once and cached."""
    return go_tool(X509VERIFY_SRC, "x509verify")


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
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), f"openssl verify -x509_strict refused the chain: {result.stdout}{result.stderr}"
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
    result = run(
        [str(VENV_BIN / "ansible"), "-i", "inventories/local", "localhost", "-m", "ansible.builtin.debug", "-a", "var=mtls_pki_dir", "-o"], timeout=120
    )
    match = re.search(r'"mtls_pki_dir":\s*"([^"]+)"', result.stdout)
    assert match, f"cannot read mtls_pki_dir from the local inventory: {result.stdout}"
    return Path(match.group(1))


@pytest.fixture(scope="module")
def site(kubeconfig_path, pki_dir) -> dict:
    """One run of playbooks/site.yml with the local inventory: what the roles write."""
    started = time.monotonic()
    run([str(VENV_BIN / "ansible-playbook"), "-i", "inventories/local", "playbooks/site.yml", "-e", f"mtls_kubeconfig={kubeconfig_path}"], timeout=900)
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


def helm_binary(tmp: Path) -> str:
    helm = CACHE_DIR / "bin" / f"helm-{HELM_VERSION}" / "helm"
    if not helm.exists():
        started = time.monotonic()
        build = tmp / "helm-build"
        result = subprocess.run(
            [
                "flock",
                "/tmp/zt-go-build.lock",
                "nice",
                "-n",
                "10",
                "go",
                "install",
                "-p",
                "2",
                "-trimpath",
                "-ldflags",
                "-s -w",
                f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}",
            ],
            env={**os.environ, "GOBIN": str(build)},
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if result.returncode != 0:
            pytest.fail(f"go install helm {HELM_VERSION} failed: {result.stderr[-2000:]}", pytrace=False)
        helm.parent.mkdir(parents=True, exist_ok=True)
        os.replace(build / "helm", helm)
        timing("helm: go install", time.monotonic() - started)
    return str(helm)


# Kinds a chart renders that the tests leave out: the API server would call the webhooks
# on a 127.200.0.x Service address and get "connection refused" (no webhook program
# runs here), and chart Jobs (cert-manager's startupapicheck) never run under kwok.
DROPPED_KINDS = {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "Job"}


class ModuleChart(NamedTuple):
    """A chart that ships inside a consumer's Go module: where it is and how it is rendered."""

    module: str
    version: str  # of the module
    chart_dir: str  # inside the module
    release: str
    namespace: str
    chart_version: str  # set in Chart.yaml, as the project's release tool does
    values: tuple[str, ...]  # helm --set


def render_module_chart(tmp: Path, chart: ModuleChart) -> list[dict]:
    """A chart from a consumer's Go module (from the Go module proxy), rendered by helm.
    The chart's version fields are set to the release (the projects' release tools do
    that); DROPPED_KINDS are left out; everything else is applied as rendered."""
    module, version, chart_dir, release, namespace, chart_version, values = chart
    helm = helm_binary(tmp)
    result = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], capture_output=True, text=True, timeout=900, cwd=tmp)
    if result.returncode != 0:
        pytest.fail(f"go mod download {module}@{version} failed: {result.stdout[-1000:]}{result.stderr[-1000:]}", pytrace=False)
    module_dir = Path(json.loads(result.stdout)["Dir"])
    chart = tmp / f"{release}-chart"
    shutil.copytree(module_dir / chart_dir, chart)
    for path in [chart, *chart.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    if not (chart / "Chart.yaml").exists() and (chart / "Chart.template.yaml").exists():
        (chart / "Chart.template.yaml").rename(chart / "Chart.yaml")  # what cert-manager's release tool does
    meta = (chart / "Chart.yaml").read_text()
    meta = re.sub(r"(?m)^version: .*$", f"version: {chart_version}", meta)
    meta = re.sub(r"(?m)^appVersion: .*$", f"appVersion: {chart_version}", meta)
    (chart / "Chart.yaml").write_text(meta)
    argv = [helm, "template", release, str(chart), "--namespace", namespace, "--kube-version", "v1.35.4"]
    for value in values:
        argv += ["--set", value]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"helm template of {module} {chart_dir} failed: {result.stderr}"
    return [d for d in yaml.safe_load_all(result.stdout) if d and d["kind"] not in DROPPED_KINDS]


def install_module_chart(request, admin_api, tmp_path_factory, consumer: str, chart: ModuleChart, check_rendered=None) -> dict:
    """A consumer deployed by its own chart once site.yml has run: the chart rendered,
    checked by check_rendered if given, and applied; returns the consumer's pod runner entry."""
    require_consumer(consumer)  # before site.yml: a missing binary fails at once
    request.getfixturevalue("site")
    started = time.monotonic()
    documents = render_module_chart(tmp_path_factory.mktemp(chart.release), chart)
    if check_rendered:
        check_rendered(documents)
    apply_documents(admin_api, documents)
    timing(f"{chart.release}: chart rendered and applied", time.monotonic() - started)
    return runner_up(consumer)


CERT_MANAGER_CHART = ModuleChart(
    module="github.com/cert-manager/cert-manager",
    version=CERT_MANAGER_VERSION,
    chart_dir="deploy/charts/cert-manager",
    release="cert-manager",
    namespace="cert-manager",
    chart_version=CERT_MANAGER_VERSION,
    values=("crds.enabled=false", "startupapicheck.enabled=false"),
)


def _check_cert_manager_chart(documents: list[dict]) -> None:
    controller = [d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "cert-manager"]
    assert controller and controller[0]["spec"]["template"]["spec"]["containers"][0]["image"].endswith(f"cert-manager-controller:{CERT_MANAGER_VERSION}")


@pytest.fixture(scope="module")
def cert_manager(request, admin_api, runner, tmp_path_factory):
    return install_module_chart(request, admin_api, tmp_path_factory, "cert-manager-controller", CERT_MANAGER_CHART, _check_cert_manager_chart)


def recreate_cluster_issuer(custom, name: str) -> None:
    """The role's ClusterIssuer, deleted and created again with the same spec and labels,
    so its Ready condition must come from the controller that runs now (not from an
    earlier run against this cluster)."""
    current = custom.get_cluster_custom_object("cert-manager.io", "v1", "clusterissuers", name)
    body = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": {"name": name, "labels": current["metadata"].get("labels") or {}},
        "spec": current["spec"],
    }
    custom.delete_cluster_custom_object("cert-manager.io", "v1", "clusterissuers", name)

    def gone():
        try:
            custom.get_cluster_custom_object("cert-manager.io", "v1", "clusterissuers", name)
            return False
        except ApiException as error:
            return error.status == 404

    wait_for(f"ClusterIssuer {name} to be deleted", gone, timeout_s=30)
    custom.create_cluster_custom_object("cert-manager.io", "v1", "clusterissuers", body)


def test_cert_manager_issues_from_the_roles_cluster_issuer(cert_manager, site, custom, core, tmp_path):
    recreate_cluster_issuer(custom, "mtls-ca")
    started = time.monotonic()
    issuer = wait_for(
        "ClusterIssuer mtls-ca to become Ready",
        lambda: (lambda obj: obj if condition(obj) == "True" else None)(custom.get_cluster_custom_object("cert-manager.io", "v1", "clusterissuers", "mtls-ca")),
        timeout_s=60,
    )
    issuer_ready_s = time.monotonic() - started
    assert issuer["spec"]["ca"]["secretName"] == "mtls-intermediate-ca"
    inventory = yaml.safe_load((CHECKOUT / "inventories/local/group_vars/all/cluster.yml").read_text())
    certificates = inventory["cert_manager_certificates"]
    assert certificates, "the local inventory lists no cert_manager_certificates"
    for spec in certificates:
        name, namespace = spec["name"], spec["namespace"]
        secret_name = spec.get("secret_name", f"{name}-tls")
        # A fresh issuance by the running controller: the Secret is deleted and must come back.
        try:
            old_uid = core.read_namespaced_secret(secret_name, namespace).metadata.uid
            core.delete_namespaced_secret(secret_name, namespace)
        except ApiException as error:
            if error.status != 404:
                raise
            old_uid = None
        wait_for(
            f"a new Secret {namespace}/{secret_name} from cert-manager",
            lambda: (lambda obj: obj.metadata.uid != old_uid and obj.data and "tls.crt" in obj.data)(core.read_namespaced_secret(secret_name, namespace)),
            timeout_s=60,
        )
        wait_for(
            f"Certificate {namespace}/{name} to become Ready",
            lambda: condition(custom.get_namespaced_custom_object("cert-manager.io", "v1", namespace, "certificates", name)) == "True",
            timeout_s=60,
        )
        secret = core.read_namespaced_secret(secret_name, namespace)
        chain = base64.b64decode(secret.data["tls.crt"]).decode()
        leaf = verify_chain(tmp_path / name, site["root_pem"], chain, uri=(spec.get("uris") or [None])[0])
        assert leaf["dns_names"] == spec["dns_names"]
        assert leaf["lifetime_seconds"] == 720 * 3600, leaf  # duration: 720h from the inventory
        assert fingerprint(base64.b64decode(secret.data["ca.crt"]).decode()) == fingerprint(site["root_pem"]), "the issued Secret's ca.crt is not our root"
    timing("cert-manager: issuer Ready, certificates issued and verified", time.monotonic() - started, issuer_ready_s=round(issuer_ready_s, 2))


def test_cert_manager_serves_certificate_expiry_metrics(cert_manager, core):
    text = wait_for(
        "certmanager_certificate_expiration_timestamp_seconds for payments-api",
        lambda: (lambda body: body if 'name="payments-api"' in body else None)(http_get(f"http://{cert_manager['pod_ip']}:9402/metrics")),
        timeout_s=60,
    )
    values = [
        v
        for labels, v in metric_values(text, "certmanager_certificate_expiration_timestamp_seconds")
        if labels.get("name") == "payments-api" and labels.get("namespace") == "zt-payments"
    ]
    assert len(values) == 1
    secret = core.read_namespaced_secret("payments-api-tls", "zt-payments")
    not_after = (
        subprocess.run(["openssl", "x509", "-noout", "-enddate"], input=base64.b64decode(secret.data["tls.crt"]), capture_output=True)
        .stdout.decode()
        .strip()
        .split("=", 1)[1]
    )
    expected = time.mktime(time.strptime(not_after, "%b %d %H:%M:%S %Y %Z")) - time.timezone
    assert abs(values[0] - expected) < 2, (values[0], expected)


# --------------------------------------------------------------------------- istiod

ISTIO_MODULE = "istio.io/istio"
ISTIO_VERSION = consumer_versions().get("ISTIO_VERSION", "v0.0.0-20260827124520-eed52ebb66ad")
CSR_CLIENT_SRC = CHECKOUT / "tests" / "cluster" / "istio-csr-client"


def go_tool(src: Path, name: str) -> str:
    """One of our small Go programs, built once per source hash and cached."""
    digest = hashlib.sha256()
    for file in sorted(p for p in src.iterdir() if p.suffix in (".go", ".mod", ".sum")):
        digest.update(file.name.encode() + file.read_bytes())
    target = CACHE_DIR / "bin" / f"{name}-{digest.hexdigest()[:12]}" / name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{name}.{os.getpid()}")
        started = time.monotonic()
        result = subprocess.run(
            ["flock", "/tmp/zt-go-build.lock", "nice", "-n", "10", "go", "build", "-p", "2", "-trimpath", "-o", str(tmp), "."],
            cwd=src,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if result.returncode != 0:
            pytest.fail(f"building {src.relative_to(CHECKOUT)} failed: {result.stderr[-2000:]}", pytrace=False)
        os.replace(tmp, target)
        timing(f"{name}: go build", time.monotonic() - started)
    return str(target)


ISTIOD_CHART = ModuleChart(
    module=ISTIO_MODULE,
    version=ISTIO_VERSION,
    chart_dir="manifests/charts/istio-control/istio-discovery",
    release="istiod",
    namespace="istio-system",
    chart_version="1.0.0",
    values=("global.hub=docker.io/istio", f"global.tag={ISTIO_VERSION}"),
)


def _check_istiod_chart(documents: list[dict]) -> None:
    assert any(d["kind"] == "Deployment" and d["metadata"]["name"] == "istiod" for d in documents)


@pytest.fixture(scope="module")
def istiod(request, admin_api, runner, tmp_path_factory):
    return install_module_chart(request, admin_api, tmp_path_factory, "istiod", ISTIOD_CHART, _check_istiod_chart)


def test_istiod_loads_the_roles_cacerts_and_publishes_our_root(istiod, site, core):
    # The log of the process that runs now (the pod runner marks each start).
    log = Path(istiod["log"]).read_text(errors="replace").rsplit("pod runner starts:", 1)[-1]
    # istiod reads its plug-in CA from ./etc/cacerts (the cacerts Secret, projected).
    assert "Use root cert from etc/cacerts/root-cert.pem" in log, "istiod did not load the plug-in CA from cacerts"
    root = fingerprint(site["root_pem"])
    # istiod leaves out kube-public and kube-node-lease (seen here; istio's
    # pkg/kube/inject.IgnoredNamespaces lists them); every other namespace gets the root.
    skipped = {"kube-public", "kube-node-lease"}
    namespaces: list[str] = []

    def published():
        namespaces[:] = [ns.metadata.name for ns in core.list_namespace().items if ns.status.phase == "Active" and ns.metadata.name not in skipped]
        missing = []
        for namespace in namespaces:
            try:
                config_map = core.read_namespaced_config_map("istio-ca-root-cert", namespace)
            except ApiException as error:
                if error.status == 404:
                    missing.append(namespace)
                    continue
                raise
            if fingerprint(config_map.data["root-cert.pem"]) != root:
                missing.append(f"{namespace} (other root)")
        return not missing or None

    # istiod must (re)publish: remove the copies of two namespaces first.
    delete_config_maps(core, "istio-ca-root-cert", ("zt-payments", "zt-shop"))
    started = time.monotonic()
    wait_for("istio-ca-root-cert with our root in every namespace", published, timeout_s=60)
    assert {"istio-system", "zt-payments", "zt-shop", "default"} <= set(namespaces)
    timing("istiod: istio-ca-root-cert in every namespace", time.monotonic() - started, namespaces=len(namespaces))


def request_certificate(istiod: dict, root: Path, token: Path, spiffe: str, out: Path, *options: str) -> subprocess.CompletedProcess:
    """istio-csr-client: a CSR for spiffe to istiod's CA port (15012) with token, trusting root; PEM files land in out."""
    client_binary = go_tool(CSR_CLIENT_SRC, "istio-csr-client")
    return subprocess.run(
        [client_binary, "-addr", f"{istiod['pod_ip']}:15012", "-root", str(root), "-token", str(token), "-spiffe", spiffe, "-out", str(out), *options],
        capture_output=True,
        text=True,
        timeout=60,
    )


def workload_certificate(istiod: dict, core, admin_api, root_pem: str, namespace: str, account: str, out: Path) -> dict:
    """A certificate from istiod's CA for namespace/account, requested with a real token."""
    try:
        core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    except ApiException as error:
        if error.status != 409:
            raise
    token = core.create_namespaced_service_account_token(account, namespace, {"spec": {"audiences": ["istio-ca"], "expirationSeconds": 600}}).status.token
    out.mkdir(parents=True, exist_ok=True)
    (out / "token").write_text(token)
    (out / "trust.pem").write_text(root_pem)
    spiffe = f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{account}"
    result = request_certificate(istiod, out / "trust.pem", out / "token", spiffe, out, "-ttl", "1h")
    assert result.returncode == 0, f"istiod refused the CSR of {spiffe}: {result.stderr}"
    return {"spiffe": spiffe, "dir": out}


def test_istiod_signs_workload_csrs_that_complete_mutual_tls(istiod, site, core, admin_api, tmp_path):
    started = time.monotonic()
    server = workload_certificate(istiod, core, admin_api, site["root_pem"], "zt-payments", "api", tmp_path / "api")
    client_ = workload_certificate(istiod, core, admin_api, site["root_pem"], "zt-shop", "frontend", tmp_path / "frontend")
    csr_s = time.monotonic() - started
    for workload in (server, client_):
        chain = (workload["dir"] / "cert-chain.pem").read_text()
        leaf = verify_chain(workload["dir"] / "verify", site["root_pem"], chain, uri=workload["spiffe"])
        assert leaf["uris"] == [workload["spiffe"]]
        assert leaf["chain"][-1].startswith("CN=zerotrust.mtls local root CA"), leaf["chain"]
        assert fingerprint(split_pem(chain)[1]) == fingerprint(site["intermediate_pem"]), "istiod did not sign with the role's intermediate (cacerts)"
    # istiod takes the identity from the token, not from the CSR: a CSR for frontend's ID
    # sent with api's token comes back as api (and never as frontend).
    other = core.create_namespaced_service_account_token("api", "zt-payments", {"spec": {"audiences": ["istio-ca"], "expirationSeconds": 600}}).status.token
    (tmp_path / "other-token").write_text(other)
    result = request_certificate(istiod, server["dir"] / "trust.pem", tmp_path / "other-token", client_["spiffe"], tmp_path / "mismatch")
    if result.returncode == 0:
        leaf = verify_chain(tmp_path / "mismatch-verify", site["root_pem"], (tmp_path / "mismatch" / "cert-chain.pem").read_text())
        assert leaf["uris"] == [server["spiffe"]], f"istiod signed an identity the token does not prove: {leaf}"
    # A token for another audience is refused.
    wrong = core.create_namespaced_service_account_token(
        "frontend", "zt-shop", {"spec": {"audiences": ["not-istio-ca"], "expirationSeconds": 600}}
    ).status.token
    (tmp_path / "wrong-audience").write_text(wrong)
    result = request_certificate(istiod, server["dir"] / "trust.pem", tmp_path / "wrong-audience", client_["spiffe"], tmp_path / "refused")
    assert result.returncode != 0 and "Unauthenticated" in result.stderr, f"istiod accepted a token for another audience: {result.stdout}{result.stderr}"

    seen = mutual_tls(server["dir"], client_["dir"], site["root_pem"], tmp_path)
    assert seen["server_saw"] == client_["spiffe"] and seen["client_saw"] == server["spiffe"], seen
    timing("istiod: two workload CSRs signed, verified, mutual TLS", time.monotonic() - started, csr_s=round(csr_s, 2))


def spiffe_of(peer: dict) -> str | None:
    return next((value for kind, value in peer.get("subjectAltName", ()) if kind == "URI"), None)


def mutual_tls(server_dir: Path, client_dir: Path, root_pem: str, tmp: Path) -> dict:
    """A real TLS 1.3 handshake, both sides presenting istiod-issued certificates."""
    (tmp / "roots.pem").write_text(root_pem)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(server_dir / "cert-chain.pem", server_dir / "key.pem")
    server_ctx.load_verify_locations(tmp / "roots.pem")
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_cert_chain(client_dir / "cert-chain.pem", client_dir / "key.pem")
    client_ctx.load_verify_locations(tmp / "roots.pem")
    client_ctx.check_hostname = False  # SPIFFE identities, checked below as Istio does
    seen: dict = {}
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve():
        connection, _ = listener.accept()
        with server_ctx.wrap_socket(connection, server_side=True) as tls:
            seen["server_saw"] = spiffe_of(tls.getpeercert())
            tls.sendall(tls.recv(64).upper())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with socket.create_connection(listener.getsockname(), timeout=10) as raw:
        with client_ctx.wrap_socket(raw) as tls:
            seen["client_saw"] = spiffe_of(tls.getpeercert())
            seen["version"] = tls.version()
            tls.sendall(b"ping")
            seen["echo"] = tls.recv(64)
    thread.join(10)
    listener.close()
    assert seen["echo"] == b"PING"
    return seen


# --------------------------------------------------------------------------- istiod and the CRL (issue 13)

CRL_PEM = re.compile(r"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----\n?", re.S)
CRL_PROBES = ("zt-crl-probe-1", "zt-crl-probe-2")
CRL_RECORD_CONFIGMAP = "zt-consumer-crl-record"  # revoke.yml's run record, kept off the estate's
# What istiod logs when it cannot use ca-crl.pem (pilot/pkg/bootstrap/istio_ca.go and
# security/pkg/pki/util/keycertbundle.go of the pinned istio module).
ISTIOD_CRL_ERRORS = (
    "failed to read CRL file",
    "failed reading crl file",
    "Failed to update new Plug-in CA certs",
    "missing CRL signed by",
    "failed to parse CRL",
    "unable to determine signing file format",
    "failed to create an istiod CA",
)
CRL_PROBE_PLAYBOOK = """
- name: Throw-away client certificates under the copied intermediate, to be revoked
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Their directory
      ansible.builtin.file:
        path: "{{ ca_dir }}/clients"
        state: directory
        mode: "0755"
    - name: The probes
      zerotrust.mtls.mtls_cert:
        ca_cert_path: "{{ ca_dir }}/ca.crt"
        ca_key_path: "{{ ca_dir }}/ca.key"
        ca_key_passphrase: "{{ mtls_intermediate_key_passphrase }}"
        dest_dir: "{{ ca_dir }}/clients"
        certs: "{{ probes | map('community.general.dict_kv', 'name') | list }}"
        usage: client
        valid_for: 1d
"""


def istiod_entries() -> list[dict]:
    return [
        c for c in json.loads(pod_runner("status", "--json").stdout).get("containers", []) if c["consumer"] == "istiod" and c["namespace"] == "istio-system"
    ]


def restart_istiod(core, istiod: dict) -> dict:
    """Deletes istiod's pod as an operator would; the ReplicaSet makes a new one, which the
    pod runner starts. Waits until the old process is gone and the new one is ready, and
    updates the fixture's entry in place (its pod IP and log change)."""
    old = istiod["pod"]
    core.delete_namespaced_pod(old, "istio-system")
    entries = wait_for(
        f"a new istiod pod ready and {old} gone",
        lambda: (lambda found: found if found and all(c["pod"] != old for c in found) and all(c["state"] == "ready" for c in found) else None)(
            istiod_entries()
        ),
        timeout_s=150,
        interval_s=1,
    )
    istiod.update(entries[0])
    return istiod


def current_log(entry: dict) -> str:
    """The log of the process that runs now (the pod runner marks each start)."""
    return Path(entry["log"]).read_text(errors="replace").rsplit("pod runner starts:", 1)[-1]


def crl_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if any(error in line for error in ISTIOD_CRL_ERRORS)]


def published_crl(core, namespace: str) -> str | None:
    """istiod's istio-ca-crl ConfigMap of a namespace (None: not there)."""
    try:
        return (core.read_namespaced_config_map("istio-ca-crl", namespace).data or {}).get("ca-crl.pem")
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def crl_of(bundle: str, issuer_pem: str) -> dict:
    """The CRL of one CA in a PEM bundle of CRLs, its signature checked with the cryptography
    library: CRL number and revoked serials."""
    issuer = x509.load_pem_x509_certificate(issuer_pem.encode())
    for pem in CRL_PEM.findall(bundle):
        crl = x509.load_pem_x509_crl(pem.encode())
        if crl.issuer == issuer.subject:
            assert crl.is_signature_valid(issuer.public_key()), f"the CRL of {issuer.subject.rfc4514_string()} does not verify against its CA"
            number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
            return {"number": number, "serials": {entry.serial_number for entry in crl}}
    pytest.fail(f"no CRL of {issuer.subject.rfc4514_string()} in the bundle:\n{bundle}", pytrace=False)


def run_revoke(kubeconfig: str, pki: Path, names: list[str], tmp: Path) -> None:
    """playbooks/revoke.yml as an operator runs it, on the throw-away PKI. The edge Secrets of
    ingress_mtls are left out (mtls_ingress_enabled false: their CRL is proven by the nginx
    handshakes) and the run is recorded in a ConfigMap of its own; the probes are in no
    inventory list, so no client Secret is removed."""
    extra = {
        "mtls_pki_dir": str(pki),
        "mtls_kubeconfig": kubeconfig,
        "mtls_revoke": names,
        "mtls_ingress_enabled": False,
        "mtls_rotation_record_configmap": CRL_RECORD_CONFIGMAP,
    }
    (tmp / "revoke-vars.json").write_text(json.dumps(extra))
    run([str(VENV_BIN / "ansible-playbook"), "-i", "inventories/local", "playbooks/revoke.yml", "-e", f"@{tmp / 'revoke-vars.json'}"], timeout=300)


def test_istiod_loads_and_publishes_the_crl_that_revoke_yml_delivers_in_cacerts(istiod, site, core, admin_api, kubeconfig_path, pki_dir, tmp_path):
    """istiod (PILOT_ENABLE_CA_CRL, on by default) loads the ca-crl.pem that playbooks/revoke.yml
    delivers in cacerts, at start-up and through its file watch, and publishes it unchanged.

    The PKI is a throw-away copy of the inventory's root and cluster intermediate (same keys,
    so cacerts keeps the CA the running istiod already has), with two throw-away client
    certificates to revoke. At start-up istiod reads ./etc/cacerts/ca-crl.pem ("Detected CRL
    file"), requires a CRL signed by every certificate of cert-chain.pem (intermediate and
    root: chain.crl holds both) and would refuse to start otherwise; it copies the file's bytes
    into the istio-ca-crl ConfigMap of every namespace. On a change of the directory it rereads
    the files, logs "Updating CRL data" and republishes; a CRL that does not verify there is
    only a log line ("Failed to update new Plug-in CA certs"), hence the log checks. An empty or
    absent ca-crl.pem never clears a CRL istiod has loaded (istio/istio#61073): the restore
    at the end restarts istiod after putting cacerts back, so the ConfigMaps are empty again.
    """
    started = time.monotonic()
    original = core.read_namespaced_secret("cacerts", "istio-system")
    pki = tmp_path / "pki"
    for sub in ("root", "clusters/local", "trust"):  # the CAs and trust bundle, not their leaves
        src = pki_dir / sub
        if not src.exists():
            continue
        shutil.copytree(
            src,
            pki / sub,
            symlinks=True,
            ignore=lambda d, names, src=src: [n for n in names if Path(d) == src and not n.startswith("..") and (Path(d) / n).is_dir()],
        )
    ca_dir = pki / "clusters" / "local"
    (tmp_path / "probes.yml").write_text(CRL_PROBE_PLAYBOOK)
    run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            "inventories/local",
            str(tmp_path / "probes.yml"),
            "-e",
            json.dumps({"ca_dir": str(ca_dir), "probes": list(CRL_PROBES)}),
        ],
        timeout=120,
    )
    serials = {name: x509.load_pem_x509_certificate((ca_dir / "clients" / f"{name}.crt").read_bytes()).serial_number for name in CRL_PROBES}
    intermediate_pem, root_pem = site["intermediate_pem"], site["root_pem"]
    assert (ca_dir / "ca.crt").read_text() == intermediate_pem

    def delivered() -> str:
        """cacerts' ca-crl.pem: the CRLs revoke.yml assembled beside the CA (trust-active.crl,
        the roots' and this intermediate's, when the ca role keeps trust files, else chain.crl)."""
        data = core.read_namespaced_secret("cacerts", "istio-system").data or {}
        assert "ca-crl.pem" in data, f"revoke.yml delivered no ca-crl.pem in cacerts: {sorted(data)}"
        crl = base64.b64decode(data["ca-crl.pem"]).decode()
        source = next(p for p in (ca_dir / "trust-active.crl", ca_dir / "chain.crl") if p.exists())
        assert crl.strip() == source.read_text().strip(), f"cacerts' ca-crl.pem is not {source.name}"
        return crl

    try:
        # 1. The first revocation, then istiod started from that cacerts.
        run_revoke(kubeconfig_path, pki, [CRL_PROBES[0]], tmp_path)
        first = delivered()
        first_view = crl_of(first, intermediate_pem)
        assert first_view["serials"] == {serials[CRL_PROBES[0]]}, first_view
        crl_of(first, root_pem)  # the root's CRL is there too, and verifies
        revoked_s = time.monotonic() - started
        entry = restart_istiod(core, istiod)
        restart_s = time.monotonic() - started - revoked_s
        # The ConfigMaps must come from the istiod that runs now: remove two, they come back.
        delete_config_maps(core, "istio-ca-crl", ("zt-payments", "zt-shop"))
        for namespace in ("zt-payments", "zt-shop"):
            wait_for(f"istio-ca-crl in {namespace} with the delivered CRL", lambda: published_crl(core, namespace) == first, timeout_s=60)
        published = published_crl(core, "zt-payments")
        assert crl_of(published, intermediate_pem) == first_view
        log = current_log(entry)
        assert "Use root cert from etc/cacerts/root-cert.pem" in log and "Detected CRL file" in log, "istiod did not start from cacerts with its ca-crl.pem"
        assert not crl_errors(log), f"istiod logged CRL errors: {crl_errors(log)}"

        # 2. A second revocation reaches the running istiod through its watch of ./etc/cacerts.
        changed_at = time.monotonic()
        run_revoke(kubeconfig_path, pki, [CRL_PROBES[1]], tmp_path)
        second = delivered()
        second_view = crl_of(second, intermediate_pem)
        assert second_view["number"] > first_view["number"], (first_view, second_view)
        assert second_view["serials"] == set(serials.values()), second_view
        wait_for("istio-ca-crl in zt-payments with the second CRL", lambda: published_crl(core, "zt-payments") == second, timeout_s=60)
        watch_s = time.monotonic() - changed_at
        assert crl_of(published_crl(core, "zt-shop"), intermediate_pem) == second_view
        now = next(c for c in istiod_entries() if c["key"] == entry["key"])
        assert now["pid"] == entry["pid"] and now["restarts"] == 0, "istiod was restarted, not updated"
        log = current_log(entry)
        assert "Updating CRL data" in log and "updated its CRL accordingly" in log, "istiod did not reload ca-crl.pem after the second delivery"
        assert not crl_errors(log), f"istiod logged CRL errors: {crl_errors(log)}"
        timing(
            "istiod: CRL from revoke.yml loaded at start-up and reloaded on change",
            time.monotonic() - started,
            revoke_s=round(revoked_s, 2),
            restart_s=round(restart_s, 2),
            watch_s=round(watch_s, 2),
            crl_numbers=[first_view["number"], second_view["number"]],
        )
    finally:
        # Put cacerts back as the istio_mtls role wrote it (its own field manager, so the CRL
        # key it does not own goes away), drop the run record, and restart istiod: it keeps a
        # CRL it has loaded until it restarts.
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": original.type,
            "data": original.data,
            "metadata": {"name": "cacerts", "namespace": "istio-system", "labels": original.metadata.labels or {}},
        }
        if original.metadata.annotations:
            body["metadata"]["annotations"] = original.metadata.annotations
        DynamicClient(admin_api).resources.get(api_version="v1", kind="Secret").server_side_apply(
            body=body, name="cacerts", namespace="istio-system", field_manager="zerotrust.mtls", force_conflicts=True
        )
        delete_config_maps(core, CRL_RECORD_CONFIGMAP, ["mtls-system"])
        assert core.read_namespaced_secret("cacerts", "istio-system").data == original.data
        restart_istiod(core, istiod)
        restored = base64.b64decode(original.data["ca-crl.pem"]).decode() if "ca-crl.pem" in original.data else ""
        wait_for("istio-ca-crl in zt-payments as before the test", lambda: published_crl(core, "zt-payments") == restored, timeout_s=60)


# --------------------------------------------------------------------------- trust-manager

TRUST_MANAGER_VERSION = consumer_versions().get("TRUST_MANAGER_VERSION", "v0.25.0")


# Test-only values: helm makes the webhook's serving certificate (no cert-manager needed
# for it), and the default CA package is off (its init container image has no local
# program). The trust namespace is the chart's default, cert-manager, where the
# cert_manager role writes the Bundle's source ConfigMap.
TRUST_MANAGER_CHART = ModuleChart(
    module="github.com/cert-manager/trust-manager",
    version=TRUST_MANAGER_VERSION,
    chart_dir="deploy/charts/trust-manager",
    release="trust-manager",
    namespace="cert-manager",
    chart_version=TRUST_MANAGER_VERSION,
    values=("crds.enabled=false", "app.webhook.tls.helmCert.enabled=true", "defaultPackage.enabled=false"),
)


@pytest.fixture(scope="module")
def trust_manager(request, admin_api, runner, tmp_path_factory):
    return install_module_chart(request, admin_api, tmp_path_factory, "trust-manager", TRUST_MANAGER_CHART)


def test_trust_manager_delivers_the_roles_bundle_to_every_target_namespace(trust_manager, site, core, custom):
    started = time.monotonic()
    inventory = yaml.safe_load((CHECKOUT / "inventories/local/group_vars/all/cluster.yml").read_text())
    labels = inventory["cert_manager_trust_bundle_namespace_labels"]
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    wait_for(
        "Bundle mtls-trust-bundle to be Synced",
        lambda: condition(custom.get_cluster_custom_object("trust.cert-manager.io", "v1alpha1", "bundles", "mtls-trust-bundle"), "Synced") == "True",
        timeout_s=60,
    )
    targets = [ns.metadata.name for ns in core.list_namespace(label_selector=selector).items if ns.status.phase == "Active"]
    assert {"zt-payments", "zt-shop"} <= set(targets), targets
    delete_config_maps(core, "mtls-trust-bundle", targets)  # trust-manager must write them again
    root = fingerprint(site["root_pem"])

    def delivered():
        for namespace in targets:
            try:
                data = core.read_namespaced_config_map("mtls-trust-bundle", namespace).data or {}
            except ApiException as error:
                if error.status == 404:
                    return None
                raise
            bundle = data.get("ca.crt", "")
            if root not in {fingerprint(pem) for pem in split_pem(bundle)}:
                return None
        return True

    wait_for(f"the bundle with our root in {targets}", delivered, timeout_s=60)
    # zt-legacy is not labelled istio-injection=enabled: trust-manager leaves it alone.
    with pytest.raises(ApiException) as error:
        core.read_namespaced_config_map("mtls-trust-bundle", "zt-legacy")
    assert error.value.status == 404
    timing("trust-manager: bundle in every target namespace", time.monotonic() - started, targets=len(targets))


# --------------------------------------------------------------------------- SPIRE


@pytest.fixture(scope="module")
def spire_server(request, runner):
    binary = require_consumer("spire-server")
    request.getfixturevalue("site")  # the spire role templates the StatefulSet, server.conf and upstream Secret
    result = pod_runner("up", "--only", "spire-server", "--timeout", "120", timeout=200)
    if result.returncode != 0 and "path length constraint" in result.stderr:
        pytest.fail(
            "the SPIRE server refuses the spire role's upstream Secret: the ca role's cluster intermediate "
            "has pathlen:0, but SPIRE's disk UpstreamAuthority mints its own CA below it (root -> "
            "intermediate -> SPIRE CA -> SVID needs pathlen >= 1 on the intermediate and >= 2 on the root); "
            "the server log says: " + re.findall(r"error=\"([^\"]+path length[^\"]*)\"", result.stderr)[-1],
            pytrace=False,
        )
    entry = runner_up("spire-server", timeout=120)
    entry["binary"] = binary
    entry["socket"] = str(Path(entry["pod_dir"]) / "c" / "spire-server" / "tmp" / "spire-server" / "private" / "api.sock")
    return entry


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_spire_server_mints_svids_under_our_root_with_the_inventorys_ttls(spire_server, site, core, tmp_path):
    started = time.monotonic()
    cluster_vars = yaml.safe_load((CHECKOUT / "inventories/local/group_vars/all/cluster.yml").read_text())
    x509_ttl = {"1h": 3600}.get(cluster_vars.get("spire_default_x509_svid_ttl", "1h"), 3600)
    jwt_ttl = {"5m": 300}.get(cluster_vars.get("spire_default_jwt_svid_ttl", "5m"), 300)
    spiffe = f"spiffe://{TRUST_DOMAIN}/ns/zt-payments/sa/api"
    out = tmp_path / "svid"
    out.mkdir()
    result = subprocess.run(
        [spire_server["binary"], "x509", "mint", "-socketPath", spire_server["socket"], "-spiffeID", spiffe, "-write", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"spire-server x509 mint failed: {result.stdout}{result.stderr}"
    chain = (out / "svid.pem").read_text()
    leaf = verify_chain(tmp_path / "verify", site["root_pem"], chain, uri=spiffe)
    # SPIRE backdates NotBefore by 10 s (clock skew), so the lifetime is the TTL plus that.
    assert x509_ttl <= leaf["lifetime_seconds"] <= x509_ttl + 10, leaf
    assert fingerprint(site["root_pem"]) in {fingerprint(p) for p in split_pem((out / "bundle.pem").read_text())}
    result = subprocess.run(
        [spire_server["binary"], "jwt", "mint", "-socketPath", spire_server["socket"], "-spiffeID", spiffe, "-audience", "zt-consumer-test"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"spire-server jwt mint failed: {result.stdout}{result.stderr}"
    claims = jwt_claims(result.stdout.strip().split()[-1])
    assert claims["sub"] == spiffe and claims["aud"] in (["zt-consumer-test"], "zt-consumer-test"), claims
    assert claims["exp"] - claims["iat"] == jwt_ttl, claims
    timing("spire: X.509 and JWT SVIDs minted and verified", time.monotonic() - started)


def test_spire_k8sbundle_notifier_writes_our_root(spire_server, site, core):
    root = fingerprint(site["root_pem"])
    wait_for(
        "the spire-bundle ConfigMap with our root",
        lambda: root in {fingerprint(p) for p in split_pem((core.read_namespaced_config_map("spire-bundle", "spire").data or {}).get("bundle.crt", ""))},
        timeout_s=60,
    )
    state = json.loads(pod_runner("status", "--json").stdout)
    server = next(c for c in state["containers"] if c["consumer"] == "spire-server")
    assert server["state"] == "ready" and server["restarts"] == 0, f"the SPIRE server did not stay healthy: {server}"


# --------------------------------------------------------------------------- exporter

EXPORTER_NAMESPACE = "zt-consumer-monitoring"
EXPORTER_NAME = "zt-consumer-exporter"
EXPORTER_PLAYBOOK = """
- name: The cert_exporter role as the consumer test installs it
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Namespaces the role expects
      kubernetes.core.k8s:
        kubeconfig: "{{ kc }}"
        definition: {apiVersion: v1, kind: Namespace, metadata: {name: "{{ item }}"}}
      loop: ["%(namespace)s", mtls-system]
    - name: The exporter
      ansible.builtin.include_role:
        name: zerotrust.mtls.cert_exporter
      vars:
        cert_exporter_kubeconfig: "{{ kc }}"
        cert_exporter_namespace: "%(namespace)s"
        cert_exporter_name: "%(name)s"
        cert_exporter_watch_namespaces: [zt-payments, istio-system]
        cert_exporter_rotation_configmap: ""
        cert_exporter_trust_bundle_pem: "{{ lookup('ansible.builtin.file', trust_file) }}"
        cert_exporter_extra_args: ["--file-poll-interval=2"]
""" % {"namespace": EXPORTER_NAMESPACE, "name": EXPORTER_NAME}


def run_exporter_role(kubeconfig: str, tmp: Path, trust_pem: str) -> None:
    (tmp / "exporter.yml").write_text(EXPORTER_PLAYBOOK)
    (tmp / "trust.pem").write_text(trust_pem)
    run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            "inventories/local",
            str(tmp / "exporter.yml"),
            "-e",
            f"kc={kubeconfig}",
            "-e",
            f"trust_file={tmp / 'trust.pem'}",
        ],
        timeout=300,
    )


def anchors(pod_ip: str) -> tuple[str, int] | None:
    """(bundle fingerprint, number of certificates) of the exporter's --trust-bundle file."""
    text = http_get(f"http://{pod_ip}:9793/metrics")
    samples = metric_values(text, "mtls_trust_anchors")
    return (samples[0][0]["fingerprint"], int(samples[0][1])) if len(samples) == 1 else None


@pytest.fixture(scope="module")
def exporter(request, kubeconfig_path, runner, tmp_path_factory):
    site = request.getfixturevalue("site")
    tmp = tmp_path_factory.mktemp("exporter")
    started = time.monotonic()
    run_exporter_role(kubeconfig_path, tmp, site["root_pem"])
    timing("exporter: cert_exporter role", time.monotonic() - started)
    entry = runner_up("mtls-exporter", namespace=EXPORTER_NAMESPACE)
    entry["tmp"] = tmp
    return entry


def test_exporter_serves_metrics_within_the_roles_rbac(exporter, site, core):
    entry = next(
        c for c in json.loads(pod_runner("status", "--json").stdout)["containers"] if c["namespace"] == EXPORTER_NAMESPACE and c["consumer"] == "mtls-exporter"
    )
    text = wait_for(
        "the exporter's metrics for the watched namespaces",
        lambda: (lambda body: body if 'secret_name="cacerts"' in body else None)(http_get(f"http://{entry['pod_ip']}:9793/metrics")),
        timeout_s=60,
    )
    namespaces = {labels.get("secret_namespace") or labels.get("configmap_namespace") for labels, _ in metric_values(text, "x509_cert_not_after")} - {
        None
    }  # None: the trust file
    assert {"istio-system"} <= namespaces <= {"zt-payments", "istio-system"}, namespaces
    # The program runs with the role's service account: the pod runner's kubeconfig for
    # this pod carries a TokenRequest token of EXPORTER_NAMESPACE/EXPORTER_NAME.
    token = (Path(entry["pod_dir"]) / "serviceaccount.token").read_text()
    review = client.AuthenticationV1Api(core.api_client).create_token_review({"spec": {"token": token}})
    assert review.status.user.username == f"system:serviceaccount:{EXPORTER_NAMESPACE}:{EXPORTER_NAME}"
    api = Path(CLUSTER_DIR / "ports.env").read_text()
    port = re.search(r"MTLS_APISERVER_PORT=(\d+)", api).group(1)
    context = ssl.create_default_context(cafile=str(CLUSTER_DIR / "pki" / "ca.crt"))

    def status_of(path: str) -> int:
        request = urllib.request.Request(f"https://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    assert status_of("/api/v1/namespaces/zt-payments/secrets") == 200
    assert status_of("/api/v1/namespaces/istio-system/configmaps") == 200
    assert status_of("/api/v1/namespaces/zt-shop/secrets") == 403  # not a watched namespace
    assert status_of("/api/v1/secrets") == 403  # nothing cluster-wide
    assert status_of("/api/v1/namespaces/zt-payments/pods") == 403  # Secrets and ConfigMaps only


def test_a_role_change_reaches_the_running_exporter(exporter, site, kubeconfig_path):
    """The role rewrites its trust-bundle ConfigMap; the pod runner's ..data swap brings it
    to the running exporter (--trust-bundle, a mounted file), without a restart."""
    entry = next(
        c for c in json.loads(pod_runner("status", "--json").stdout)["containers"] if c["namespace"] == EXPORTER_NAMESPACE and c["consumer"] == "mtls-exporter"
    )
    before = wait_for(
        "the exporter's trust anchor from the role", lambda: (lambda value: value if value and value[1] == 1 else None)(anchors(entry["pod_ip"])), timeout_s=60
    )
    started = time.monotonic()
    run_exporter_role(kubeconfig_path, exporter["tmp"], site["root_pem"] + site["intermediate_pem"])
    after_change = wait_for(
        "the exporter to see the role's new trust bundle (2 certificates)",
        lambda: (lambda value: value if value and value[1] == 2 else None)(anchors(entry["pod_ip"])),
        timeout_s=60,
    )
    assert after_change[0] != before[0]
    timing("exporter: role change reached the running program", time.monotonic() - started)
    after = next(c for c in json.loads(pod_runner("status", "--json").stdout)["containers"] if c["key"] == entry["key"])
    assert after["pid"] == entry["pid"] and after["restarts"] == 0, "the exporter was restarted, not updated"
    volume = Path(entry["pod_dir"]) / "volumes" / "trust-bundle"
    assert (volume / "..data").is_symlink() and os.readlink(volume / "ca.crt") == "..data/ca.crt"

"""The Grafana dashboard: valid JSON, valid PromQL, and only metrics that exist."""

from __future__ import annotations

import datetime
import json
import re
import subprocess

import yaml

from cluster_helpers import REPO_ROOT
from conftest import b64, pem, secret_json
from mtls_exporter import certs, chains
from mtls_exporter.collector import RotationState
from mtls_exporter.objects import KeySelection, strip_configmap, strip_secret
from mtls_exporter.store import CertificateStore
from test_collector import scrape

DASHBOARD = REPO_ROOT / "roles" / "cert_exporter" / "files" / "dashboard.json"
ISTIO_METRICS = {"istio_requests_total", "istio_tcp_connections_opened_total"}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def exported_metric_names(root_ca) -> set[str]:
    store = CertificateStore(chains.TrustAnchors(certs.parse_pem_bundle(root_ca.pem)))
    certificate, _unused = root_ca.issue("x.svc")
    store.upsert(strip_secret(secret_json("a", "x", {"tls.crt": b64(pem(certificate))}), KeySelection()), "w")
    store.upsert(
        strip_configmap(
            {"metadata": {"namespace": "a", "name": "istio-ca-root-cert", "uid": "u", "resourceVersion": "1"}, "data": {"root-cert.pem": root_ca.pem.decode()}},
            KeySelection(),
        ),
        "w",
    )
    store.count_error("kubernetes", "secrets", "bad_pem")
    # A CRL, so the x509_crl_* families exist too.
    from test_crl import crl_pem

    now = datetime.datetime.now(datetime.timezone.utc)
    crl = crl_pem(root_ca, 1, now - datetime.timedelta(days=1), now + datetime.timedelta(days=1))
    store.upsert(strip_secret(secret_json("a", "edge", {"ca.crl": b64(crl)}, secret_type="Opaque"), KeySelection()), "w")
    rotation = RotationState()
    rotation.replace({"r.last_success": "1", "r.last_failure": "2", "r.failures_total": "1"})
    return set(scrape(store, rotation=rotation))


def test_dashboard_queries_use_existing_metrics(root_ca):
    known = exported_metric_names(root_ca) | ISTIO_METRICS
    referenced = {name for expr in dashboard_exprs() for name in re.findall(r"\b((?:x509|mtls|istio)_[a-zA-Z0-9_]+)", expr)}
    assert referenced, "no metric found in the dashboard"
    assert referenced <= known, referenced - known


def test_dashboard_queries_are_valid_promql(promtool, tmp_path):
    # Grafana variables replaced by what they expand to, then every query checked by
    # promtool as a recording rule expression.
    rules = [
        {"record": f"dashboard:query:{index}", "expr": expr.replace("$__rate_interval", "5m").replace("$namespace", ".*")}
        for index, expr in enumerate(dashboard_exprs())
    ]
    (tmp_path / "dashboard-queries.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", "dashboard-queries.yml"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout

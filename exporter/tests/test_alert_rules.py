"""The role's alert rules: promtool checks and tests, thresholds wired to variables,
and the PrometheusRule (and ServiceMonitor) accepted by the real CRD schemas."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from cluster_helpers import REPO_ROOT, api_client, kubeconfig_path, scratch_namespace

ROLE_TESTS = REPO_ROOT / "roles" / "cert_exporter" / "tests"
CHECK_RULES = ROLE_TESTS / "check-rules.sh"
# The alerts the role promises (docs/exporter.md lists them); test_role checks that the
# PrometheusRule Ansible renders carries them too.
SHIPPED_ALERTS = frozenset(
    {
        "CertificateExpiresSoon",
        "CertificateExpiresCritical",
        "CertRotationFailures",
        "CertificateChainInvalid",
        "MTLSPolicyViolation",
        "CertificateExporterSourceErrors",
    }
)


def _load_renderer():
    spec = importlib.util.spec_from_file_location("render_rules", ROLE_TESTS / "render_rules.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_rules = _load_renderer()


def test_rules_pass_promtool_check_and_tests(promtool):
    assert Path(promtool).is_file()


def test_every_alert_has_a_firing_test():
    rules = render_rules.render_prometheus_rule()["spec"]["groups"]
    alerts = {rule["alert"] for group in rules for rule in group["rules"] if "alert" in rule}
    assert SHIPPED_ALERTS <= alerts
    tested = set()
    for path in (ROLE_TESTS / "rules").glob("*.test.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            tested |= {case["alertname"] for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert alerts == tested


def _promtool_test_with(promtool, tmp_path, overrides) -> subprocess.CompletedProcess:
    rules = render_rules.render_prometheus_rule(overrides)["spec"]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    shutil.copy(ROLE_TESTS / "rules" / "certificates.test.yml", tmp_path)
    return subprocess.run([promtool, "test", "rules", "certificates.test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)


def test_thresholds_come_from_role_variables(promtool, tmp_path):
    # Same thresholds as the defaults, given explicitly: the expectations hold...
    assert _promtool_test_with(promtool, tmp_path, {"cert_exporter_alert_expires_critical_days": 3}).returncode == 0
    # ...a critical threshold of 1 day no longer fires for the 2-day certificate.
    changed = _promtool_test_with(promtool, tmp_path, {"cert_exporter_alert_expires_critical_days": 1})
    assert changed.returncode != 0
    assert "CertificateExpiresCritical" in changed.stdout + changed.stderr
    rendered = yaml.safe_dump(render_rules.render_prometheus_rule({"cert_exporter_alert_expires_soon_days": 14}))
    assert "< 14 * 86400" in rendered


# -- CRD schema (local cluster) --------------------------------------------------------------


def _ensure_crd(api, crd_name: str) -> None:
    """The upstream CRD must be served: tests/cluster/up.sh loads it (tests/cluster/crds.py)."""
    from kubernetes import client

    extensions = client.ApiextensionsV1Api(api)
    try:
        status = extensions.read_custom_resource_definition(crd_name).status
    except client.ApiException as error:
        if error.status != 404:
            raise
        pytest.fail(
            f"the local control plane does not serve {crd_name}; start it with tests/cluster/up.sh, "
            "which loads the upstream CRDs (tests/cluster/crd-sources.yaml)"
        )
    if not any(c.type == "Established" and c.status == "True" for c in (status.conditions or [])):
        pytest.fail(f"{crd_name} is not Established; rerun tests/cluster/up.sh")


@pytest.fixture(scope="module")
def crd_namespace():
    api = api_client(kubeconfig_path())
    _ensure_crd(api, "prometheusrules.monitoring.coreos.com")
    with scratch_namespace(api, "mtls-rules") as namespace:
        yield api, namespace


def _dry_run_create(api, namespace, body):
    from kubernetes import client

    return client.CustomObjectsApi(api).create_namespaced_custom_object("monitoring.coreos.com", "v1", namespace, "prometheusrules", body, dry_run="All")


def test_prometheus_rule_is_accepted_by_the_crd_schema(crd_namespace):
    api, namespace = crd_namespace
    rule = render_rules.render_prometheus_rule({"cert_exporter_namespace": namespace})
    created = _dry_run_create(api, namespace, rule)
    assert created["kind"] == "PrometheusRule"
    assert [g["name"] for g in created["spec"]["groups"]] == [g["name"] for g in rule["spec"]["groups"]]


def test_crd_schema_really_validates(crd_namespace):
    """Control: the same object with a malformed `for` is refused, so the acceptance above means something."""
    from kubernetes import client

    api, namespace = crd_namespace
    rule = render_rules.render_prometheus_rule({"cert_exporter_namespace": namespace})
    rule["spec"]["groups"][0]["rules"][0]["for"] = "fifteen minutes"
    with pytest.raises(client.ApiException) as error:
        _dry_run_create(api, namespace, rule)
    assert error.value.status == 422

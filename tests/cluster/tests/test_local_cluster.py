"""The local control plane behaves like a real cluster where the collection relies on it.

Each test talks to the real kube-apiserver started by tests/cluster/up.sh.
"""

from __future__ import annotations

import ipaddress
import time
import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

SERVICE_RANGE = ipaddress.ip_network("127.200.0.0/24")
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def wait_for(description, predicate, timeout_s=60.0, interval_s=0.5):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {description} (last: {last!r})")


def test_every_address_the_cluster_hands_out_is_loopback(admin_api):
    core = client.CoreV1Api(admin_api)
    kubernetes_service = core.read_namespaced_service("kubernetes", "default")
    assert ipaddress.ip_address(kubernetes_service.spec.cluster_ip) in SERVICE_RANGE

    nodes = core.list_node().items
    assert nodes, "the cluster has no node; kwok should have registered one"
    for node in nodes:
        internal_ips = [a.address for a in node.status.addresses if a.type == "InternalIP"]
        assert internal_ips, f"node {node.metadata.name} has no InternalIP"
        for address in internal_ips:
            assert ipaddress.ip_address(address) in LOOPBACK, f"node {node.metadata.name} has InternalIP {address}"
        for cidr in node.spec.pod_cidrs or [node.spec.pod_cidr]:
            assert ipaddress.ip_network(cidr).subnet_of(LOOPBACK), f"node {node.metadata.name} has pod CIDR {cidr}"


def test_webhook_naming_a_cluster_service_fails_at_once_on_loopback(admin_api, namespace):
    core = client.CoreV1Api(admin_api)
    admission = client.AdmissionregistrationV1Api(admin_api)
    service = core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "webhook"},
            "spec": {"ports": [{"port": 443, "targetPort": 8443}], "selector": {"app": "webhook"}},
        },
    )
    cluster_ip = service.spec.cluster_ip
    assert ipaddress.ip_address(cluster_ip) in SERVICE_RANGE

    webhook_name = f"{namespace}.webhook.zerotrust.mtls"
    admission.create_validating_webhook_configuration(
        {
            "metadata": {"name": namespace},
            "webhooks": [
                {
                    "name": webhook_name,
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": "Fail",
                    "timeoutSeconds": 10,
                    # Only this test's namespace, so others using the shared cluster are unaffected.
                    "namespaceSelector": {"matchLabels": {"mtls-cluster-test": namespace}},
                    "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}],
                    "clientConfig": {"service": {"namespace": namespace, "name": "webhook", "port": 443, "path": "/validate"}},
                }
            ],
        }
    )
    try:
        # The API server picks up new webhook configurations asynchronously; until it
        # does, creates succeed, so retry with fresh names until the webhook is called.
        def create_is_refused():
            name = f"probe-{uuid.uuid4().hex[:6]}"
            started = time.monotonic()
            try:
                core.create_namespaced_config_map(namespace, {"metadata": {"name": name}})
            except ApiException as error:
                return error, time.monotonic() - started, name
            core.delete_namespaced_config_map(name, namespace)
            return None

        error, elapsed_s, name = wait_for("the webhook to be called", create_is_refused, timeout_s=30)
        assert error.status == 500, error.body
        assert webhook_name in error.body
        assert f"dial tcp {cluster_ip}:443" in error.body, error.body
        assert "connection refused" in error.body, error.body
        # Well under the webhook's 10 s timeout: refused at once, not timed out (the margin
        # is for a loaded 2-core machine, where one API round trip can take a second or two).
        assert elapsed_s < 5, f"the refused webhook call took {elapsed_s:.1f}s instead of failing at once"
        with pytest.raises(ApiException) as missing:
            core.read_namespaced_config_map(name, namespace)
        assert missing.value.status == 404
    finally:
        admission.delete_validating_webhook_configuration(namespace)


def test_deployment_with_two_replicas_becomes_available(admin_api, namespace):
    apps = client.AppsV1Api(admin_api)
    core = client.CoreV1Api(admin_api)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    # kwok never pulls images; the name only has to be valid.
                    "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]},
                },
            },
        },
    )

    def available():
        status = apps.read_namespaced_deployment_status("web", namespace).status
        conditions = {c.type: c.status for c in (status.conditions or [])}
        return status.available_replicas == 2 and conditions.get("Available") == "True"

    wait_for("Deployment web to have 2 available replicas", available, timeout_s=60)
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 2
    for pod in pods:
        assert pod.status.phase == "Running"
        assert ipaddress.ip_address(pod.status.pod_ip) in LOOPBACK
        assert ipaddress.ip_address(pod.status.host_ip) in LOOPBACK


def test_daemonset_becomes_ready_on_every_node(admin_api, namespace):
    apps = client.AppsV1Api(admin_api)
    node_count = len(client.CoreV1Api(admin_api).list_node().items)
    labels = {"app": "agent"}
    apps.create_namespaced_daemon_set(
        namespace,
        {
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "agent", "image": "registry.invalid/agent:1"}]}},
            },
        },
    )

    def ready():
        status = apps.read_namespaced_daemon_set_status("agent", namespace).status
        return status.desired_number_scheduled == node_count and status.number_ready == node_count

    wait_for(f"DaemonSet agent to be ready on {node_count} node(s)", ready, timeout_s=60)


PEER_AUTHENTICATION = {"group": "security.istio.io", "version": "v1", "plural": "peerauthentications"}


def test_istio_schema_rejects_port_level_mtls_without_selector(admin_api, namespace):
    custom = client.CustomObjectsApi(admin_api)

    def peer_authentication(name, spec):
        return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication", "metadata": {"name": name, "namespace": namespace}, "spec": spec}

    port_modes = {"portLevelMtls": {"8080": {"mode": "DISABLE"}}, "mtls": {"mode": "STRICT"}}
    with pytest.raises(ApiException) as rejected:
        custom.create_namespaced_custom_object(namespace=namespace, body=peer_authentication("no-selector", port_modes), **PEER_AUTHENTICATION)
    # A 404 here means the Istio CRDs were not loaded (up.sh loads them through tests/cluster/crds.py).
    assert rejected.value.status == 422, rejected.value.body
    assert "portLevelMtls requires selector" in rejected.value.body, rejected.value.body

    # The same spec with a selector is accepted, so the rejection above is the CEL rule.
    accepted = custom.create_namespaced_custom_object(
        namespace=namespace, body=peer_authentication("with-selector", {**port_modes, "selector": {"matchLabels": {"app": "web"}}}), **PEER_AUTHENTICATION
    )
    assert accepted["spec"]["portLevelMtls"]["8080"]["mode"] == "DISABLE"


def test_restricted_context_is_authenticated_but_forbidden(restricted_api, namespace):
    review = client.AuthenticationV1Api(restricted_api).create_self_subject_review({})
    assert review.status.user_info.username == "system:serviceaccount:default:mtls-restricted"

    core = client.CoreV1Api(restricted_api)
    with pytest.raises(ApiException) as listing:
        core.list_namespaced_secret(namespace)
    assert listing.value.status == 403
    with pytest.raises(ApiException) as creating:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "not-allowed"}})
    assert creating.value.status == 403

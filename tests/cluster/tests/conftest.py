"""Fixtures for tests that run against the real local control plane (tests/cluster/up.sh)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

CHECKOUT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def kubeconfig_path() -> str:
    path = Path(os.environ.get("MTLS_KUBECONFIG") or CHECKOUT / ".cluster" / "kubeconfig")
    if not path.is_file():
        # A failure, not a skip: these tests exist to prove the cluster works.
        pytest.fail(f"no kubeconfig at {path}; start the local cluster with tests/cluster/up.sh (or set MTLS_KUBECONFIG) and rerun", pytrace=False)
    return str(path)


@pytest.fixture(scope="session")
def admin_api(kubeconfig_path) -> client.ApiClient:
    return config.new_client_from_config(config_file=kubeconfig_path, context="admin")


@pytest.fixture(scope="session")
def restricted_api(kubeconfig_path) -> client.ApiClient:
    return config.new_client_from_config(config_file=kubeconfig_path, context="restricted")


@pytest.fixture()
def namespace(admin_api):
    """A fresh namespace per test, labelled so cluster-wide test objects can target it alone."""
    core = client.CoreV1Api(admin_api)
    name = f"mtls-cluster-test-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"mtls-cluster-test": name}}})
    yield name
    try:
        core.delete_namespace(name, propagation_policy="Foreground")
    except ApiException as error:
        if error.status != 404:
            raise

"""Access to the local control plane (tests/cluster) for the exporter's cluster tests."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_KUBECONFIG = REPO_ROOT / ".cluster" / "kubeconfig"


def kubeconfig_path() -> str:
    """The local cluster's kubeconfig; skip only when no kubeconfig file exists at all."""
    path = os.environ.get("MTLS_KUBECONFIG", str(DEFAULT_KUBECONFIG))
    if not os.path.isfile(path):
        pytest.skip(f"no kubeconfig at {path}: start the local control plane with tests/cluster/up.sh")
    return path


def api_client(path: str):
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=path, client_configuration=configuration)
    return client.ApiClient(configuration)


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def scratch_namespace(api, prefix: str):
    """A namespace of its own for one test, deleted when the test is done with it."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    namespace = unique_name(prefix)
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        yield namespace
    finally:
        core.delete_namespace(namespace)

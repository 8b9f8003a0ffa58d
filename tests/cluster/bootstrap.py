"""Configures a freshly started local control plane; called by up.sh, idempotent.

Registers the fake kwok node (loopback InternalIP and pod CIDR), creates the
ServiceAccount behind the `restricted` context, writes the user kubeconfig
(admin context as default, plus `restricted`) and server-side applies the upstream
CRD sets materialised by crds.py (tests/cluster/crd-sources.yaml), waiting until
they are Established.

Inputs come from the environment set by up.sh (MTLS_CLUSTER_DIR, MTLS_APISERVER_PORT,
MTLS_NODE_NAME, MTLS_NODE_IP, MTLS_NODE_POD_CIDR; MTLS_CACHE_DIR and MTLS_CRDS_DIR for
crds.py). Any failure ends with one sentence on stderr and exit status 1.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

import crds  # tests/cluster/crds.py, next to this file

FIELD_MANAGER = "zerotrust-mtls-local-cluster"
RESTRICTED_NAMESPACE = "default"
RESTRICTED_ACCOUNT = "mtls-restricted"
RESTRICTED_TOKEN_SECRET = "mtls-restricted-token"


class BootstrapError(Exception):
    """A failure whose message is the one sentence shown to the user."""


def wait_for(description: str, predicate, timeout_s: float = 60.0, interval_s: float = 0.25):
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise BootstrapError(f"timed out after {timeout_s:.0f}s waiting for {description}")
        time.sleep(interval_s)


def admin_client(cluster_dir: Path, port: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = f"https://127.0.0.1:{port}"
    configuration.ssl_ca_cert = str(cluster_dir / "pki" / "ca.crt")
    configuration.api_key = {"authorization": (cluster_dir / "pki" / "admin.token").read_text().strip()}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(configuration)


def ensure_fake_node(api: client.ApiClient, name: str, node_ip: str, pod_cidr: str) -> None:
    # The API server dials node addresses (logs, exec, proxy): they must never leave loopback.
    loopback = ipaddress.ip_network("127.0.0.0/8")
    for what, value in (("node IP", node_ip), ("pod CIDR", pod_cidr)):
        if not ipaddress.ip_network(value, strict=False).subnet_of(loopback):
            raise SystemExit(f"bootstrap: the {what} {value} is not on loopback (127.0.0.0/8); set it to a 127.x address in tests/cluster/lib.sh.")
    core = client.CoreV1Api(api)
    try:
        core.read_node(name)
    except ApiException as error:
        if error.status != 404:
            raise
        # No taint: this is the only node, and every workload of the tests must land on it.
        # kwok fills status (Ready, addresses from --node-ip) as soon as it sees the node.
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                },
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            },
            # The API server fills the singular field from the first of podCIDRs.
            "spec": {"podCIDRs": [pod_cidr]},
        }
        core.create_node(node)

    def node_ready():
        status = core.read_node(name).status
        return any(c.type == "Ready" and c.status == "True" for c in (status.conditions or []))

    wait_for(f"node {name} to become Ready (is kwok running? see logs/kwok.log)", node_ready)
    # kwok sets the addresses when it initialises a node, but a node that once went
    # NotReady can come back without them; the address is what keeps kubelet calls on
    # loopback, so make sure it is there.
    addresses = {a.type: a.address for a in (core.read_node(name).status.addresses or [])}
    if addresses.get("InternalIP") != node_ip:
        core.patch_node_status(name, {"status": {"addresses": [{"type": "InternalIP", "address": node_ip}, {"type": "Hostname", "address": name}]}})


def ensure_restricted_token(api: client.ApiClient) -> str:
    core = client.CoreV1Api(api)
    # The controller manager's serviceaccount controller creates `default` in each
    # namespace; pods cannot be created before it exists, so wait here once.
    wait_for(
        "the default ServiceAccount (is kube-controller-manager running?)",
        lambda: _exists(lambda: core.read_namespaced_service_account("default", RESTRICTED_NAMESPACE)),
    )
    if not _exists(lambda: core.read_namespaced_service_account(RESTRICTED_ACCOUNT, RESTRICTED_NAMESPACE)):
        core.create_namespaced_service_account(
            RESTRICTED_NAMESPACE,
            {"metadata": {"name": RESTRICTED_ACCOUNT, "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER}}},
        )
    if not _exists(lambda: core.read_namespaced_secret(RESTRICTED_TOKEN_SECRET, RESTRICTED_NAMESPACE)):
        # A long-lived token Secret rather than a TokenRequest: the kubeconfig must keep
        # working across restarts of the cluster without being rewritten.
        core.create_namespaced_secret(
            RESTRICTED_NAMESPACE,
            {
                "metadata": {
                    "name": RESTRICTED_TOKEN_SECRET,
                    "annotations": {"kubernetes.io/service-account.name": RESTRICTED_ACCOUNT},
                },
                "type": "kubernetes.io/service-account-token",
            },
        )

    def token():
        data = core.read_namespaced_secret(RESTRICTED_TOKEN_SECRET, RESTRICTED_NAMESPACE).data or {}
        return base64.b64decode(data["token"]).decode() if "token" in data else None

    return wait_for("the token of the restricted ServiceAccount (is kube-controller-manager running?)", token)


def _exists(read) -> bool:
    try:
        read()
        return True
    except ApiException as error:
        if error.status == 404:
            return False
        raise


def write_kubeconfig(path: Path, port: str, ca_pem: bytes, admin_token: str, restricted_token: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "mtls-local",
                "cluster": {
                    "server": f"https://127.0.0.1:{port}",
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [
            {"name": "mtls-admin", "user": {"token": admin_token}},
            {"name": RESTRICTED_ACCOUNT, "user": {"token": restricted_token}},
        ],
        "contexts": [
            {"name": "admin", "context": {"cluster": "mtls-local", "user": "mtls-admin"}},
            {"name": "restricted", "context": {"cluster": "mtls-local", "user": RESTRICTED_ACCOUNT, "namespace": RESTRICTED_NAMESPACE}},
        ],
        "current-context": "admin",
    }
    text = yaml.safe_dump(config, sort_keys=False)
    if path.exists() and path.read_text() == text:
        return
    # The kubeconfig holds bearer tokens: write 0600 and rename so readers never see
    # a partial file.
    fd, tmp_name = tempfile.mkstemp(prefix=".kubeconfig.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o600)
        os.replace(tmp_name, path)
    except BaseException:
        os.unlink(tmp_name)
        raise


def crd_file_key(path: Path) -> str:
    """The record key of a materialised CRD file: `<set>-<version>/<file>`."""
    return f"{path.parent.name}/{path.name}"


def load_crd_documents(crd_files: list[Path]) -> dict[str, tuple[str, list[dict]]]:
    """Maps each CRD file (by crd_file_key) to (sha256, CRD documents); other kinds are not ours to load."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    result = {}
    for path in crd_files:
        raw = path.read_bytes()
        docs = [d for d in yaml.load_all(raw, Loader=loader) if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"]
        result[crd_file_key(path)] = (hashlib.sha256(raw).hexdigest(), docs)
    return result


def established_crd_names(extensions: client.ApiextensionsV1Api) -> set[str]:
    """Names of the CRDs the API server serves.

    Parsed as plain JSON: turning megabytes of CRD schemas into client model objects
    costs seconds, and only names and conditions are needed.
    """
    response = extensions.list_custom_resource_definition(_preload_content=False)
    items = json.loads(response.data)["items"]
    return {
        item["metadata"]["name"]
        for item in items
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in (item.get("status") or {}).get("conditions") or [])
    }


def crd_versions(extensions: client.ApiextensionsV1Api) -> dict[str, str]:
    """`<uid>/<generation>` of every CRD: changes when anyone changes its spec or recreates it.

    Asked as metadata only (PartialObjectMetadataList): a few kB instead of megabytes
    of schemas, ~0.1 s instead of ~0.5 s on this machine.
    """
    response = extensions.list_custom_resource_definition(
        _preload_content=False, _headers={"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"}
    )
    return {
        item["metadata"]["name"]: f"{item['metadata']['uid']}/{item['metadata'].get('generation', 0)}" for item in json.loads(response.data)["items"] or []
    }  # null when there is no CRD


def apply_crds(api: client.ApiClient, crd_files: list[Path], record_path: Path) -> int:
    """Server-side applies the CRD files (in order) and waits until all are Established.

    The record maps each file to its sha256 and the uid/generation of each of its CRDs
    once they were Established after our apply; a file applied unchanged whose CRDs
    still have that uid and generation (nobody changed or recreated them since) is
    skipped, so warm starts parse no YAML.
    """
    extensions = client.ApiextensionsV1Api(api)
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    current_versions = crd_versions(extensions)

    # Parsing 3+ MB of YAML costs seconds; skip files already applied unchanged.
    pending = []
    for path in crd_files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        applied = record.get(crd_file_key(path)) or {}
        versions = applied.get("versions") or {}
        if applied.get("sha256") == digest and versions and all(current_versions.get(name) == version for name, version in versions.items()):
            continue
        pending.append(path)
    if not pending:
        return 0

    names_wanted, applied_now = [], {}
    for file_key, (digest, docs) in load_crd_documents(pending).items():
        names = []
        for doc in docs:
            name = doc["metadata"]["name"]
            try:
                extensions.patch_custom_resource_definition(
                    name,
                    doc,
                    field_manager=FIELD_MANAGER,
                    force=True,
                    _content_type="application/apply-patch+yaml",
                    _preload_content=False,
                )
            except ApiException as error:
                reason = _status_message(error)
                raise BootstrapError(f"the API server rejected CRD {name} from {file_key}: {reason}") from None
            names.append(name)
        applied_now[file_key] = (digest, names)
        names_wanted.extend(names)

    def all_established():
        return established_crd_names(extensions).issuperset(names_wanted)

    wait_for(f"{len(names_wanted)} CRDs to become Established", all_established, timeout_s=120)
    current_versions = crd_versions(extensions)
    for file_key, (digest, names) in applied_now.items():
        record[file_key] = {"sha256": digest, "versions": {name: current_versions.get(name) for name in names}}
    # Entries of files no longer in any set are dropped (they would never be pruned otherwise).
    current = {crd_file_key(path) for path in crd_files}
    record = {key: value for key, value in record.items() if key in current}
    record_path.write_text(json.dumps(record, indent=1, sort_keys=True))
    return len(names_wanted)


def _status_message(error: ApiException) -> str:
    try:
        return json.loads(error.body)["message"]
    except (TypeError, ValueError, KeyError):
        return f"HTTP {error.status} {error.reason}"


def main() -> int:
    cluster_dir = Path(os.environ["MTLS_CLUSTER_DIR"])
    port = os.environ["MTLS_APISERVER_PORT"]
    api = admin_client(cluster_dir, port)

    ensure_fake_node(api, os.environ["MTLS_NODE_NAME"], os.environ["MTLS_NODE_IP"], os.environ["MTLS_NODE_POD_CIDR"])
    restricted_token = ensure_restricted_token(api)
    write_kubeconfig(
        cluster_dir / "kubeconfig",
        port,
        (cluster_dir / "pki" / "ca.crt").read_bytes(),
        (cluster_dir / "pki" / "admin.token").read_text().strip(),
        restricted_token,
    )

    # The CRD sets of tests/cluster/crd-sources.yaml (up.sh has already checked that each
    # has a source, so this finds them in the cache).
    started = time.monotonic()
    try:
        crd_sets = crds.ensure_sets()
    except crds.CrdSourceError as error:
        raise BootstrapError(str(error)) from None
    applied = apply_crds(api, [path for crd_set in crd_sets for path in crd_set.files], cluster_dir / "crds-applied.json")
    if applied:
        print(
            f"[cluster] applied {applied} CRDs of {len(crd_sets)} sets "
            f"({', '.join(f'{s.name} {s.version}' for s in crd_sets)}) in {time.monotonic() - started:.1f} s",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BootstrapError as error:
        print(f"[cluster] ERROR: {error}.", file=sys.stderr)
        sys.exit(1)
    except ApiException as error:
        print(
            f"[cluster] ERROR: the API server answered HTTP {error.status} ({_status_message(error)}); read the logs under the cluster directory.",
            file=sys.stderr,
        )
        sys.exit(1)
    except Exception as error:  # pylint: disable=broad-exception-caught  # one sentence, not a traceback
        print(
            f"[cluster] ERROR: configuring the cluster failed unexpectedly ({type(error).__name__}: {error}); "
            "read the logs under the cluster directory and report this if it repeats.",
            file=sys.stderr,
        )
        sys.exit(1)

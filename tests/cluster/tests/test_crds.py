"""Where the CRDs come from (tests/cluster/crds.py, crd-sources.yaml) and what the cluster serves.

The unit tests build small CRD sets of their own and serve them from a loopback HTTP
server or a fake `go`; an online source that fails is a closed port on 127.0.0.1 (never
another address). The last tests talk to the running local cluster.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

CLUSTER_SCRIPTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CLUSTER_SCRIPTS))
import cluster_ports  # noqa: E402  pylint: disable=wrong-import-position
import crds  # noqa: E402  pylint: disable=wrong-import-position

CRD_TEMPLATE = """---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.example.zerotrust.io
spec:
  group: example.zerotrust.io
  names:
    kind: {kind}
    plural: {plural}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
"""


def crd_file(kind: str) -> bytes:
    return CRD_TEMPLATE.format(kind=kind, plural=kind.lower() + "s").encode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LoopbackFiles:
    """Serves {path: bytes} on 127.0.0.1 and counts the requests."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.requests = files, []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802  (http.server's name)
                owner.requests.append(self.path)
                body = owner.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def loopback_files():
    servers = []

    def start(files):
        servers.append(LoopbackFiles(files))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture()
def env(tmp_path, monkeypatch):
    """An environment whose online sources all fail on closed loopback ports."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    values = dict(os.environ)
    values.pop("MTLS_CRDS_DIR", None)
    values.update(
        {
            "MTLS_CACHE_DIR": str(tmp_path / "cache"),
            "MTLS_CRDS_URL_MIRROR": f"http://127.0.0.1:{cluster_ports.unused_loopback_port()}",
            "GOPROXY": f"http://127.0.0.1:{cluster_ports.unused_loopback_port()}",
            "GOMODCACHE": str(tmp_path / "gomodcache"),  # empty: nothing can come from an earlier download
            "GOTOOLCHAIN": "local",
            "GOSUMDB": "off",
        }
    )
    return values


def url_set(files: dict[str, bytes], offline: list[str] | None = None, **extra) -> dict:
    return {
        "version": "v1.0.0",
        "url_base": "https://upstream.example.invalid/crds/",
        "files": [{"path": name, "sha256": sha(data)} for name, data in files.items()],
        "offline": offline or [],
        "needs": [],
        **extra,
    }


def one_sentence(message: str) -> None:
    assert "\n" not in message
    # No sentence end inside (version numbers and file names have dots, but no ". ").
    assert ". " not in message, message


# --- sha256 pins -------------------------------------------------------------------------


def test_a_pinned_url_file_whose_sha256_differs_is_refused_with_one_sentence(env, tmp_path, loopback_files):
    pinned = crd_file("Widget")
    server = loopback_files({"/crds/widgets.yaml": crd_file("Gadget")})  # not the pinned content
    env["MTLS_CRDS_URL_MIRROR"] = server.url.rstrip("/")
    offline = tmp_path / "offline"
    offline.mkdir()
    (offline / "widgets.yaml").write_bytes(pinned)  # an offline copy must not hide the mismatch
    env["MTLS_CRDS_DIR"] = str(offline)

    with pytest.raises(crds.CrdSourceError) as refused:
        crds.ensure_sets({"widgets": url_set({"widgets.yaml": pinned}, ["widgets.yaml"])}, env=env, log=print)

    message = str(refused.value)
    one_sentence(message)
    assert f"refusing {server.url}crds/widgets.yaml of CRD set widgets" in message
    assert f"sha256 is {sha(crd_file('Gadget'))}" in message and f"pins {sha(pinned)}" in message
    assert not list((tmp_path / "cache" / "crds").glob("widgets-*")), "nothing may be cached after a refusal"


def test_a_go_module_file_whose_sha256_differs_is_refused(env, tmp_path):
    module_dir = tmp_path / "module"
    (module_dir / "crds").mkdir(parents=True)
    (module_dir / "crds" / "widgets.yaml").write_bytes(crd_file("Gadget"))
    fake_go = tmp_path / "go"
    fake_go.write_text(
        "#!/bin/sh\ncat <<'EOF'\n" + json.dumps({"Path": "example.com/widgets", "Version": "v1.0.0", "Dir": str(module_dir), "Sum": "h1:pinned="}) + "\nEOF\n"
    )
    fake_go.chmod(0o755)
    sources = {
        "widgets": {
            "version": "v1.0.0",
            "go_module": "example.com/widgets",
            "go_sum": "h1:pinned=",
            "files": [{"path": "crds/widgets.yaml", "sha256": sha(crd_file("Widget"))}],
        }
    }

    with pytest.raises(crds.CrdSourceError) as refused:
        crds.ensure_sets(sources, env=env, go_command=str(fake_go), log=print)
    one_sentence(str(refused.value))
    assert "refusing example.com/widgets@v1.0.0/crds/widgets.yaml of CRD set widgets" in str(refused.value)

    # The module's go.sum hash is pinned too.
    sources["widgets"]["go_sum"] = "h1:another="
    with pytest.raises(crds.CrdSourceError) as refused:
        crds.ensure_sets(sources, env=env, go_command=str(fake_go), log=print)
    assert "has hash h1:pinned=, but crd-sources.yaml pins h1:another=" in str(refused.value)


def test_a_verified_url_set_is_cached_and_a_warm_call_needs_no_network(env, loopback_files):
    files = {"widgets.yaml": crd_file("Widget"), "gadgets.yaml": crd_file("Gadget")}
    server = loopback_files({f"/crds/{name}": data for name, data in files.items()})
    env["MTLS_CRDS_URL_MIRROR"] = server.url.rstrip("/")
    sources = {"widgets": url_set(files, needs=["widgets.example.zerotrust.io"])}

    [first] = crds.ensure_sets(sources, env=env, log=print)
    assert first.directory.name == "widgets-v1.0.0"
    assert [path.read_bytes() for path in first.files] == list(files.values())
    assert len(server.requests) == 2

    server.close()  # warm: the cache alone serves, the network is not asked
    [again] = crds.ensure_sets(sources, env=env, log=print)
    assert again.files == first.files and len(server.requests) == 2

    first.files[0].write_bytes(b"altered in the cache\n")  # a damaged cache is not trusted
    with pytest.raises(crds.CrdSourceError):
        crds.ensure_sets(sources, env=env, log=print)


# --- offline fallback and missing sources ------------------------------------------------


def test_the_offline_directory_serves_when_the_online_sources_fail(env, tmp_path):
    offline = tmp_path / "offline"
    offline.mkdir()
    (offline / "widgets-all.yaml").write_bytes(crd_file("Widget"))
    (offline / "gadgets-all.yaml").write_bytes(crd_file("Gadget"))
    env["MTLS_CRDS_DIR"] = str(offline)
    sources = {
        # Fails at the Go proxy: a closed loopback port, and an empty module cache.
        "widgets": {
            "version": "v9.9.9",
            "go_module": "example.com/zerotrust-mtls/widgets",
            "files": [{"path": "crds/widgets.yaml", "sha256": sha(crd_file("Widget"))}],
            "offline": ["widgets-all.yaml"],
            "needs": ["widgets.example.zerotrust.io"],
        },
        # Fails at the pinned URL (the mirror is a closed loopback port).
        "gadgets": url_set({"gadgets.yaml": crd_file("Gadget")}, ["gadgets-all.yaml"]),
    }
    messages = []

    started = time.monotonic()
    widgets, gadgets = crds.ensure_sets(sources, env=env, log=messages.append)

    assert time.monotonic() - started < 60
    assert widgets.directory.name.startswith("widgets-offline-")
    assert gadgets.directory.name.startswith("gadgets-offline-")
    assert widgets.files[0].read_bytes() == crd_file("Widget")
    unreachable = json.loads((tmp_path / "cache" / "crds" / crds.UNREACHABLE_RECORD).read_text())
    assert sorted(unreachable) == ["gadgets", "widgets"]
    assert "127.0.0.1" in unreachable["widgets"]["reason"], unreachable  # the closed loopback proxy
    assert any("widgets: the pinned v9.9.9 could not be fetched" in m and "offline copy" in m for m in messages)

    # The next run does not knock on the unreachable sources again while the offline copy serves.
    env["MTLS_CRDS_URL_MIRROR"] = "http://127.0.0.1:1"
    messages.clear()
    again = crds.ensure_sets(sources, env=env, go_command="/nonexistent/go", log=messages.append)
    assert [s.directory for s in again] == [widgets.directory, gadgets.directory]
    assert messages == []


def test_an_offline_copy_that_lacks_a_needed_crd_is_refused(env, tmp_path):
    offline = tmp_path / "offline"
    offline.mkdir()
    (offline / "widgets-all.yaml").write_bytes(crd_file("Gadget"))
    env["MTLS_CRDS_DIR"] = str(offline)
    sources = {"widgets": url_set({"widgets.yaml": crd_file("Widget")}, ["widgets-all.yaml"], needs=["widgets.example.zerotrust.io"])}

    with pytest.raises(crds.CrdSourceError) as refused:
        crds.ensure_sets(sources, env=env, log=print)
    one_sentence(str(refused.value))
    assert "lacks widgets.example.zerotrust.io, which the roles need" in str(refused.value)


def test_no_source_for_a_set_is_one_sentence_naming_what_to_provide(env):
    sources = {
        "widgets": url_set({"widgets.yaml": crd_file("Widget")}, ["widgets-all.yaml"]),
        "gizmos": {
            "version": "v2.0.0",
            "go_module": "example.com/zerotrust-mtls/gizmos",
            "files": [{"path": "gizmos.yaml", "sha256": sha(b"")}],
            "offline": ["gizmos.yaml"],
        },
    }

    with pytest.raises(crds.CrdSourceError) as missing:
        crds.ensure_sets(sources, env=env, log=print)

    message = str(missing.value)
    one_sentence(message)
    assert message.startswith("no source for the CRD sets widgets v1.0.0, gizmos v2.0.0 (")
    assert "MTLS_CRDS_DIR is not set" in message
    assert "set MTLS_CRDS_DIR to a directory with the upstream CRD files widgets-all.yaml, gizmos.yaml" in message
    assert f"network access to the Go module proxy (GOPROXY={env['GOPROXY']})" in message
    assert "and raw.githubusercontent.com" in message


def test_up_sh_without_any_crd_source_stops_before_anything_starts(env, tmp_path):
    # Everything online fails on closed loopback ports, the cache is empty, no MTLS_CRDS_DIR.
    env["MTLS_CLUSTER_DIR"] = str(tmp_path / "cluster")
    env.update(cluster_ports.port_environment())
    # The check alone first: if it passed, up.sh would go on to build into the empty cache.
    check = subprocess.run([sys.executable, CLUSTER_SCRIPTS / "crds.py", "ensure"], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert check.returncode == 1, check.stderr

    started = time.monotonic()
    result = subprocess.run([CLUSTER_SCRIPTS / "up.sh"], env=env, capture_output=True, text=True, timeout=300, check=False)

    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "ERROR:" in line]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("[cluster] ERROR: no source for the CRD sets istio "), errors[0]
    assert "set MTLS_CRDS_DIR to a directory with the upstream CRD files" in errors[0]
    assert "network access to" in errors[0] and errors[0].endswith(".")
    # Before anything started or was built.
    assert "started " not in result.stderr and "cached in" not in result.stderr
    assert not (tmp_path / "cluster" / "run" / "etcd.pid").exists()
    assert not (tmp_path / "cluster" / "logs" / "etcd.log").exists()
    assert not (tmp_path / "cache" / "bin").exists()
    assert time.monotonic() - started < 120


# --- the real pins -----------------------------------------------------------------------


def test_the_source_list_pins_every_crd_the_roles_need():
    sources = crds.load_sources()
    needed = {name for spec in sources.values() for name in spec.get("needs") or []}
    assert needed >= set(CRDS_THE_ROLES_NEED)
    for name, spec in sources.items():
        assert spec.get("offline"), f"set {name} has no offline file names"
        assert all(re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]) for entry in spec["files"])


def test_linkerd_templates_render_only_their_three_metadata_lines():
    template = (
        b"metadata:\n  name: servers.policy.linkerd.io\n  annotations:\n"
        b'    {{ include "partials.annotations.created-by" . }}\n  labels:\n'
        b'    helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}\n'
        b"    linkerd.io/control-plane-ns: {{.Release.Namespace}}\nspec: {}\n"
    )
    assert crds.render_linkerd_crds_metadata(template, "server.yaml") == (
        b"metadata:\n  name: servers.policy.linkerd.io\n  annotations:\n  labels:\n"
        b"    helm.sh/chart: linkerd-crds\n    linkerd.io/control-plane-ns: linkerd\nspec: {}\n"
    )
    with pytest.raises(crds.CrdSourceError) as refused:
        crds.render_linkerd_crds_metadata(template + b"{{- if .Values.enabled }}\n", "server.yaml")
    assert "not one of the three metadata lines" in str(refused.value)


def _upstream_files_of(concatenation: bytes) -> list[bytes]:
    """The upstream files of an offline file made by concatenating them, each followed by `---`."""
    parts = re.split(rb"(?<=\n)(?=---\n---\n)", concatenation)
    if len(parts) == 1:
        return parts
    files = [part[4:] if index else part for index, part in enumerate(parts)]
    assert files[-1].endswith(b"\n---\n")
    files[-1] = files[-1][:-4]
    return files


def _as_linkerd_template(rendered: bytes) -> bytes:
    return (
        rendered.replace(b"  annotations:\n", b'  annotations:\n    {{ include "partials.annotations.created-by" . }}\n')
        .replace(b"    helm.sh/chart: linkerd-crds\n", b"    helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}\n")
        .replace(b"    linkerd.io/control-plane-ns: linkerd\n", b"    linkerd.io/control-plane-ns: {{.Release.Namespace}}\n")
    )


def test_the_pinned_upstream_urls_verify_against_the_offline_test_data(env, loopback_files):
    """Serves the offline files, split back into their upstream files, as the pinned URLs.

    Proves the URL path, the Linkerd rendering and the pins (taken from those files)
    agree; needs MTLS_CRDS_DIR (CI sets it), skipped elsewhere.
    """
    offline = os.environ.get("MTLS_CRDS_DIR")
    if not offline or not Path(offline).is_dir():
        pytest.skip("MTLS_CRDS_DIR names no directory of upstream CRD files")
    sources = {name: spec for name, spec in crds.load_sources().items() if spec.get("url_base")}
    served = {}
    for spec in sources.values():
        upstream = [data for file_name in spec["offline"] for data in _upstream_files_of((Path(offline) / file_name).read_bytes())]
        assert len(upstream) == len(spec["files"])
        for entry, data in zip(spec["files"], upstream):
            path = "/" + (spec["url_base"] + entry["path"]).split("/", 3)[3]
            served[path] = _as_linkerd_template(data) if spec.get("render") else data
    server = loopback_files(served)
    env["MTLS_CRDS_URL_MIRROR"] = server.url.rstrip("/")

    materialised = crds.ensure_sets(sources, env=env, log=print)

    assert [s.directory.name for s in materialised] == [f"{name}-{spec['version']}" for name, spec in sources.items()]
    assert len(server.requests) == len(served)


# --- what the running cluster serves ---------------------------------------------------

CRDS_THE_ROLES_NEED = (
    "clusterissuers.cert-manager.io",
    "issuers.cert-manager.io",
    "certificates.cert-manager.io",
    "orders.acme.cert-manager.io",
    "challenges.acme.cert-manager.io",
    "bundles.trust.cert-manager.io",
    "clusterspiffeids.spire.spiffe.io",
    "clusterfederatedtrustdomains.spire.spiffe.io",
    "clusterstaticentries.spire.spiffe.io",
    "peerauthentications.security.istio.io",
    "authorizationpolicies.security.istio.io",
    "destinationrules.networking.istio.io",
    "gateways.gateway.networking.k8s.io",
    "httproutes.gateway.networking.k8s.io",
    "referencegrants.gateway.networking.k8s.io",
    "backendtlspolicies.gateway.networking.k8s.io",
    "prometheusrules.monitoring.coreos.com",
    "servicemonitors.monitoring.coreos.com",
    "podmonitors.monitoring.coreos.com",
    "ingresscontrollers.operator.openshift.io",
    "servers.policy.linkerd.io",
    "meshtlsauthentications.policy.linkerd.io",
)


def test_the_api_server_serves_every_crd_the_roles_need(admin_api):
    response = client.ApiextensionsV1Api(admin_api).list_custom_resource_definition(_preload_content=False)
    items = {item["metadata"]["name"]: item for item in json.loads(response.data)["items"]}
    established = {
        name for name, item in items.items() if any(c["type"] == "Established" and c["status"] == "True" for c in item.get("status", {}).get("conditions", []))
    }
    missing = sorted(set(CRDS_THE_ROLES_NEED) - established)
    assert not missing, f"not served (did up.sh apply the CRD sets?): {missing}"
    # The Gateway API standard channel with frontend client-certificate validation.
    gateway = next(v for v in items["gateways.gateway.networking.k8s.io"]["spec"]["versions"] if v["name"] == "v1")
    tls = gateway["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["tls"]["properties"]
    assert "validation" in tls["frontend"]["properties"]["default"]["properties"]


def test_the_istio_schema_rejects_a_misspelt_peerauthentication_mode(admin_api, namespace):
    custom = client.CustomObjectsApi(admin_api)
    where = {"group": "security.istio.io", "version": "v1", "plural": "peerauthentications", "namespace": namespace}

    def body(name, mode):
        return {
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"mtls": {"mode": mode}},
        }

    with pytest.raises(ApiException) as rejected:
        custom.create_namespaced_custom_object(body=body("typo", "STRIKT"), **where)
    assert rejected.value.status == 422, rejected.value.body
    assert "STRIKT" in rejected.value.body and "spec.mtls.mode" in rejected.value.body, rejected.value.body

    accepted = custom.create_namespaced_custom_object(body=body("strict", "STRICT"), **where)
    assert accepted["spec"]["mtls"]["mode"] == "STRICT"


def test_the_crd_record_check_works_on_a_cluster_without_any_crd():
    """A fresh API server answers the metadata-only CRD list with `"items": null`."""
    import bootstrap  # pylint: disable=import-outside-toplevel  # needs the kubernetes client

    class Response:
        data = b'{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{},"items":null}'

    class Extensions:
        def list_custom_resource_definition(self, **_):
            return Response()

    assert bootstrap.crd_versions(Extensions()) == {}

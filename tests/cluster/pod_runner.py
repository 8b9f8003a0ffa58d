#!/usr/bin/env python3
"""The kubelet of the real consumers on the local control plane.

kwok marks every pod Running without running anything. For the pods whose container
image maps to a program we have locally (CONSUMERS below: istiod, the cert-manager
controller, trust-manager, the SPIRE server and agent, our exporter), this runner
starts that program the way a kubelet would, from the Pod object the API server holds:

* the container's command/args and env (value, fieldRef, resourceFieldRef,
  secretKeyRef, configMapKeyRef, envFrom), with kubelet's $(VAR) expansion;
* its Secret, ConfigMap, projected (serviceAccountToken from the TokenRequest API,
  bound to the pod; configMap; secret; downwardAPI) and downwardAPI volumes, written
  with kubelet's AtomicWriter layout (a hidden timestamped directory, `..data` symlink
  to it, the visible names as symlinks into `..data`, one rename to switch) and kept
  current by polling, so a change the roles make reaches the running program's file
  watchers; emptyDir, hostPath (under the cluster dir) and PVC volumes as directories;
* a kubeconfig for the pod's service account (server https://127.0.0.1:<port>, the
  local cluster's CA, a TokenRequest token refreshed at 80 % of its life), exported as
  KUBECONFIG, with KUBERNETES_SERVICE_HOST/PORT pointing at 127.0.0.1:<port>;
* listeners on loopback only: each pod's listeners go to its kwok pod IP
  (127.201.x.y, so two pods can use the same port), and a process seen listening on
  a non-loopback address is killed and reported.

What is rewritten, precisely (everything else is the pod's own spec):
1. The program runs with its working directory at a per-container root
   (<cluster>/pods/<ns>.<pod>/c/<container>) in which each volumeMount path is a
   symlink to the projected volume; relative paths such as istiod's ./etc/cacerts thus
   resolve as in the container. Absolute mount paths in args and env values are
   translated to that root (/run/spire/config/server.conf ->
   <root>/run/spire/config/server.conf).
2. Listen addresses given as flag values (0.0.0.0:P, :P, [::]:P) become <podIP>:P.
3. trust-manager hard-codes 0.0.0.0 for its metrics and readiness servers and reads its
   namespace from /var/run/secrets/kubernetes.io/serviceaccount: it runs in its own
   network and mount namespace (unshare; only `lo`, so 0.0.0.0 there is loopback-only),
   the API server and its ports bridged through Unix sockets, the service-account
   volume bind-mounted at its real path over a private tmpfs on /run (needs root).
4. Per consumer, only where the program has no other way (CONSUMERS below): flags for
   the listeners whose defaults are 0.0.0.0 and for the kubeconfig; for SPIRE the
   config file named by -config is translated into a copy (mount paths, bind
   addresses, kube_config_file(_path) added to the k8sbundle notifier and k8s_psat,
   the agent's server_address) that is regenerated when the ConfigMap changes.

Usage: pod_runner.py up [--timeout S] | down | status [--json]
`up` starts (or reuses) a detached supervisor (pid file run/pod-runner.pid, log
logs/pod-runner.log) and waits until every mapped container is ready (its own
readinessProbe when it has one); a consumer that exits or never gets ready ends `up`
with its log tail and one sentence. Logs per container: logs/pods/<ns>.<pod>.<container>.log.
Standard library only; the cluster dir is $MTLS_CLUSTER_DIR or <checkout>/.cluster.
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import datetime
import ipaddress
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent.parent
CLUSTER_DIR = Path(os.environ.get("MTLS_CLUSTER_DIR") or CHECKOUT / ".cluster").resolve()
POLL_S = 1.0
RESTART_BACKOFF_S = (5, 10, 20, 40, 60)
API_GONE_S = 60  # the supervisor stops everything when the API server is gone this long


class RunnerError(Exception):
    """A failure whose message is the one sentence shown to the user."""


def log(message: str) -> None:
    print(f"[pod-runner] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- cluster


def read_ports() -> dict[str, str]:
    ports = {}
    path = CLUSTER_DIR / "ports.env"
    if path.is_file():
        for line in path.read_text().splitlines():
            name, _, value = line.partition("=")
            if name.startswith("MTLS_") and value.strip().isdigit():
                ports[name] = value.strip()
    for name, value in os.environ.items():
        if name.startswith("MTLS_") and name.endswith("_PORT") and value.isdigit():
            ports[name] = value
    return ports


class Api:
    """Minimal JSON client of the local API server (admin token), stdlib only."""

    def __init__(self, cluster_dir: Path = CLUSTER_DIR):
        port = read_ports().get("MTLS_APISERVER_PORT")
        token_file = cluster_dir / "pki" / "admin.token"
        if not port or not token_file.is_file():
            raise RunnerError(f"no local cluster in {cluster_dir} (no ports.env or pki/admin.token); start it with tests/cluster/up.sh first.")
        self.port = port
        self.server = f"https://127.0.0.1:{port}"
        self.ca_file = cluster_dir / "pki" / "ca.crt"
        self.context = ssl.create_default_context(cafile=str(self.ca_file))
        self.token = token_file.read_text().strip()

    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 10.0):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            detail = error.read().decode(errors="replace")[:300]
            raise RunnerError(f"{method} {path} answered {error.code}: {detail}") from None

    def get(self, path: str):
        return self.request("GET", path)

    def token_request(self, namespace: str, account: str, pod: dict, audiences: list[str] | None, seconds: int) -> tuple[str, float]:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": seconds,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]},
            },
        }
        if audiences:
            body["spec"]["audiences"] = audiences
        answer = self.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token", body)
        if not answer:
            raise RunnerError(f"the service account {namespace}/{account} does not exist (TokenRequest answered 404)")
        expires = answer["status"]["expirationTimestamp"]
        expiry = datetime.datetime.strptime(expires, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()
        return answer["status"]["token"], expiry


# --------------------------------------------------------------------------- consumers


@dataclass
class Context:
    """What a consumer's adapters may use: the pod, its IP, paths, the API port."""

    pod: dict
    container: dict
    pod_ip: str
    root: Path  # the container root (cwd); mount paths are symlinks in it
    pod_dir: Path
    kubeconfig: Path
    api_port: str

    def translate(self, text: str) -> str:
        return translate_paths(text, self.container, self.root)


@dataclass
class Consumer:
    name: str  # build-consumers.sh NAME (or our own program)
    images: tuple[str, ...]  # image repository basenames
    entrypoint: tuple[str, ...]  # the image's ENTRYPOINT after the binary
    own_commands: tuple[str, ...] = ()  # command[0] values that mean "the image's program"
    extra_args: Callable[[Context], list[str]] = lambda ctx: []
    config_flags: tuple[str, ...] = ()  # flags naming a config file we translate
    rewrite_config: Callable[[str, Context], str] | None = None
    extra_env: Callable[[Context], dict[str, str]] = lambda ctx: {}
    program: Callable[[], list[str]] | None = None  # for programs that are not cached binaries
    bin_names: tuple[str, ...] = ()  # build-consumers.sh names to try (default: name)
    # Programs that hard-code 0.0.0.0 listeners run in their own network namespace (only
    # `lo` in it); the API server and the pod's containerPorts are bridged through Unix
    # sockets in the pod directory (see netns_exec).
    own_netns: bool = False


def _hcl_set_plugin_option(text: str, plugin_header: str, line: str) -> str:
    """Adds `line` as the first entry of `plugin_data {` of the plugin whose header matches."""
    match = re.search(re.escape(plugin_header) + r"\s*\{\s*plugin_data\s*\{", text)
    if not match:
        return text
    return text[: match.end()] + "\n      " + line + text[match.end() :]


def _spire_config(text: str, ctx: Context) -> str:
    """What the server's and the agent's configs both need: the pod's paths, listeners on its IP."""
    text = ctx.translate(text)
    return re.sub(r'(bind_address\s*=\s*)"(0\.0\.0\.0|::|)"', rf'\1"{ctx.pod_ip}"', text)


def _spire_server_config(text: str, ctx: Context) -> str:
    text = _spire_config(text, ctx)
    # In-cluster config is hard-coded to /var/run/secrets/kubernetes.io/serviceaccount in
    # client-go: point the k8sbundle notifier and k8s_psat at the pod's kubeconfig instead.
    text = _hcl_set_plugin_option(text, 'Notifier "k8sbundle"', f'kube_config_file_path = "{ctx.kubeconfig}"')
    text = re.sub(r'(clusters\s*=\s*\{\s*"[^"]+"\s*=\s*\{)', rf'\1\n              kube_config_file = "{ctx.kubeconfig}"', text)
    return text


def _spire_agent_config(text: str, ctx: Context) -> str:
    text = _spire_config(text, ctx)
    # No cluster DNS here: the server Service name resolves to the server pod's IP.
    server = spire_server_address(ctx)
    if server:
        text = re.sub(r'(server_address\s*=\s*)"[^"]*"', rf'\1"{server}"', text)
    return text


def spire_server_address(ctx: Context) -> str | None:
    state = read_state()
    for entry in state.get("containers", []):
        if entry.get("consumer") == "spire-server" and entry.get("namespace") == ctx.pod["metadata"]["namespace"]:
            return entry.get("pod_ip")
    return None


def _exporter_program() -> list[str]:
    python = CHECKOUT / ".venv" / "bin" / "python"
    return [str(python if python.exists() else Path(sys.executable)), "-m", "mtls_exporter"]


def _spire_consumer(program: str, rewrite_config: Callable[[str, Context], str]) -> Consumer:
    """SPIRE's server and agent images: `<program> run -config FILE`, the file rewritten for the pod."""
    return Consumer(
        name=program,
        images=(program,),
        entrypoint=("run",),
        own_commands=(f"/opt/spire/bin/{program}", program),
        config_flags=("-config", "--config"),
        rewrite_config=rewrite_config,
    )


CONSUMERS: tuple[Consumer, ...] = (
    Consumer(
        name="cert-manager-controller",
        images=("cert-manager-controller",),
        entrypoint=(),
        own_commands=("/app/cmd/controller/controller", "controller"),
        # The controller's metrics and healthz default to 0.0.0.0; it has --kubeconfig.
        extra_args=lambda ctx: [
            f"--kubeconfig={ctx.kubeconfig}",
            f"--metrics-listen-address={ctx.pod_ip}:9402",
            f"--internal-healthz-listen-address={ctx.pod_ip}:9403",
        ],
    ),
    Consumer(
        name="trust-manager",
        images=("trust-manager",),
        entrypoint=(),
        own_commands=("/trust-manager", "trust-manager"),
        # Its metrics and readiness servers are hard-coded to 0.0.0.0:<port> (app.go).
        own_netns=True,
        extra_args=lambda ctx: [f"--kubeconfig={ctx.kubeconfig}"],
    ),
    Consumer(
        name="istiod",
        bin_names=("istiod", "pilot-discovery"),
        images=("pilot",),
        entrypoint=(),
        own_commands=("/usr/local/bin/pilot-discovery", "pilot-discovery"),
        extra_args=lambda ctx: [
            f"--kubeconfig={ctx.kubeconfig}",
            f"--httpAddr={ctx.pod_ip}:8080",
            f"--httpsAddr={ctx.pod_ip}:15017",
            f"--grpcAddr={ctx.pod_ip}:15010",
            f"--secureGRPCAddr={ctx.pod_ip}:15012",
            f"--monitoringAddr={ctx.pod_ip}:15014",
            f"--ctrlz_address={ctx.pod_ip}",
        ],
    ),
    _spire_consumer("spire-server", _spire_server_config),
    _spire_consumer("spire-agent", _spire_agent_config),
    Consumer(
        name="mtls-exporter",
        images=("mtls-exporter",),
        entrypoint=(),
        own_commands=("mtls-exporter",),
        extra_env=lambda ctx: {"PYTHONPATH": str(CHECKOUT / "exporter" / "src")},
        program=_exporter_program,
    ),
)


def image_repository_basename(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def consumer_for_image(image: str) -> Consumer | None:
    base = image_repository_basename(image)
    for consumer in CONSUMERS:
        if base in consumer.images:
            return consumer
    return None


_BINARY_CACHE: dict[str, tuple[float, str | None, str]] = {}


def consumer_binary(consumer: Consumer) -> tuple[str | None, str]:
    """(path, reason): the cached binary from build-consumers.sh --print-bin NAME."""
    override = os.environ.get("MTLS_POD_RUNNER_BIN_" + consumer.name.upper().replace("-", "_"))
    if override:  # a binary of your own (development); the default is the build cache
        return (override, "") if os.access(override, os.X_OK) else (None, f"{override} is not executable")
    cached = _BINARY_CACHE.get(consumer.name)
    if cached and (cached[1] or time.monotonic() - cached[0] < 30):
        return cached[1], cached[2]
    script = HERE / "build-consumers.sh"
    path, reason = None, ""
    if not script.exists():
        reason = f"{script} does not exist yet"
    else:
        try:
            for name in consumer.bin_names or (consumer.name,):
                result = subprocess.run([str(script), "--print-bin", name], capture_output=True, text=True, timeout=30)
                candidate = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
                if result.returncode == 0 and candidate and os.access(candidate, os.X_OK):
                    path, reason = candidate, ""
                    break
                reason = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        except (OSError, subprocess.TimeoutExpired) as error:
            reason = str(error)
    _BINARY_CACHE[consumer.name] = (time.monotonic(), path, reason)
    return path, reason


# --------------------------------------------------------------------------- translation

LISTEN_VALUE = re.compile(r"^(?:0\.0\.0\.0|\[::\]|::|)?:(\d{1,5})$")


def mount_paths(container: dict) -> list[str]:
    paths = [m["mountPath"].rstrip("/") for m in container.get("volumeMounts") or [] if m.get("mountPath")]
    return sorted({p for p in paths if p.startswith("/") and p != ""}, key=len, reverse=True)


def translate_paths(text: str, container: dict, root: Path) -> str:
    for path in mount_paths(container):
        pattern = re.compile(r"(?<![\w.\-/])" + re.escape(path) + r"(?=/|$|[^\w.\-])")
        text = pattern.sub(lambda _m, p=path: str(root) + p, text)
    return text


def translate_listen(value: str, pod_ip: str) -> str:
    match = LISTEN_VALUE.match(value)
    return f"{pod_ip}:{match.group(1)}" if match else value


def translate_arg(arg: str, ctx: Context) -> str:
    if arg.startswith("-") and "=" in arg:
        flag, _, value = arg.partition("=")
        return flag + "=" + translate_listen(ctx.translate(value), ctx.pod_ip)
    return translate_listen(ctx.translate(arg), ctx.pod_ip)


_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")


def expand(value: str, env: dict[str, str]) -> str:
    """kubelet's $(VAR) expansion: defined references are replaced, $$ escapes."""

    def replace(match):
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR_REF.sub(replace, value)


# --------------------------------------------------------------------------- volumes


def atomic_write_dir(target: Path, payload: dict[str, tuple[bytes, int]]) -> bool:
    """kubelet's AtomicWriter: returns True when the payload changed and was switched in."""
    target.mkdir(parents=True, exist_ok=True)
    data_link = target / "..data"
    if data_link.is_symlink():
        current = target / os.readlink(data_link)
        if _same_payload(current, payload):
            return False
    else:
        current = None
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("..%Y_%m_%d_%H_%M_%S.") + secrets.token_hex(4)
    version = target / stamp
    version.mkdir(mode=0o755)
    for relative, (content, mode) in payload.items():
        path = version / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(path, mode)
    tmp_link = target / "..data_tmp"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    os.symlink(stamp, tmp_link)
    os.rename(tmp_link, data_link)  # the one rename that switches every name at once
    visible = {relative.split("/", 1)[0] for relative in payload}
    for name in visible:
        link = target / name
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link) if link.is_dir() else link.unlink()
            os.symlink(f"..data/{name}", link)
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.name not in visible and entry.is_symlink():
            entry.unlink()
    if current is not None and current.exists():
        shutil.rmtree(current, ignore_errors=True)
    for entry in target.iterdir():  # leftovers of an interrupted earlier switch
        if entry.name.startswith("..") and entry.name not in ("..data", stamp) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
    return True


def _same_payload(current: Path, payload: dict[str, tuple[bytes, int]]) -> bool:
    try:
        existing = {str(p.relative_to(current)) for p in current.rglob("*") if p.is_file()}
        if existing != set(payload):
            return False
        for relative, (content, mode) in payload.items():
            path = current / relative
            if path.read_bytes() != content or (path.stat().st_mode & 0o777) != mode:
                return False
        return True
    except OSError:
        return False


def field_value(pod: dict, path: str) -> str:
    meta = pod["metadata"]
    if path == "metadata.name":
        return meta["name"]
    if path == "metadata.namespace":
        return meta["namespace"]
    if path == "metadata.uid":
        return meta["uid"]
    if path == "spec.nodeName":
        return pod["spec"].get("nodeName", "")
    if path == "spec.serviceAccountName":
        return pod["spec"].get("serviceAccountName", "default")
    if path in ("status.podIP", "status.podIPs"):
        return pod.get("status", {}).get("podIP", "")
    if path == "status.hostIP":
        return pod.get("status", {}).get("hostIP", "")
    for prefix, key in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        if path == prefix:
            items = meta.get(key) or {}
            return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
        match = re.fullmatch(re.escape(prefix) + r"\['([^']+)'\]", path)
        if match:
            return (meta.get(key) or {}).get(match.group(1), "")
    raise RunnerError(f"fieldRef {path} is not supported by the pod runner")


_QUANTITY = re.compile(r"^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_FACTORS = {None: 1, "m": 0.001, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}


def _quantity(text: str) -> float:
    match = _QUANTITY.match(str(text))
    if not match:
        raise RunnerError(f"resource quantity {text!r} is not supported by the pod runner")
    return float(match.group(1)) * _FACTORS[match.group(2)]


def resource_value(container: dict, ref: dict) -> str:
    """kubelet's resourceFieldRef: the container's value, else the node's allocatable
    (this machine's CPUs and memory) for limits, rounded up by the divisor."""
    kind, _, resource = ref["resource"].partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(resource)
    if value is not None:
        amount = _quantity(value)
    elif resource == "cpu":
        amount = float(os.cpu_count() or 1) if kind == "limits" else 0.0
    elif resource == "memory":
        amount = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) if kind == "limits" else 0.0
    else:
        amount = 0.0
    divisor = _quantity(ref.get("divisor") or "1")
    return str(max(int(-(-amount // divisor)), 1 if resource == "cpu" and amount else 0))


class Projector:
    """Builds and refreshes the volumes of one pod."""

    def __init__(self, api: Api, pod: dict, pod_dir: Path):
        self.api = api
        self.pod = pod
        self.pod_dir = pod_dir
        self.namespace = pod["metadata"]["namespace"]
        self.tokens: dict[str, tuple[str, float, float]] = {}  # key -> (token, issued, expiry)

    def _object(self, kind: str, name: str):
        return self.api.get(f"/api/v1/namespaces/{self.namespace}/{kind}/{name}")

    @staticmethod
    def _data(obj: dict, kind: str) -> dict[str, bytes]:
        if kind == "secrets":
            return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        return data

    def _keyed(self, kind: str, source: dict, default_mode: int, what: str) -> dict[str, tuple[bytes, int]]:
        name = source.get("name") or source.get("secretName")
        obj = self._object(kind, name)
        if obj is None:
            if source.get("optional"):
                return {}
            raise RunnerError(f"{what} {self.namespace}/{name} does not exist (the pod waits for it, as kubelet would)")
        data = self._data(obj, kind)
        mode = source.get("defaultMode", default_mode)
        if source.get("items"):
            out = {}
            for item in source["items"]:
                if item["key"] not in data:
                    if source.get("optional"):
                        continue
                    raise RunnerError(f"{what} {self.namespace}/{name} has no key {item['key']}")
                out[item["path"]] = (data[item["key"]], item.get("mode", mode))
            return out
        return {key: (value, mode) for key, value in data.items()}

    def _token(self, key: str, account: str, audiences: list[str] | None, seconds: int) -> str:
        held = self.tokens.get(key)
        now = time.time()
        if held and now < held[1] + 0.8 * (held[2] - held[1]):
            return held[0]
        token, expiry = self.api.token_request(self.namespace, account, self.pod, audiences, seconds)
        self.tokens[key] = (token, now, expiry)
        return token

    def _downward(self, items: list[dict], mode: int) -> dict[str, tuple[bytes, int]]:
        out = {}
        for item in items:
            if "fieldRef" in item:
                out[item["path"]] = (field_value(self.pod, item["fieldRef"]["fieldPath"]).encode(), item.get("mode", mode))
            else:
                container = next((c for c in self.pod["spec"]["containers"] if c["name"] == item["resourceFieldRef"].get("containerName")), {})
                out[item["path"]] = (resource_value(container, item["resourceFieldRef"]).encode(), item.get("mode", mode))
        return out

    def payload(self, volume: dict) -> dict[str, tuple[bytes, int]] | None:
        """The files of a volume, or None for directory volumes."""
        account = self.pod["spec"].get("serviceAccountName") or "default"
        if "secret" in volume:
            return self._keyed("secrets", volume["secret"], 0o644, "Secret")
        if "configMap" in volume:
            return self._keyed("configmaps", volume["configMap"], 0o644, "ConfigMap")
        if "downwardAPI" in volume:
            source = volume["downwardAPI"]
            return self._downward(source.get("items") or [], source.get("defaultMode", 0o644))
        if "projected" in volume:
            projected = volume["projected"]
            mode = projected.get("defaultMode", 0o644)
            out = {}
            for source in projected.get("sources") or []:
                if "serviceAccountToken" in source:
                    spec = source["serviceAccountToken"]
                    audience = spec.get("audience")
                    token = self._token(f"{volume['name']}/{spec['path']}", account, [audience] if audience else None, int(spec.get("expirationSeconds", 3600)))
                    out[spec["path"]] = (token.encode(), 0o600 if mode == 0o644 else mode)
                elif "configMap" in source:
                    out.update(self._keyed("configmaps", {**source["configMap"], "defaultMode": mode}, mode, "ConfigMap"))
                elif "secret" in source:
                    out.update(self._keyed("secrets", {**source["secret"], "defaultMode": mode}, mode, "Secret"))
                elif "downwardAPI" in source:
                    out.update(self._downward(source["downwardAPI"].get("items") or [], mode))
                elif "clusterTrustBundle" in source:
                    raise RunnerError("projected clusterTrustBundle sources are not supported by the pod runner")
            return out
        return None

    def directory(self, volume: dict) -> Path:
        if "emptyDir" in volume:
            return self.pod_dir / "volumes" / volume["name"]
        if "hostPath" in volume:
            node = self.pod["spec"].get("nodeName", "node")
            return CLUSTER_DIR / "nodes" / node / volume["hostPath"]["path"].lstrip("/")
        if "persistentVolumeClaim" in volume:
            return CLUSTER_DIR / "pvc" / self.namespace / volume["persistentVolumeClaim"]["claimName"]
        if "ephemeral" in volume:
            return self.pod_dir / "volumes" / volume["name"]
        kinds = ", ".join(k for k in volume if k != "name")
        raise RunnerError(f"volume {volume['name']} of kind {kinds} is not supported by the pod runner")

    def sync(self, used: set[str]) -> list[str]:
        """Writes every used volume; returns the names of volumes whose content changed."""
        changed = []
        for volume in self.pod["spec"].get("volumes") or []:
            if volume["name"] not in used:
                continue
            payload = self.payload(volume)
            if payload is None:
                self.directory(volume).mkdir(parents=True, exist_ok=True)
                continue
            if atomic_write_dir(self.pod_dir / "volumes" / volume["name"], payload):
                changed.append(volume["name"])
        return changed

    def volume_dir(self, name: str) -> Path:
        for volume in self.pod["spec"].get("volumes") or []:
            if volume["name"] == name:
                if self.payload_kind(volume):
                    return self.pod_dir / "volumes" / name
                return self.directory(volume)
        raise RunnerError(f"volumeMount {name} names no volume of the pod")

    @staticmethod
    def payload_kind(volume: dict) -> bool:
        return any(k in volume for k in ("secret", "configMap", "downwardAPI", "projected"))

    def env(self, container: dict) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind, key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
                if key in source:
                    obj = self._object(kind, source[key]["name"])
                    if obj is None and not source[key].get("optional"):
                        raise RunnerError(f"envFrom {kind[:-1]} {self.namespace}/{source[key]['name']} does not exist")
                    for k, v in self._data(obj or {}, kind).items():
                        env[prefix + k] = v.decode(errors="replace")
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = expand(item["value"], env)
            elif "valueFrom" in item:
                source = item["valueFrom"]
                if "fieldRef" in source:
                    env[item["name"]] = field_value(self.pod, source["fieldRef"]["fieldPath"])
                elif "resourceFieldRef" in source:
                    env[item["name"]] = resource_value(container, source["resourceFieldRef"])
                else:
                    for kind, key in (("configmaps", "configMapKeyRef"), ("secrets", "secretKeyRef")):
                        if key in source:
                            ref = source[key]
                            obj = self._object(kind, ref["name"])
                            data = self._data(obj, kind) if obj else {}
                            if ref["key"] in data:
                                env[item["name"]] = data[ref["key"]].decode(errors="replace")
                            elif not ref.get("optional"):
                                raise RunnerError(f"env {item['name']}: {kind[:-1]} {self.namespace}/{ref['name']} has no key {ref['key']}")
            else:
                env[item["name"]] = ""
        return env


# --------------------------------------------------------------------------- netns bridge


def _pipe(a: socket.socket, b: socket.socket) -> None:
    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    threading.Thread(target=pump, args=(a, b), daemon=True).start()
    threading.Thread(target=pump, args=(b, a), daemon=True).start()


class Bridge:
    """Accepts on one socket and connects each connection to a target (TCP or Unix)."""

    def __init__(self, listen: tuple[str, object], target: tuple[str, object]):
        family = socket.AF_UNIX if listen[0] == "unix" else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_UNIX:
            Path(listen[1]).unlink(missing_ok=True)
        else:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(listen[1])
        self.listener.listen(64)
        self.target = target
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            family = socket.AF_UNIX if self.target[0] == "unix" else socket.AF_INET
            upstream = socket.socket(family, socket.SOCK_STREAM)
            try:
                upstream.connect(self.target[1])
            except OSError:
                connection.close()
                upstream.close()
                continue
            _pipe(connection, upstream)

    def close(self):
        try:
            self.listener.close()
        except OSError:
            pass


def netns_exec(api_port: int, sock_dir: str, ports: list[int], binds: list[str], argv: list[str]) -> int:
    """Runs inside `unshare --net --mount`: lo up, the API server at 127.0.0.1:<api_port>
    bridged out through sock_dir/api.sock, each container port bridged in from
    sock_dir/port-<n>.sock; the service-account mounts (SRC:DST under /run or /var/run)
    bind-mounted at their real paths over a private tmpfs on /run, for the programs that
    read /var/run/secrets/kubernetes.io/serviceaccount themselves; then runs the program
    and returns its exit status."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    if binds:
        subprocess.run(["mount", "--make-rprivate", "/"], check=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run"], check=True)
        for bind in binds:
            source, _, target = bind.partition(":")
            target = "/run" + target[len("/var/run") :] if target.startswith("/var/run/") else target
            os.makedirs(target, exist_ok=True)
            subprocess.run(["mount", "--bind", "-o", "ro", source, target], check=True)
    Bridge(("tcp", ("127.0.0.1", api_port)), ("unix", f"{sock_dir}/api.sock"))
    for port in ports:
        Bridge(("unix", f"{sock_dir}/port-{port}.sock"), ("tcp", ("127.0.0.1", port)))
    child = subprocess.Popen(argv)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda n, _f: child.send_signal(n))
    return child.wait()


def netns_interfaces(pid: int) -> set[str]:
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return set()
    return {line.split(":", 1)[0].strip() for line in lines}


# --------------------------------------------------------------------------- listeners


def _proc_sockets(pid: int | None = None) -> list[tuple[str, str, int]]:
    """(proto, address, inode) of every listening TCP and bound UDP socket (of pid's netns)."""
    out = []
    base = f"/proc/{pid}/net" if pid else "/proc/net"
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = Path(f"{base}/{proto}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state, inode = parts[1], parts[3], int(parts[9])
            if proto.startswith("tcp") and state != "0A":
                continue
            if proto.startswith("udp") and state != "07":
                continue
            hex_ip, hex_port = local.split(":")
            raw = bytes.fromhex(hex_ip)
            if len(raw) == 4:
                ip = str(ipaddress.IPv4Address(raw[::-1]))
            else:
                words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
                ip = str(ipaddress.IPv6Address(b"".join(words)))
            out.append((proto, f"{ip}:{int(hex_port, 16)}", inode))
    return out


def session_pids(leader: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) == leader:  # session id
                pids.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def listeners_of(pids: list[int], netns_pid: int | None = None) -> list[str]:
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
        except OSError:
            continue
    return sorted({f"{proto}:{address}" for proto, address, inode in _proc_sockets(netns_pid) if inode in inodes})


def is_loopback(address: str) -> bool:
    host = address.split(":", 1)[1].rsplit(":", 1)[0]
    ip = ipaddress.ip_address(host)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


# --------------------------------------------------------------------------- processes


def process_start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2 :].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def _set_pdeathsig():
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: die with the supervisor
    except OSError:
        pass


@dataclass
class Managed:
    key: str
    consumer: Consumer
    namespace: str
    pod_name: str
    pod_uid: str
    container_name: str
    pod_dir: Path
    log_path: Path
    process: subprocess.Popen | None = None
    started: float = 0.0
    restarts: int = 0
    next_start: float = 0.0
    state: str = "pending"
    message: str = ""
    last_exit: int | None = None
    ready_since: float | None = None
    listeners: list[str] = field(default_factory=list)
    pod_ip: str = "127.0.0.1"
    argv: list[str] = field(default_factory=list)
    probe: dict | None = None
    ports: dict[str, int] = field(default_factory=dict)
    config_copies: dict[str, str] = field(default_factory=dict)  # source -> translated copy
    binary: str | None = None
    bridges: list = field(default_factory=list)

    def pid_file(self) -> Path:
        return CLUSTER_DIR / "run" / "pods" / (self.key.replace("/", ".") + ".pid")


def pod_is_ours(pod: dict) -> bool:
    meta, status = pod["metadata"], pod.get("status") or {}
    if meta.get("deletionTimestamp") or status.get("phase") != "Running" or not pod["spec"].get("nodeName"):
        return False
    owners = {o.get("kind") for o in meta.get("ownerReferences") or []}
    return bool(owners & {"ReplicaSet", "StatefulSet", "DaemonSet"})


def pod_ip_of(pod: dict) -> str:
    ip = (pod.get("status") or {}).get("podIP") or ""
    try:
        if ipaddress.ip_address(ip).is_loopback:
            return ip
    except ValueError:
        pass
    return "127.0.0.1"


class Supervisor:
    def __init__(self):
        self.api = Api()
        self.managed: dict[str, Managed] = {}
        self.projectors: dict[str, Projector] = {}
        self.stopping = False
        self.generation = 0
        self.api_ok_at = time.monotonic()
        (CLUSTER_DIR / "run" / "pods").mkdir(parents=True, exist_ok=True)
        (CLUSTER_DIR / "logs" / "pods").mkdir(parents=True, exist_ok=True)
        (CLUSTER_DIR / "pods").mkdir(parents=True, exist_ok=True)
        os.chmod(CLUSTER_DIR / "pods", 0o700)

    # ---- the loop
    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        log(f"supervising pods of {self.api.server} (cluster dir {CLUSTER_DIR})")
        while not self.stopping:
            try:
                self.reconcile()
                self.api_ok_at = time.monotonic()
            except (RunnerError, urllib.error.URLError, OSError, TimeoutError) as error:
                log(f"reconcile failed: {error}")
                if time.monotonic() - self.api_ok_at > API_GONE_S:
                    log(f"the API server has not answered for {API_GONE_S}s; stopping every consumer and exiting")
                    break
            self.write_state()
            deadline = time.monotonic() + POLL_S
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(0.1)
        for key in list(self.managed):
            self.stop(key, remove=True)
        self.write_state(running=False)
        log("stopped")

    def _on_signal(self, *_):
        self.stopping = True

    def reconcile(self) -> None:
        pods = self.api.get("/api/v1/pods") or {"items": []}
        wanted: dict[str, tuple[dict, dict, Consumer]] = {}
        for pod in pods["items"]:
            if not pod_is_ours(pod):
                continue
            for container in pod["spec"].get("containers") or []:
                consumer = consumer_for_image(container.get("image", ""))
                if consumer:
                    key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}/{container['name']}"
                    wanted[key] = (pod, container, consumer)
        for key in list(self.managed):
            entry = self.managed[key]
            if key not in wanted or wanted[key][0]["metadata"]["uid"] != entry.pod_uid:
                log(f"{key}: pod gone or replaced; stopping its process")
                self.stop(key, remove=True)
        for key, (pod, container, consumer) in wanted.items():
            try:
                self.ensure(key, pod, container, consumer)
            except RunnerError as error:
                entry = self.managed.get(key)
                if entry:
                    entry.message = str(error)
                    if not entry.process:
                        entry.state = "waiting"
        self.generation += 1

    def ensure(self, key: str, pod: dict, container: dict, consumer: Consumer) -> None:
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        entry = self.managed.get(key)
        if entry is None:
            pod_dir = CLUSTER_DIR / "pods" / f"{namespace}.{name}"
            entry = Managed(
                key=key,
                consumer=consumer,
                namespace=namespace,
                pod_name=name,
                pod_uid=pod["metadata"]["uid"],
                container_name=container["name"],
                pod_dir=pod_dir,
                log_path=CLUSTER_DIR / "logs" / "pods" / f"{namespace}.{name}.{container['name']}.log",
            )
            self.managed[key] = entry
        entry.pod_ip = pod_ip_of(pod)
        pod_key = f"{namespace}/{name}"
        projector = self.projectors.get(pod_key)
        if projector is None or projector.pod["metadata"]["uid"] != pod["metadata"]["uid"]:
            projector = Projector(self.api, pod, entry.pod_dir)
            self.projectors[pod_key] = projector
        projector.pod = pod
        used = {m["name"] for m in container.get("volumeMounts") or []}
        changed = projector.sync(used)
        self.write_kubeconfig(entry, projector, pod)
        ctx = self.context(entry, pod, container)
        if changed and entry.config_copies:
            self.refresh_config_copies(entry, ctx)
        process = entry.process
        if process is not None:
            code = process.poll()
            if code is None:
                self.check_listeners(entry)
                self.check_ready(entry)
                return
            entry.last_exit = code
            entry.process = None
            entry.ready_since = None
            entry.state = "crashed"
            entry.message = f"exited with status {code} after {time.time() - entry.started:.1f}s"
            entry.pid_file().unlink(missing_ok=True)
            entry.next_start = time.monotonic() + RESTART_BACKOFF_S[min(entry.restarts, len(RESTART_BACKOFF_S) - 1)]
            entry.restarts += 1
            log(f"{key}: {entry.message}; restart {entry.restarts} in {entry.next_start - time.monotonic():.0f}s (log {entry.log_path})")
            return
        if time.monotonic() < entry.next_start:
            return
        self.start(entry, pod, container, projector, ctx)

    def context(self, entry: Managed, pod: dict, container: dict) -> Context:
        return Context(
            pod=pod,
            container=container,
            pod_ip=entry.pod_ip,
            root=entry.pod_dir / "c" / container["name"],
            pod_dir=entry.pod_dir,
            kubeconfig=entry.pod_dir / f"{container['name']}.kubeconfig",
            api_port=self.api.port,
        )

    def write_kubeconfig(self, entry: Managed, projector: Projector, pod: dict) -> None:
        account = pod["spec"].get("serviceAccountName") or "default"
        token = projector._token("kubeconfig", account, None, 3600)
        token_file = entry.pod_dir / "serviceaccount.token"
        kubeconfig = entry.pod_dir / f"{entry.container_name}.kubeconfig"
        entry.pod_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(entry.pod_dir, 0o700)
        if not token_file.exists() or token_file.read_text() != token:
            _write_file(token_file, token.encode(), 0o600)
        text = (
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: local\n  cluster:\n    server: https://127.0.0.1:{self.api.port}\n"
            f"    certificate-authority: {self.api.ca_file}\n"
            f"users:\n- name: {entry.namespace}/{account}\n  user:\n    tokenFile: {token_file}\n"
            f"contexts:\n- name: local\n  context: {{cluster: local, user: {entry.namespace}/{account}, "
            f"namespace: {entry.namespace}}}\ncurrent-context: local\n"
        )
        if not kubeconfig.exists() or kubeconfig.read_text() != text:
            _write_file(kubeconfig, text.encode(), 0o600)

    def build_root(self, entry: Managed, container: dict, projector: Projector, root: Path) -> None:
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        for mount in container.get("volumeMounts") or []:
            link = root / mount["mountPath"].strip("/")
            source = projector.volume_dir(mount["name"])
            if mount.get("subPath"):
                source = source / mount["subPath"]
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink():
                link.unlink()
            os.symlink(source, link)

    def refresh_config_copies(self, entry: Managed, ctx: Context) -> None:
        for source, copy in entry.config_copies.items():
            try:
                text = Path(source).read_text()
            except OSError as error:
                raise RunnerError(f"{entry.key}: cannot read its config {source}: {error}") from None
            new = entry.consumer.rewrite_config(text, ctx) if entry.consumer.rewrite_config else text
            if not Path(copy).exists() or Path(copy).read_text() != new:
                _write_file(Path(copy), new.encode(), 0o600)
                log(f"{entry.key}: config {source} changed; translated copy {copy} rewritten")

    def start(self, entry: Managed, pod: dict, container: dict, projector: Projector, ctx: Context) -> None:
        consumer = entry.consumer
        if consumer.program:
            program = consumer.program()
        else:
            binary, reason = consumer_binary(consumer)
            if not binary:
                entry.state = "no-binary"
                entry.message = f"no {consumer.name} binary is built ({reason}); build it with tests/cluster/build-consumers.sh"
                return
            program = [binary]
        entry.binary = program[0]
        self.build_root(entry, container, projector, ctx.root)
        env = projector.env(container)
        command = [expand(c, env) for c in container.get("command") or []]
        args = [expand(a, env) for a in container.get("args") or []]
        if command:
            if os.path.basename(command[0]) not in {os.path.basename(c) for c in consumer.own_commands}:
                raise RunnerError(
                    f"{entry.key}: command {command[0]} is not the image's program ({', '.join(consumer.own_commands)}); the pod runner cannot run it"
                )
            argv = program + command[1:] + args
        else:
            argv = program + list(consumer.entrypoint) + args
        argv = argv[: len(program)] + [translate_arg(a, ctx) for a in argv[len(program) :]]
        entry.config_copies = {}
        if consumer.config_flags:
            for index, arg in enumerate(argv):
                flag, eq, value = arg.partition("=")
                if eq and flag in consumer.config_flags:
                    source, position = value, (index, flag + "=")
                elif arg in consumer.config_flags and index + 1 < len(argv):
                    source, position = argv[index + 1], (index + 1, "")
                else:
                    continue
                copy = entry.pod_dir / "rewritten" / entry.container_name / Path(source).name
                copy.parent.mkdir(parents=True, exist_ok=True)
                entry.config_copies[source] = str(copy)
                argv[position[0]] = position[1] + str(copy)
            self.refresh_config_copies(entry, ctx)
        argv += consumer.extra_args(ctx)
        process_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(ctx.root),
            "LANG": "C.UTF-8",
            "KUBECONFIG": str(ctx.kubeconfig),
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": self.api.port,
            "KUBERNETES_SERVICE_PORT_HTTPS": self.api.port,
            "HOSTNAME": entry.pod_name,
        }
        process_env.update({k: ctx.translate(v) for k, v in env.items()})
        process_env.update(consumer.extra_env(ctx))
        if consumer.own_netns:
            sock_dir = entry.pod_dir / "netns"
            sock_dir.mkdir(exist_ok=True)
            ports = {int(p["containerPort"]) for p in container.get("ports") or []}
            for probe in (container.get("readinessProbe"), container.get("livenessProbe")):
                port = ((probe or {}).get("httpGet") or (probe or {}).get("tcpSocket") or {}).get("port")
                if isinstance(port, int):
                    ports.add(port)
            ports = sorted(ports)
            for bridge in entry.bridges:
                bridge.close()
            entry.bridges = [Bridge(("unix", str(sock_dir / "api.sock")), ("tcp", ("127.0.0.1", int(self.api.port))))]
            entry.bridges += [Bridge(("tcp", (entry.pod_ip, port)), ("unix", str(sock_dir / f"port-{port}.sock"))) for port in ports]
            binds = [
                f"{projector.volume_dir(m['name'])}:{m['mountPath']}"
                for m in container.get("volumeMounts") or []
                if m["mountPath"].startswith(("/var/run/secrets/", "/run/secrets/"))
            ]
            argv = (
                [
                    "unshare",
                    "--net",
                    "--mount",
                    "--",
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "netns-exec",
                    "--api-port",
                    self.api.port,
                    "--sock-dir",
                    str(sock_dir),
                    "--ports",
                    ",".join(map(str, ports)),
                ]
                + [f"--bind={b}" for b in binds]
                + ["--"]
                + argv
            )
        entry.argv = argv
        # Without a readinessProbe kubelet calls a started container ready; the liveness
        # probe is the better signal that the program is up, so it stands in here.
        entry.probe = container.get("readinessProbe") or container.get("livenessProbe")
        entry.ports = {p["name"]: p["containerPort"] for p in container.get("ports") or [] if p.get("name")}
        (entry.pod_dir / f"{entry.container_name}.cmd.json").write_text(json.dumps({"argv": argv, "cwd": str(ctx.root), "env": process_env}, indent=1))
        entry.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(entry.log_path, "ab") as log_file:
            log_file.write(
                f"\n==== {datetime.datetime.now(datetime.timezone.utc).isoformat()} pod runner starts: {shlex.join(argv)} (cwd {ctx.root})\n".encode()
            )
            log_file.flush()
            entry.process = subprocess.Popen(
                argv,
                cwd=ctx.root,
                env=process_env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_set_pdeathsig,
            )
        entry.started = time.time()
        entry.state = "starting"
        entry.message = ""
        entry.pid_file().write_text(f"{entry.process.pid}\n{process_start_time(entry.process.pid)}\n")
        log(f"{entry.key}: started {consumer.name} (pid {entry.process.pid}, pod IP {entry.pod_ip}, log {entry.log_path})")

    def check_listeners(self, entry: Managed) -> None:
        pids = session_pids(entry.process.pid)
        if entry.consumer.own_netns:
            inner = [p for p in pids if p != entry.process.pid and netns_interfaces(p) == {"lo"}]
            # In its own network namespace with only `lo`, 0.0.0.0 is loopback-only; the
            # host side is the bridge on the pod IP.
            entry.listeners = [f"netns-{a}" for a in listeners_of(inner, inner[0])] if inner else []
            entry.listeners += [
                f"bridge-tcp:{b.listener.getsockname()[0]}:{b.listener.getsockname()[1]}" for b in entry.bridges if b.listener.family == socket.AF_INET
            ]
            bad = [a for a in entry.listeners if a.startswith("bridge-") and not is_loopback(a[7:])]
            if not inner and time.time() - entry.started > 5:
                bad = ["(the program is not in a network namespace that has only lo)"]
        else:
            entry.listeners = listeners_of(pids)
            bad = [a for a in entry.listeners if not is_loopback(a)]
        if bad:
            entry.message = f"listened on {', '.join(bad)} (not loopback); killed"
            log(f"{entry.key}: {entry.message}")
            self.kill(entry)
            entry.state = "refused"

    def check_ready(self, entry: Managed) -> None:
        if entry.process is None:
            return
        ok = self.probe(entry)
        if ok:
            if entry.ready_since is None:
                entry.ready_since = time.time()
                log(f"{entry.key}: ready {entry.ready_since - entry.started:.1f}s after start")
            entry.state = "ready"
        else:
            entry.ready_since = None
            entry.state = "starting"

    def probe(self, entry: Managed) -> bool:
        probe = entry.probe
        if not probe:
            return time.time() - entry.started >= 3.0
        if "httpGet" in probe:
            spec = probe["httpGet"]
            port = spec.get("port")
            port = entry.ports.get(port, port) if isinstance(port, str) else port
            scheme = spec.get("scheme", "HTTP").lower()
            url = f"{scheme}://{entry.pod_ip}:{port}{spec.get('path', '/')}"
            try:
                context = ssl._create_unverified_context() if scheme == "https" else None  # kubelet does not verify
                with urllib.request.urlopen(url, timeout=2, context=context) as response:
                    return 200 <= response.status < 400
            except (OSError, urllib.error.URLError):
                return False
        if "tcpSocket" in probe:
            port = probe["tcpSocket"]["port"]
            port = entry.ports.get(port, port) if isinstance(port, str) else port
            try:
                socket.create_connection((entry.pod_ip, int(port)), timeout=2).close()
                return True
            except OSError:
                return False
        return time.time() - entry.started >= 3.0  # exec and grpc probes: alive is ready

    def kill(self, entry: Managed, grace_s: float = 10.0) -> None:
        process = entry.process
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(5)
        entry.last_exit = process.returncode
        entry.process = None
        entry.ready_since = None
        entry.pid_file().unlink(missing_ok=True)

    def stop(self, key: str, remove: bool) -> None:
        entry = self.managed.pop(key)
        self.kill(entry)
        for bridge in entry.bridges:
            bridge.close()
        log(f"{key}: stopped")
        pod_key = f"{entry.namespace}/{entry.pod_name}"
        if remove and not any(f"{m.namespace}/{m.pod_name}" == pod_key for m in self.managed.values()):
            self.projectors.pop(pod_key, None)
            shutil.rmtree(entry.pod_dir, ignore_errors=True)

    def write_state(self, running: bool = True) -> None:
        state = {
            "supervisor_pid": os.getpid(),
            "running": running,
            "updated": time.time(),
            "generation": self.generation,
            "containers": [
                {
                    "key": m.key,
                    "consumer": m.consumer.name,
                    "namespace": m.namespace,
                    "pod": m.pod_name,
                    "container": m.container_name,
                    "pid": m.process.pid if m.process else None,
                    "state": m.state,
                    "message": m.message,
                    "restarts": m.restarts,
                    "last_exit": m.last_exit,
                    "started": m.started,
                    "ready_since": m.ready_since,
                    "pod_ip": m.pod_ip,
                    "listeners": m.listeners,
                    "log": str(m.log_path),
                    "argv": m.argv,
                    "pod_dir": str(m.pod_dir),
                    "config_copies": m.config_copies,
                }
                for m in self.managed.values()
            ],
        }
        _write_file(state_path(), json.dumps(state, indent=1).encode(), 0o600)


def _write_file(path: Path, content: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(content)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- commands


def state_path() -> Path:
    return CLUSTER_DIR / "run" / "pod-runner.json"


def read_state() -> dict:
    try:
        return json.loads(state_path().read_text())
    except (OSError, ValueError):
        return {}


def supervisor_pid() -> int | None:
    path = CLUSTER_DIR / "run" / "pod-runner.pid"
    try:
        pid_text, start = path.read_text().split()[:2]
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if process_start_time(pid) != start:
        return None
    return pid


def log_tail(path: str, lines: int = 25) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def selected(container: dict, only: set[str] | None) -> bool:
    """--only matches a consumer name, a namespace, or NAMESPACE/POD."""
    if not only:
        return True
    return any(o in (container["consumer"], container["namespace"]) or container["key"].startswith(o.rstrip("/") + "/") for o in only)


def command_up(timeout_s: float, only: set[str] | None = None) -> int:
    Api()  # fails with one sentence when there is no cluster
    began = time.time()
    pid = supervisor_pid()
    if pid is None:
        (CLUSTER_DIR / "run").mkdir(parents=True, exist_ok=True)
        (CLUSTER_DIR / "logs").mkdir(parents=True, exist_ok=True)
        supervisor_log = open(CLUSTER_DIR / "logs" / "pod-runner.log", "ab")
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "supervise"],
            stdin=subprocess.DEVNULL,
            stdout=supervisor_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=str(CLUSTER_DIR),
        )
        (CLUSTER_DIR / "run" / "pod-runner.pid").write_text(f"{process.pid}\n{process_start_time(process.pid)}\n")
        pid = process.pid
        log(f"started the supervisor (pid {pid}, log {CLUSTER_DIR / 'logs' / 'pod-runner.log'})")
    deadline = time.time() + timeout_s
    # Two reconciles after this call began: every pod that exists now has been seen.
    first_generation = None
    while True:
        if supervisor_pid() is None:
            print(log_tail(str(CLUSTER_DIR / "logs" / "pod-runner.log")), file=sys.stderr)
            raise RunnerError("the pod runner's supervisor exited; its log tail is above.")
        state = read_state()
        if state.get("updated", 0) > began:
            if first_generation is None:
                first_generation = state.get("generation", 0)
            elif state.get("generation", 0) >= first_generation + 1:
                containers = [c for c in state.get("containers", []) if selected(c, only)]
                missing = sorted(o for o in (only or ()) if not any(selected(c, {o}) for c in containers))
                failed = [
                    c
                    for c in containers
                    if c["state"] in ("crashed", "refused", "no-binary") or (c["restarts"] and c["started"] >= began - 1 and c["state"] != "ready")
                ]
                if failed:
                    for c in failed:
                        if c["state"] != "no-binary":
                            print(f"---- {c['key']} ({c['consumer']}): last lines of {c['log']}", file=sys.stderr)
                            print(log_tail(c["log"]), file=sys.stderr)
                    c = failed[0]
                    raise RunnerError(
                        f"{c['consumer']} of pod {c['namespace']}/{c['pod']} did not start: {c['message'] or c['state']} (its log tail is above)."
                    )
                if not missing and all(c["state"] == "ready" for c in containers):
                    print_table(state)
                    return 0
        if time.time() > deadline:
            state = read_state()
            if only and not any(selected(c, only) for c in state.get("containers", [])):
                raise RunnerError(
                    f"no running pod's image maps to {', '.join(sorted(only))} within {timeout_s:.0f}s "
                    "(is its Deployment/StatefulSet/DaemonSet applied, and did kwok mark the pod Running?)."
                )
            waiting = [c for c in state.get("containers", []) if c["state"] != "ready" and selected(c, only)]
            for c in waiting:
                print(f"---- {c['key']} ({c['consumer']}): last lines of {c['log']}", file=sys.stderr)
                print(log_tail(c["log"]), file=sys.stderr)
            names = (
                ", ".join(f"{c['consumer']} ({c['namespace']}/{c['pod']}: {c['state']} {c['message']})".strip() for c in waiting)
                or "the supervisor's first reconcile"
            )
            raise RunnerError(f"not ready within {timeout_s:.0f}s: {names}; the log tails are above.")
        time.sleep(0.3)


def print_table(state: dict) -> None:
    rows = state.get("containers", [])
    print(f"{'POD/CONTAINER':58} {'CONSUMER':24} {'PID':>7} {'STATE':9} {'RESTARTS':>8} LISTENERS")
    for c in rows:
        print(f"{c['key']:58} {c['consumer']:24} {str(c['pid'] or '-'):>7} {c['state']:9} {c['restarts']:>8} {' '.join(c['listeners'])}")
    if not rows:
        print("(no running pod's image maps to a local program)")


def command_status(as_json: bool) -> int:
    pid = supervisor_pid()
    state = read_state()
    if as_json:
        print(json.dumps({"supervisor_pid": pid, **state}, indent=1))
    else:
        print(f"pod runner: {'running (pid %d)' % pid if pid else 'not running'}")
        if pid:
            print_table(state)
    if not pid:
        return 3
    return 0 if all(c["state"] == "ready" for c in state.get("containers", [])) else 1


def command_down() -> int:
    pid = supervisor_pid()
    if pid:
        os.kill(pid, signal.SIGTERM)
        for _ in range(300):
            if process_start_time(pid) is None:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
        log(f"stopped the supervisor (pid {pid})")
    # Anything a killed supervisor left behind (pid + start time guard against reuse).
    for pid_file in (CLUSTER_DIR / "run" / "pods").glob("*.pid"):
        try:
            child, start = pid_file.read_text().split()[:2]
            if process_start_time(int(child)) == start:
                os.killpg(int(child), signal.SIGKILL)
                log(f"killed leftover {pid_file.stem} (pid {child})")
        except (OSError, ValueError):
            pass
        pid_file.unlink(missing_ok=True)
    (CLUSTER_DIR / "run" / "pod-runner.pid").unlink(missing_ok=True)
    shutil.rmtree(CLUSTER_DIR / "pods", ignore_errors=True)  # projected Secrets hold private keys
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start (or reuse) the supervisor; wait until every consumer is ready")
    up.add_argument("--timeout", type=float, default=float(os.environ.get("MTLS_POD_RUNNER_TIMEOUT", 120)))
    up.add_argument(
        "--only",
        action="append",
        metavar="CONSUMER",
        help="wait for (and judge) only these: a consumer name, a namespace or NAMESPACE/POD (repeatable); the others keep running",
    )
    sub.add_parser("down", help="stop the supervisor and every consumer it started")
    status = sub.add_parser("status", help="the consumers and their state (exit 0 when all are ready)")
    status.add_argument("--json", action="store_true")
    sub.add_parser("supervise", help=argparse.SUPPRESS)
    netns = sub.add_parser("netns-exec", help=argparse.SUPPRESS)
    netns.add_argument("--api-port", type=int, required=True)
    netns.add_argument("--sock-dir", required=True)
    netns.add_argument("--ports", default="")
    netns.add_argument("--bind", action="append", default=[])
    netns.add_argument("program", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "netns-exec":
        program = args.program[1:] if args.program[:1] == ["--"] else args.program
        return netns_exec(args.api_port, args.sock_dir, [int(p) for p in args.ports.split(",") if p], args.bind, program)
    try:
        if args.command == "up":
            return command_up(args.timeout, set(args.only or []) or None)
        if args.command == "down":
            return command_down()
        if args.command == "status":
            return command_status(args.json)
        Supervisor().run()
        return 0
    except RunnerError as error:
        log(f"ERROR: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())

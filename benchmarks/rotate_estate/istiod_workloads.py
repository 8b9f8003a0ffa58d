# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The real istiod on cluster B (tests/cluster/pod_runner.py, its chart rendered and applied as
tests/cluster/tests/test_consumers.py does) and workload identities that get certificates from
it with our Go istio-csr-client (a CSR with a real service-account token, as istio-agent sends).

istiod runs on B, not on the shared cluster A: on A, istio-system/cacerts belongs to the local
estate (and its istiod), which this benchmark must not rotate.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from kubernetes import client

from estate import PYTHON, REPO

sys.path.insert(0, os.path.join(REPO, "tests", "cluster", "tests"))
import test_consumers  # noqa: E402

RUNNER = os.path.join(REPO, "tests", "cluster", "pod_runner.py")
THREADS = 8
WORKLOAD_NAMESPACES = 4
PLACEHOLDER_MARGIN = 20
# istiod takes a new root from cacerts only with ISTIO_MULTIROOT_MESH (as in
# tests/cluster/tests/test_rotation_consumers.py): a mesh that rotates its root runs it so.
ISTIOD_CHART = test_consumers.ISTIOD_CHART._replace(values=test_consumers.ISTIOD_CHART.values + ("env.ISTIO_MULTIROOT_MESH=true",))


def _pod_runner(env, *args, timeout=300):
    return subprocess.run([PYTHON, RUNNER] + list(args), env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _pod_ip_index(ip):
    third, fourth = (int(part) for part in ip.split(".")[2:])
    return third * 256 + fourth


def _hold_pod_ips_of_a(core_a, core_b, namespace):
    """The pod runner binds each pod's listeners to its kwok pod IP, and both clusters hand
    out 127.201.x.y from the start: placeholder pods on B (running nothing) take the IPs A's
    pods hold, plus a margin, so that istiod on B gets an address no pod of A uses."""
    used = [_pod_ip_index(p.status.pod_ip) for p in core_a.list_pod_for_all_namespaces().items if p.status.pod_ip]
    count = max(used or [0]) + PLACEHOLDER_MARGIN
    node = core_b.list_node().items[0].metadata.name
    body = {"spec": {"nodeName": node, "containers": [{"name": "placeholder", "image": "registry.k8s.io/pause:3.10"}]}}
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(lambda i: core_b.create_namespaced_pod(namespace, dict(body, metadata={"name": "ip-%04d" % i})), range(count)))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if all(p.status.pod_ip for p in core_b.list_namespaced_pod(namespace).items):
            return count
        time.sleep(1)
    raise SystemExit("rotate_estate: the placeholder pods on cluster B got no IPs within 120 s")


def start_istiod(core_a, api_b, env_b, workdir, placeholder_namespace):
    """istiod on B, once site.yml wrote istio-system/cacerts there; returns its pod runner entry."""
    core_b = client.CoreV1Api(api_b)
    _hold_pod_ips_of_a(core_a, core_b, placeholder_namespace)
    tmp = Path(tempfile.mkdtemp(prefix="istiod-chart-", dir=workdir))
    documents = test_consumers.render_module_chart(tmp, ISTIOD_CHART)
    test_consumers.apply_documents(api_b, documents)
    started = _pod_runner(env_b, "up", "--only", "istiod", "--timeout", "240", timeout=330)
    if started.returncode != 0:
        raise SystemExit("rotate_estate: the pod runner could not start istiod on cluster B:\n%s" % started.stderr[-3000:])
    state = json.loads(_pod_runner(env_b, "status", "--json").stdout)
    entries = [c for c in state.get("containers", []) if c["consumer"] == "istiod" and c["state"] == "ready"]
    if not entries:
        raise SystemExit("rotate_estate: istiod is not ready on cluster B: %s" % state)
    a_ips = {p.status.pod_ip for p in core_a.list_pod_for_all_namespaces().items}
    if entries[0]["pod_ip"] in a_ips:
        raise SystemExit("rotate_estate: istiod on B got %s, which a pod of cluster A holds too" % entries[0]["pod_ip"])
    return entries[0]


def stop_istiod(env_b):
    _pod_runner(env_b, "down", timeout=120)


def workloads(ns, count):
    """count (namespace, service account) identities across WORKLOAD_NAMESPACES namespaces."""
    return [("%s-wl%d" % (ns, index % WORKLOAD_NAMESPACES), "wl-%03d" % index) for index in range(count)]


def prepare(core_b, identities, workdir):
    """Service accounts and istio-ca tokens (not timed: the kubelet's work, not istiod's)."""
    for namespace in sorted({namespace for namespace, _ in identities}):
        core_b.create_namespace({"metadata": {"name": namespace}})

    def one(identity):
        namespace, account = identity
        core_b.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
        token = core_b.create_namespaced_service_account_token(account, namespace, {"spec": {"audiences": ["istio-ca"], "expirationSeconds": 7200}})
        path = os.path.join(workdir, "tokens", "%s.%s" % identity)
        with open(path, "w") as handle:
            handle.write(token.status.token)

    os.makedirs(os.path.join(workdir, "tokens"), exist_ok=True)
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(one, identities))


def request_all(istiod, identities, trust_path, workdir, label):
    """One CSR per identity to istiod, THREADS at a time; returns (seconds, {identity: chain PEM})."""
    test_consumers.go_tool(test_consumers.CSR_CLIENT_SRC, "istio-csr-client")  # built before the clock starts

    def one(identity):
        out = Path(workdir) / label / ("%s.%s" % identity)
        out.mkdir(parents=True)
        spiffe = "spiffe://%s/ns/%s/sa/%s" % (test_consumers.TRUST_DOMAIN, identity[0], identity[1])
        token = Path(workdir) / "tokens" / ("%s.%s" % identity)
        result = test_consumers.request_certificate(istiod, Path(trust_path), token, spiffe, out, "-ttl", "1h")
        if result.returncode != 0:
            raise SystemExit("rotate_estate: istiod refused the CSR of %s: %s" % (spiffe, result.stderr[-500:]))
        return identity, (out / "cert-chain.pem").read_bytes()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        chains = dict(pool.map(one, identities))
    return time.perf_counter() - started, chains


def chained_to(chains, root_path):
    """How many chains end at the root of root_path: leaf signed by the chain's intermediate,
    that intermediate signed by this root."""
    with open(root_path, "rb") as handle:
        root = x509.load_pem_x509_certificate(handle.read())
    good = 0
    for pem in chains.values():
        certificates = x509.load_pem_x509_certificates(pem)
        try:
            certificates[0].verify_directly_issued_by(certificates[1])
            certificates[1].verify_directly_issued_by(root)
        except (ValueError, TypeError, IndexError, InvalidSignature):
            continue
        good += 1
    return good

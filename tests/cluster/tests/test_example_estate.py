# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""inventories/example converges on the local control plane, as inventories/local does.

playbooks/site.yml runs with `-i inventories/example` itself - its hosts, groups and
group_vars as a user has them - against the real kube-apiserver of tests/cluster. The
example describes two remote clusters and a remote PKI host, so the test overrides, as
extra vars, only what ties it to those machines:

* connection: `ansible_connection=local`, `mtls_kubeconfig` = the local cluster's
  kubeconfig, `mtls_pki_dir` = a temporary directory (one PKI for both clusters, as in
  the example), the two vault variables (`vault_mtls_root_key_passphrase`,
  `vault_mtls_intermediate_key_passphrase`) with throw-away random values;
* what would reach a non-loopback address: `cert_manager_install_method: none` (the
  example installs cert-manager's chart from https://charts.jetstack.io; the
  cert-manager and trust-manager CRDs are loaded on the local control plane);
* isolation from the local estate, unavoidable on one API server: the example keeps
  the roles' default places - the Istio root namespace istio-system (the `cacerts`
  Secret and the mesh-wide PeerAuthentication), the `spire` and `cert-manager`
  namespaces, the ClusterIssuer `mtls-ca` and the Bundle `mtls-trust-bundle` - which
  are exactly where inventories/local (and the cluster tests that run istiod, SPIRE and
  cert-manager from them) keeps its own objects. Writing the example's CAs and a
  mesh-wide STRICT there would break every other test on the shared cluster, so these
  five names get a `zt-example-` prefix (ISOLATION below). Nothing else is overridden:
  modes, environments, the roles enabled, the workload namespaces and every other
  variable are the example's.

The two clusters share namespace names (payments, shop, ...), so they converge one after
the other (`--limit`): each is converged from nothing, converged again (changed=0 in its
PLAY RECAP), checked on the real objects - the mesh-wide PeerAuthentication STRICT in
production and PERMISSIVE in staging, the namespace modes, every Secret the roles
delivered chaining to the example PKI's root (openssl verify) - and then removed.

What the example expects to exist already, because its application teams own it, is
created first (FIXTURES): the Gateway edge/public and the Ingress legacy/legacy-shop it
only adds client-certificate validation to, and the Deployment payments/api it restarts.

Clean-up: the namespaces the test creates carry the label MARKER and are deleted (with
their contents) at the end and before the start (leftovers of an interrupted run); in a
namespace that existed before (istio-system, for the example's Istio ingress gateway)
only the objects the example writes there are deleted, as are its cluster-scoped
objects. Needs the local control plane (tests/cluster/up.sh); about 2-3 min.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kubernetes import client
from kubernetes.client.rest import ApiException

CHECKOUT = Path(__file__).resolve().parents[3]
INVENTORY = "inventories/example"
MARKER = {"mtls.zerotrust.io/test": "example-estate"}
# Where the example keeps the roles' defaults, which inventories/local uses too.
ISOLATION = {
    "istio_mtls_root_namespace": "zt-example-istio-system",
    "spire_namespace": "zt-example-spire",
    "cert_manager_namespace": "zt-example-cert-manager",
    "cert_manager_cluster_issuer_name": "zt-example-mtls-ca",
    "cert_manager_trust_bundle_name": "zt-example-mtls-trust-bundle",
}
# Namespaces other tests keep: the example may write named objects there, never delete them.
SHARED_NAMESPACES = {"istio-system"}
EXPECTED_MESH_MODE = {"production": "STRICT", "staging": "PERMISSIVE"}
CERT_KEYS = ("tls.crt", "ca.crt", "bundle.crt", "ca-cert.pem", "cert-chain.pem", "root-cert.pem")
RECAP = r"(?m)^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)"
TASK_OUTPUT = re.compile(r"^(?:TASK|RUNNING HANDLER) \[([^\]]+)\](.*?)(?=^(?:TASK|RUNNING HANDLER) \[|^PLAY RECAP|\Z)", re.M | re.S)


def _inventory():
    bindir = os.path.dirname(sys.executable)
    out = subprocess.run(
        [os.path.join(bindir, "ansible-inventory"), "-i", INVENTORY, "--list"],
        cwd=CHECKOUT,
        env=dict(os.environ, ANSIBLE_CONFIG=str(CHECKOUT / "ansible.cfg")),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return json.loads(out)


def _hosts_of(inventory, group):
    hosts = list(inventory.get(group, {}).get("hosts", []))
    for child in inventory.get(group, {}).get("children", []):
        hosts += _hosts_of(inventory, child)
    return hosts


INVENTORY_DATA = _inventory()
CLUSTERS = [(host, env) for env in ("production", "staging") for host in _hosts_of(INVENTORY_DATA, env)]


def _vars(host):
    merged = dict(INVENTORY_DATA["_meta"]["hostvars"][host])
    merged.update(ISOLATION)
    return merged


def _design_namespaces(v):
    """Every namespace the roles write into for this cluster."""
    names = {v["istio_mtls_root_namespace"]}
    if v.get("mtls_spire_enabled"):
        names.add(v["spire_namespace"])
    if v.get("mtls_cert_manager_enabled"):
        names.add(v["cert_manager_namespace"])
        names.update(c["namespace"] for c in v.get("cert_manager_certificates", []))
    names.update(n["name"] for n in v.get("istio_mtls_namespaces", []))
    names.update(d["namespace"] for d in v.get("istio_mtls_destination_rules", []))
    names.update(w["namespace"] for w in v.get("istio_mtls_restart_workloads", []))
    if v.get("mtls_ingress_enabled"):
        names.update(g["namespace"] for g in v.get("ingress_mtls_gateways", []) + v.get("ingress_mtls_nginx_ingresses", []))
        names.update(g.get("namespace", "istio-system") for g in v.get("ingress_mtls_istio_gateways", []))
    if v.get("mtls_client_certs_enabled"):
        names.update(c["namespace"] for c in v.get("client_certs_clients", []) if "namespace" in c)
    return names


def _expected_secrets(v):
    """(namespace, name) of every Secret carrying certificates that site.yml delivers."""
    found = [(v["istio_mtls_root_namespace"], "cacerts")]
    if v.get("mtls_spire_enabled"):
        found.append((v["spire_namespace"], "spire-upstream"))
    if v.get("mtls_cert_manager_enabled"):
        found.append((v["cert_manager_namespace"], "mtls-intermediate-ca"))
    if v.get("mtls_ingress_enabled"):
        for gateway in v.get("ingress_mtls_istio_gateways", []):
            namespace = gateway.get("namespace", "istio-system")
            found += [(namespace, gateway["credential_name"]), (namespace, gateway["credential_name"] + "-cacert")]
        found += [(i["namespace"], "mtls-client-ca") for i in v.get("ingress_mtls_nginx_ingresses", [])]
    if v.get("mtls_client_certs_enabled"):
        found += [(c["namespace"], c.get("secret_name", c["name"] + "-mtls")) for c in v.get("client_certs_clients", []) if "namespace" in c]
    return found


class Cluster:
    def __init__(self, api):
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.net = client.NetworkingV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.rbac = client.RbacAuthorizationV1Api(api)

    @staticmethod
    def _ignore_404(call, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except ApiException as error:
            if error.status != 404:
                raise
            return None

    def namespace(self, name):
        return self._ignore_404(self.core.read_namespace, name)

    def clean(self, every_vars):
        """Delete what the example wrote: marked namespaces, its objects in shared ones, cluster-scoped objects."""
        marked = self.core.list_namespace(label_selector=",".join("%s=%s" % kv for kv in MARKER.items())).items
        for namespace in marked:
            self._ignore_404(self.core.delete_namespace, namespace.metadata.name)
        for v in every_vars:
            for gateway in v.get("ingress_mtls_istio_gateways", []):
                namespace = gateway.get("namespace", "istio-system")
                if namespace in SHARED_NAMESPACES:
                    for name in (gateway["credential_name"], gateway["credential_name"] + "-cacert"):
                        self._ignore_404(self.core.delete_namespaced_secret, name, namespace)
                    self._ignore_404(self.custom.delete_namespaced_custom_object, "networking.istio.io", "v1", namespace, "gateways", gateway["name"])
            for spiffe_id in v.get("spire_cluster_spiffe_ids", []):
                self._ignore_404(self.custom.delete_cluster_custom_object, "spire.spiffe.io", "v1alpha1", "clusterspiffeids", spiffe_id["name"])
        self._ignore_404(self.custom.delete_cluster_custom_object, "cert-manager.io", "v1", "clusterissuers", ISOLATION["cert_manager_cluster_issuer_name"])
        self._ignore_404(self.custom.delete_cluster_custom_object, "trust.cert-manager.io", "v1alpha1", "bundles", ISOLATION["cert_manager_trust_bundle_name"])
        for kind in ("server", "agent"):
            name = "zerotrust-mtls-spire-%s-%s" % (kind, ISOLATION["spire_namespace"])
            self._ignore_404(self.rbac.delete_cluster_role, name)
            self._ignore_404(self.rbac.delete_cluster_role_binding, name)
        deadline = time.monotonic() + 180
        names = [n.metadata.name for n in marked]
        while names and time.monotonic() < deadline:
            names = [n for n in names if self.namespace(n) is not None]
            time.sleep(1)
        assert not names, "namespaces of the example estate still terminating after 180 s: %s" % names

    def prepare(self, v):
        """The namespaces (marked) and the application teams' objects the example expects."""
        for name in sorted(_design_namespaces(v)):
            existing = self.namespace(name)
            if existing is None:
                self.core.create_namespace({"metadata": {"name": name, "labels": dict(MARKER)}})
            elif name not in SHARED_NAMESPACES and (existing.metadata.labels or {}).get(next(iter(MARKER))) != MARKER[next(iter(MARKER))]:
                pytest.fail("namespace %s exists and is not this test's: refusing to converge the example estate into it" % name, pytrace=False)
        if v.get("mtls_ingress_enabled"):
            for gateway in v.get("ingress_mtls_gateways", []):
                if "spec" not in gateway:
                    self.custom.create_namespaced_custom_object(
                        "gateway.networking.k8s.io",
                        "v1",
                        gateway["namespace"],
                        "gateways",
                        {
                            "apiVersion": "gateway.networking.k8s.io/v1",
                            "kind": "Gateway",
                            "metadata": {"name": gateway["name"]},
                            "spec": {
                                "gatewayClassName": "istio",
                                "listeners": [
                                    {
                                        "name": "https",
                                        "port": 443,
                                        "protocol": "HTTPS",
                                        "hostname": "shop.example.com",
                                        "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "public-tls"}]},
                                    }
                                ],
                            },
                        },
                        field_manager="application-team",
                    )
            for ingress in v.get("ingress_mtls_nginx_ingresses", []):
                if "spec" not in ingress:
                    self.net.create_namespaced_ingress(
                        ingress["namespace"],
                        {
                            "metadata": {"name": ingress["name"]},
                            "spec": {
                                "ingressClassName": "nginx",
                                "rules": [
                                    {
                                        "host": "legacy.example.com",
                                        "http": {
                                            "paths": [
                                                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": ingress["name"], "port": {"number": 8080}}}}
                                            ]
                                        },
                                    }
                                ],
                            },
                        },
                        field_manager="application-team",
                    )
        for workload in v.get("istio_mtls_restart_workloads", []):
            assert workload.get("kind", "Deployment") == "Deployment", workload
            labels = {"app": workload["name"]}
            # No replicas: the restart annotation is on the pod template; kwok need run nothing.
            self.apps.create_namespaced_deployment(
                workload["namespace"],
                {
                    "metadata": {"name": workload["name"]},
                    "spec": {
                        "replicas": 0,
                        "selector": {"matchLabels": labels},
                        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]}},
                    },
                },
                field_manager="application-team",
            )


@pytest.fixture(scope="module")
def cluster(admin_api):
    return Cluster(admin_api)


@pytest.fixture(scope="module")
def estate(tmp_path_factory, kubeconfig_path):
    """The overrides of this file's docstring, one PKI directory for both clusters."""
    work = tmp_path_factory.mktemp("example-estate")
    overrides = dict(
        ISOLATION,
        ansible_connection="local",
        mtls_kubeconfig=kubeconfig_path,
        mtls_pki_dir=str(work / "pki"),
        cert_manager_install_method="none",
        vault_mtls_root_key_passphrase="throwaway-root-" + secrets.token_urlsafe(12),
        vault_mtls_intermediate_key_passphrase="throwaway-intermediate-" + secrets.token_urlsafe(12),
    )
    extra = work / "overrides.json"
    extra.write_text(json.dumps(overrides))
    extra.chmod(0o600)
    return dict(work=work, extra=str(extra), pki=work / "pki")


def _site(estate, host, log_name):
    bindir = os.path.dirname(sys.executable)
    env = dict(
        os.environ, ANSIBLE_CONFIG=str(CHECKOUT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PATH=bindir + os.pathsep + os.environ["PATH"]
    )
    proc = subprocess.run(
        [os.path.join(bindir, "ansible-playbook"), "-i", INVENTORY, "playbooks/site.yml", "--limit", host, "-e", "@" + estate["extra"]],
        cwd=CHECKOUT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1200,
    )
    (estate["work"] / log_name).write_text(proc.stdout)
    assert proc.returncode == 0, "site.yml -i %s --limit %s failed (rc %d, log %s):\n%s" % (
        INVENTORY,
        host,
        proc.returncode,
        estate["work"] / log_name,
        proc.stdout[-5000:],
    )
    assert "no hosts matched" not in proc.stdout
    recap = {m.group(1): tuple(int(g) for g in m.groups()[1:]) for m in re.finditer(RECAP, proc.stdout)}
    assert set(recap) == {host}, "PLAY RECAP of %s: %s" % (host, recap)
    return proc.stdout, recap[host]


def _changes(output):
    """'task: changed: [host] => (item=...)' of every change a run reported, for a failure message."""
    return ["%s: %s" % (task, line) for task, body in TASK_OUTPUT.findall(output) for line in body.splitlines() if line.startswith("changed:")]


def _certs(pem):
    return x509.load_pem_x509_certificates(pem) if b"-----BEGIN CERTIFICATE-----" in pem else []


def _openssl_verify(root_path, cert, untrusted, work):
    cert_path, chain_path = work / "cert.pem", work / "untrusted.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    chain_path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in untrusted) or cert.public_bytes(serialization.Encoding.PEM))
    proc = subprocess.run(
        ["openssl", "verify", "-CAfile", str(root_path), "-untrusted", str(chain_path), str(cert_path)], capture_output=True, text=True, check=False
    )
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


@pytest.mark.parametrize("host,environment", CLUSTERS, ids=[h for h, _ in CLUSTERS])
def test_example_cluster_converges_with_its_environment_mode(host, environment, cluster, estate):
    v = _vars(host)
    assert v["mtls_environment"] == environment, "group %s sets mtls_environment=%s" % (environment, v["mtls_environment"])
    cluster.clean([_vars(h) for h, _ in CLUSTERS])
    cluster.prepare(v)
    try:
        started = time.monotonic()
        converge, first = _site(estate, host, host + "-converge.log")
        rerun, second = _site(estate, host, host + "-rerun.log")
        print("\n%s: converge %s, rerun %s (changed/unreachable/failed), %.0f s" % (host, first, second, time.monotonic() - started))
        assert first[0] > 0, "the first converge of %s changed nothing" % host
        assert second[0] == 0, "the site.yml rerun changed on %s: %s" % (host, _changes(rerun))
        _check_objects(cluster, estate, host, environment, v)
    finally:
        cluster.clean([_vars(h) for h, _ in CLUSTERS])


def _peer_authentication(cluster, namespace, name="default"):
    return cluster.custom.get_namespaced_custom_object("security.istio.io", "v1", namespace, "peerauthentications", name)


def _check_objects(cluster, estate, host, environment, v):
    root_ns = v["istio_mtls_root_namespace"]
    # The production / staging split on the real objects.
    mesh = _peer_authentication(cluster, root_ns)
    assert mesh["spec"]["mtls"]["mode"] == EXPECTED_MESH_MODE[environment], (host, mesh["spec"])
    for namespace in v.get("istio_mtls_namespaces", []):
        if namespace.get("mode"):
            policy = _peer_authentication(cluster, namespace["name"])
            assert policy["spec"]["mtls"]["mode"] == namespace["mode"], (host, namespace["name"], policy["spec"])
        else:
            assert cluster._ignore_404(_peer_authentication, cluster, namespace["name"]) is None, "%s/%s should inherit the mesh-wide mode" % (
                host,
                namespace["name"],
            )

    # The example PKI: its root, this cluster's intermediate under it.
    pki = estate["pki"]
    root_path = pki / "root" / "ca.crt"
    root = x509.load_pem_x509_certificate(root_path.read_bytes())
    common_name = root.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert common_name == v["mtls_root_common_name"], common_name
    intermediate = x509.load_pem_x509_certificate((pki / "clusters" / v["mtls_cluster_name"] / "ca.crt").read_bytes())

    # Every Secret the roles delivered chains to that root (openssl verify), and carries it.
    work = estate["work"]
    for namespace, name in _expected_secrets(v):
        secret = cluster.core.read_namespaced_secret(name, namespace)
        certs = {key: _certs(base64.b64decode(secret.data[key])) for key in CERT_KEYS if key in (secret.data or {})}
        everything = [c for chain in certs.values() for c in chain]
        assert everything, "%s/%s holds no certificate" % (namespace, name)
        assert root in everything, "%s/%s does not carry the example root" % (namespace, name)
        for cert in everything:
            ok, message = _openssl_verify(root_path, cert, everything, work)
            assert ok, "%s/%s: %s does not chain to the example root: %s" % (namespace, name, cert.subject.rfc4514_string(), message)
    cacerts = cluster.core.read_namespaced_secret("cacerts", root_ns)
    assert _certs(base64.b64decode(cacerts.data["ca-cert.pem"]))[0] == intermediate, "cacerts does not deliver the intermediate of %s" % v["mtls_cluster_name"]
    istio_key = serialization.load_pem_private_key(base64.b64decode(cacerts.data["ca-key.pem"]), None)
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert istio_key.public_key().public_bytes(*spki) == intermediate.public_key().public_bytes(*spki), "ca-key.pem does not match ca-cert.pem"

    # The application teams' objects got the client-certificate settings, and kept their own.
    for gateway in v.get("ingress_mtls_gateways", []) if v.get("mtls_ingress_enabled") else []:
        live = cluster.custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", gateway["namespace"], "gateways", gateway["name"])
        validation = live["spec"]["tls"]["frontend"]["default"]["validation"]
        assert validation["mode"] == gateway.get("mode", "AllowValidOnly"), validation
        assert validation["caCertificateRefs"][0]["name"] == "mtls-client-ca", validation
        assert live["spec"]["gatewayClassName"] and live["spec"]["listeners"], "the Gateway lost its own spec"
        bundle = cluster.core.read_namespaced_config_map("mtls-client-ca", gateway["namespace"])
        for cert in _certs(bundle.data["ca.crt"].encode()):
            ok, message = _openssl_verify(root_path, cert, _certs(bundle.data["ca.crt"].encode()), work)
            assert ok, "ConfigMap %s/mtls-client-ca: %s" % (gateway["namespace"], message)
    for ingress in v.get("ingress_mtls_nginx_ingresses", []) if v.get("mtls_ingress_enabled") else []:
        live = cluster.net.read_namespaced_ingress(ingress["name"], ingress["namespace"])
        annotations = live.metadata.annotations or {}
        assert annotations.get("nginx.ingress.kubernetes.io/auth-tls-secret") == "%s/mtls-client-ca" % ingress["namespace"], annotations
        assert annotations.get("nginx.ingress.kubernetes.io/auth-tls-verify-client") == ingress.get("verify_client", "on")
    fingerprint = hashlib.sha256(intermediate.public_bytes(serialization.Encoding.DER)).hexdigest()
    for workload in v.get("istio_mtls_restart_workloads", []):
        live = cluster.apps.read_namespaced_deployment(workload["name"], workload["namespace"])
        annotations = live.spec.template.metadata.annotations or {}
        assert annotations.get("mtls.zerotrust.io/ca-fingerprint") == fingerprint, annotations

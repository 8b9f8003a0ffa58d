# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The root CA rotation of a site.yml estate of two clusters in one command, with real
handshakes throughout.

Two clusters, each its own local control plane (the shared one, A, and a second instance
of tests/cluster started here on other loopback ports, B), one root, one intermediate per
cluster, converged by playbooks/site.yml: per cluster Istio cacerts, an Istio ingress
gateway credential (server certificate of the cluster's intermediate, ca.crt = the trusted
roots) and client certificates of the client_certs role (Secrets); in A also an
ingress-nginx edge (client CA Secret, ca.crt + ca.crl). One client of A is revoked with
playbooks/revoke.yml, so every CA has a CRL.

Real nginx servers are built from the Secrets and reloaded whenever a Secret changes, as
the controllers do: the edge of A (ssl_verify_client on, ssl_crl) and one "gateway
workload" per cluster serving its credential and verifying clients against its ca.crt.
Each live client re-reads its Secret (certificate, key and trusted roots) whenever it
changes and does full mutual-TLS handshakes in a loop: the client of A with the edge of A,
the gateway of A and the gateway of B; the client of B with both gateways - so workloads
of A and B handshake with each other both ways. The revoked certificate (kept from before
its revocation) tries the edge too. Then one command,
`ansible-playbook -i <inventory> playbooks/rotate_root_ca.yml`, rotates both clusters.

Asserted: not one handshake of a live client fails, each client succeeds with a
certificate of the old and of the new intermediate of its cluster, the revoked
certificate is refused every time (the CRLs travel through the rotation: nginx checks a
CRL for every CA of a chain), the edge bundle goes old -> old + new -> new (2 -> 4 -> 2
certificates), Istio's cacerts of both clusters ends on the new root alone, and site.yml
afterwards reports changed=0 for both clusters.
"""

import base64
import os
import re
import ssl
import subprocess
import sys
import threading
import time
import uuid

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

import harness

sys.path.insert(0, os.path.join(harness.REPO, "tests", "cluster"))
import cluster_ports  # noqa: E402  pylint: disable=wrong-import-position

KUBECONFIG = os.environ.get("MTLS_KUBECONFIG")

pytestmark = pytest.mark.skipif(not KUBECONFIG, reason="MTLS_KUBECONFIG is not set: the local control plane (tests/cluster/up.sh) is not running")

REVOKED_CLIENT = "gamma"
CERT_MANAGER_CERTIFICATE = "api"
POLL_SECONDS = 0.2
CLUSTER_UP = os.path.join(harness.REPO, "tests", "cluster", "up.sh")
CLUSTER_DOWN = os.path.join(harness.REPO, "tests", "cluster", "down.sh")


def _fingerprint(cert):
    return cert.fingerprint(hashes.SHA256()).hex()


def _write(path, content):
    with open(path + ".tmp", "wb") as handle:
        handle.write(content)
    os.replace(path + ".tmp", path)


class SecretPoller(object):
    """Reads one Secret every POLL_SECONDS; calls on_change(data) when its resourceVersion moves."""

    def __init__(self, core, namespace, name, on_change):
        self.core, self.namespace, self.name, self.on_change = core, namespace, name, on_change
        self.version = None
        self.errors = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def poll(self):
        from kubernetes.client.rest import ApiException

        try:
            secret = self.core.read_namespaced_secret(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        if secret.metadata.resource_version != self.version:
            self.on_change(dict((k, base64.b64decode(v)) for k, v in (secret.data or {}).items()))
            self.version = secret.metadata.resource_version

    def _loop(self):
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # pylint: disable=broad-except
                self.errors.append(str(exc))
            time.sleep(POLL_SECONDS)

    def run(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(10)


class SecretNginx(object):
    """nginx requiring a client certificate, built from a Secret and reloaded when it changes
    (what ingress-nginx and a gateway do with theirs): the client CA from ``ca_key``, the
    CRLs from ``crl_key`` when given (ssl_crl), the server pair from the Secret's tls.crt /
    tls.key, or from ``server_files`` for an edge whose Secret holds only the CA."""

    def __init__(self, workdir, name, ca_key="ca.crt", crl_key=None, server_files=None):
        self.prefix = os.path.join(workdir, "nginx-" + name)
        os.makedirs(os.path.join(self.prefix, "logs"), exist_ok=True)
        self.port = harness.free_port()
        self.conf = os.path.join(self.prefix, "nginx.conf")
        self.ca_key, self.crl_key = ca_key, crl_key
        self.files = {
            "ca": os.path.join(self.prefix, "ca.pem"),
            "crl": os.path.join(self.prefix, "crl.pem"),
            "cert": os.path.join(self.prefix, "tls.crt"),
            "key": os.path.join(self.prefix, "tls.key"),
        }
        if server_files:
            self.files["cert"], self.files["key"] = server_files
        self.from_secret = not server_files
        self.history = []  # (certificates in the client CA, CRLs) of each version installed
        self.process = None

    def install(self, data):
        _write(self.files["ca"], data.get(self.ca_key, b""))
        if self.crl_key:
            _write(self.files["crl"], data.get(self.crl_key, b""))
        if self.from_secret:
            _write(self.files["key"], data["tls.key"])
            _write(self.files["cert"], data["tls.crt"])
        self.history.append((data.get(self.ca_key, b"").count(b"BEGIN CERTIFICATE"), data.get(self.crl_key or "", b"").count(b"BEGIN X509 CRL")))
        if self.process is not None:
            # Test the configuration first: a reload nginx refuses would go unnoticed.
            for action in (["-t", "-q"], ["-s", "reload"]):
                subprocess.run(
                    [harness.NGINX] + action + ["-p", self.prefix, "-c", self.conf], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )

    def start(self):
        crl_line = "ssl_crl %s;" % self.files["crl"] if self.crl_key else ""
        with open(self.conf, "w") as handle:
            handle.write(
                "daemon off; worker_processes 1; pid %(p)s/nginx.pid; error_log %(p)s/logs/error.log info;\n"
                "events { worker_connections 256; }\n"
                "http { access_log off; client_body_temp_path %(p)s/b; proxy_temp_path %(p)s/x;\n"
                "  fastcgi_temp_path %(p)s/f; uwsgi_temp_path %(p)s/u; scgi_temp_path %(p)s/s;\n"
                "  server { listen 127.0.0.1:%(port)d ssl; server_name localhost;\n"
                "    ssl_certificate %(cert)s; ssl_certificate_key %(key)s;\n"
                "    ssl_client_certificate %(ca)s; %(crl_line)s ssl_verify_client on; ssl_verify_depth 3;\n"
                '    keepalive_timeout 0; location / { return 200 "verified $ssl_client_s_dn\\n"; } } }\n'
                % dict(p=self.prefix, port=self.port, crl_line=crl_line, **self.files)
            )
        self.process = harness.start_nginx(self.prefix, self.conf, self.port)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class SecretClient(object):
    """Handshakes in a loop with each target, using the certificate, key and trusted roots its
    Secret holds right now. A target is (label, port, server CA file or None for the
    Secret's own ca.crt, the roots the estate publishes to the client)."""

    def __init__(self, name, workdir, targets, fixed=None):
        self.name = name
        self.dir = os.path.join(workdir, "client-" + name)
        os.makedirs(self.dir, exist_ok=True)
        self.targets = targets
        self.contexts = None
        self.issuer = None
        self.successes = dict((label, {}) for label, _port, _ca in targets)  # label -> {intermediate: count}
        self.failures = dict((label, []) for label, _port, _ca in targets)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        if fixed is not None:
            self.install(fixed)

    def install(self, data):
        if "tls.crt" not in data:
            return
        paths = [os.path.join(self.dir, name) for name in ("tls.crt", "tls.key", "ca.crt")]
        for path, key in zip(paths, ("tls.crt", "tls.key", "ca.crt")):
            _write(path, data.get(key, b""))
        contexts = dict((label, harness.context_trusting(server_ca or paths[2], paths[0], paths[1])) for label, _port, server_ca in self.targets)
        chain = x509.load_pem_x509_certificates(data["tls.crt"])
        self.contexts, self.issuer = contexts, (_fingerprint(chain[1]) if len(chain) > 1 else "no chain")

    def _loop(self):
        while not self._stop.is_set():
            for label, port, _ca in self.targets:
                issuer = self.issuer
                try:
                    harness.https_get(self.contexts[label], port)
                    self.successes[label][issuer] = self.successes[label].get(issuer, 0) + 1
                except (OSError, ssl.SSLError, AssertionError) as exc:
                    self.failures[label].append("%s %s" % (time.strftime("%H:%M:%S"), exc))
            time.sleep(0.05)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(15)

    def total(self):
        return sum(sum(counts.values()) for counts in self.successes.values())


class CertManagerStandIn(object):
    """Does for one cert-manager Certificate what cert-manager's controller does with a CA
    issuer: issues its Secret from the cluster's intermediate (leaf + intermediate in
    tls.crt) when the Secret is missing, and re-issues it when the Certificate's status holds
    an Issuing=True condition (what `cmctl renew` and the rotation's mtls_rotation_consumers
    set), then marks it Ready and drops the Issuing condition. Like cert-manager, it never
    re-issues merely because the CA changed. No cert-manager controller runs on cluster B:
    the rotation's own step (trigger the re-issue, wait until the live Secret is of the new
    intermediate) is what is under test."""

    def __init__(self, core, custom, namespace, name, ca_dir):
        self.core, self.custom, self.namespace, self.certificate, self.ca_dir = core, custom, namespace, name, ca_dir
        self.name = name + "-tls"
        self.issued = []  # (intermediate fingerprint, time)
        self.triggers = []  # the reasons of the Issuing conditions acted on
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _current(self):
        with open(os.path.join(self.ca_dir, "ca.crt"), "rb") as handle:
            ca_pem = handle.read()
        with open(os.path.join(self.ca_dir, "ca.key"), "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), harness.DEMO_INTERMEDIATE_PASSPHRASE)
        return ca_pem, key

    def _certificate(self):
        return self.custom.get_namespaced_custom_object("cert-manager.io", "v1", self.namespace, "certificates", self.certificate)

    def _secret_exists(self):
        from kubernetes.client.rest import ApiException

        try:
            return bool(harness.secret_data(self.core, self.namespace, self.name).get("tls.crt"))
        except ApiException as exc:
            if exc.status != 404:
                raise
            return False

    def issue_if_needed(self):
        certificate = self._certificate()
        conditions = (certificate.get("status") or {}).get("conditions") or []
        issuing = [c for c in conditions if c.get("type") == "Issuing" and c.get("status") == "True"]
        if self._secret_exists() and not issuing:
            return
        self._issue()
        self.triggers.extend(c.get("reason") for c in issuing)
        certificate["status"] = {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "issued by the stand-in"}]}
        self.custom.replace_namespaced_custom_object_status("cert-manager.io", "v1", self.namespace, "certificates", self.certificate, certificate)

    def _issue(self):
        from kubernetes.client.rest import ApiException

        ca_pem, ca_key = self._current()
        ca = x509.load_pem_x509_certificate(ca_pem)
        cert_pem, key_pem = harness.leaf_from(ca, ca_key, "api.local.test")
        body = {
            "metadata": {"name": self.name},
            "type": "kubernetes.io/tls",
            "data": dict((k, base64.b64encode(v).decode()) for k, v in (("tls.crt", cert_pem + ca_pem), ("tls.key", key_pem), ("ca.crt", ca_pem))),
        }
        try:
            self.core.replace_namespaced_secret(self.name, self.namespace, body)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.core.create_namespaced_secret(self.namespace, body)
        self.issued.append((_fingerprint(ca), time.time()))

    def _loop(self):
        from kubernetes.client.rest import ApiException

        while not self._stop.wait(1.0):
            try:
                self.issue_if_needed()
            except (OSError, ValueError):
                pass  # the CA pair is being switched by the rotation: next second
            except ApiException as exc:
                if exc.status != 409:  # the status changed meanwhile: next second
                    raise

    def run(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(10)


def _cluster(name, ns, kubeconfig, edge):
    """The inventory host of one cluster: Istio cacerts, an ingress gateway credential,
    a client (and in A an ingress-nginx edge and the client that gets revoked)."""
    python = os.path.join(harness.REPO, ".venv", "bin", "python")
    clients = [{"name": "client-" + name, "namespace": ns + "-apps"}]
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": python,
        "mtls_kubeconfig": kubeconfig,
        "mtls_cluster_name": ns + "-" + name,
        "mtls_environment": "staging",
        "mtls_istio_enabled": True,
        "istio_mtls_root_namespace": ns + "-istio",
        "mtls_ingress_enabled": True,
        "ingress_mtls_istio_gateways": [{"name": "gw", "namespace": ns + "-istio", "hosts": ["localhost"], "credential_name": "gw-mtls"}],
        "mtls_client_certs_enabled": True,
        # No istiod of this estate runs; on cluster A an istiod of the cluster step may run and
        # publish its own root into every namespace, which the rotation must not wait for.
        "mtls_rotation_wait_for_istiod": False,
    }
    if not edge:
        # cert-manager's objects on B (its own API server: the ClusterIssuer is cluster-wide);
        # the test issues the Certificate's Secret as the controller does (no controller runs here).
        host.update(
            mtls_cert_manager_enabled=True,
            cert_manager_install_method="none",
            cert_manager_certificates=[{"name": CERT_MANAGER_CERTIFICATE, "namespace": ns + "-apps", "dns_names": ["api.local.test"]}],
            mtls_rotation_consumer_timeout=90,
        )
    if edge:
        clients.append({"name": REVOKED_CLIENT, "namespace": ns + "-apps"})
        host["ingress_mtls_nginx_ingresses"] = [
            {
                "name": "edge",
                "namespace": ns + "-edge",
                "verify_client": "on",
                "spec": {
                    "ingressClassName": "nginx",
                    "rules": [
                        {
                            "host": "edge.local.test",
                            "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "edge", "port": {"number": 8080}}}}]},
                        }
                    ],
                },
            }
        ]
    host["client_certs_clients"] = clients
    return host


def _inventory(path, ns, pki_dir, kubeconfigs):
    local = {"ansible_connection": "local", "ansible_python_interpreter": os.path.join(harness.REPO, ".venv", "bin", "python")}
    inventory = {
        "all": {
            "vars": {
                "mtls_pki_dir": pki_dir,
                "mtls_kubeconfig": kubeconfigs["a"],
                "mtls_trust_domain": "it.local",
                "mtls_root_key_passphrase": harness.DEMO_PASSPHRASE.decode(),
                "mtls_intermediate_key_passphrase": harness.DEMO_INTERMEDIATE_PASSPHRASE.decode(),
                "mtls_rotation_namespace": ns + "-sys",
            },
            "children": {
                "pki": {"hosts": {"localhost": local}},
                "clusters": {
                    "hosts": dict(("estate-" + name, _cluster(name, ns, kubeconfig, name == "a")) for name, kubeconfig in sorted(kubeconfigs.items()))
                },
            },
        }
    }
    with open(path, "w") as handle:
        yaml.safe_dump(inventory, handle)


def _playbook(inventory, playbook, log, *extra, on_line=None):
    """Runs a playbook to its end; ``on_line`` sees each line of its output as it comes."""
    command = [harness.ANSIBLE_PLAYBOOK, "-i", inventory, os.path.join(harness.REPO, "playbooks", playbook), "-e", "mtls_site_hosts=clusters"]
    process = subprocess.Popen(command + list(extra), cwd=harness.REPO, env=harness.playbook_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    for raw in process.stdout:
        lines.append(raw.decode("utf-8", "replace"))
        if on_line:
            on_line(lines[-1])
    returncode = process.wait(900)
    output = "".join(lines)
    with open(log, "a") as handle:
        handle.write(output)
    if returncode != 0:
        raise AssertionError("%s failed (rc %d), log %s:\n%s" % (playbook, returncode, log, output[-3000:]))
    return output


def _recap_changed(output, host):
    match = re.search(r"^%s\s*:\s*ok=\d+\s+changed=(\d+)" % re.escape(host), output, re.M)
    assert match, "no recap line for %s" % host
    return int(match.group(1))


@pytest.fixture
def cluster_b(tmp_path):
    """A second local control plane on free loopback ports (tests/cluster/up.sh, its own state dir)."""
    env = dict(os.environ, MTLS_CLUSTER_DIR=str(tmp_path / "cluster-b"))
    env.update(cluster_ports.port_environment())
    started = subprocess.run([CLUSTER_UP], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, check=False)
    try:
        assert started.returncode == 0, "cluster B did not start:\n%s" % started.stdout.decode()[-3000:]
        yield str(tmp_path / "cluster-b" / "kubeconfig")
    finally:
        subprocess.run([CLUSTER_DOWN, "--purge"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=False)


@pytest.fixture
def estate(tmp_path, cluster_b):
    from kubernetes import client, config

    kubeconfigs = {"a": KUBECONFIG, "b": cluster_b}
    cores = dict((name, client.CoreV1Api(config.new_client_from_config(path))) for name, path in kubeconfigs.items())
    ns = "est-%s" % uuid.uuid4().hex[:6]
    names = {
        "a": [ns + suffix for suffix in ("-sys", "-istio", "-edge", "-apps")],
        "b": [ns + suffix for suffix in ("-sys", "-istio", "-apps")] + ["cert-manager"],
    }
    for cluster, namespaces in names.items():
        for name in namespaces:
            cores[cluster].create_namespace({"metadata": {"name": name}})
    inventory = str(tmp_path / "inventory.yml")
    _inventory(inventory, ns, str(tmp_path / "pki"), kubeconfigs)
    try:
        yield cores, ns, inventory
    finally:
        for name in names["a"]:
            cores["a"].delete_namespace(name)


def test_one_command_root_rotation_of_two_clusters_loses_no_handshake(tmp_path, estate):
    cores, ns, inventory = estate
    from kubernetes import client

    customs = {"b": client.CustomObjectsApi(cores["b"].api_client)}
    log = str(tmp_path / "playbooks.log")
    _playbook(inventory, "site.yml", log)
    apps = ns + "-apps"
    revoked_data = harness.secret_data(cores["a"], apps, REVOKED_CLIENT + "-mtls")
    _playbook(inventory, "revoke.yml", log, "-e", '{"mtls_revoke": ["%s"]}' % REVOKED_CLIENT)
    # The next converge issues the revoked client a new certificate: its old one stays revoked.
    _playbook(inventory, "site.yml", log)

    # cert-manager "issues" the Certificate of B from B's intermediate, and re-issues it when
    # that changes; the rotation must wait for the re-issue before it retires the old root.
    stand_in = CertManagerStandIn(cores["b"], customs["b"], apps, CERT_MANAGER_CERTIFICATE, os.path.join(str(tmp_path / "pki"), "clusters", ns + "-b"))
    stand_in.issue_if_needed()
    server_cert, server_key, server_ca = harness.server_pair(str(tmp_path))
    servers = {
        "edge-a": SecretNginx(str(tmp_path), "edge-a", crl_key="ca.crl", server_files=(server_cert, server_key)),
        "gw-a": SecretNginx(str(tmp_path), "gw-a"),
        "gw-b": SecretNginx(str(tmp_path), "gw-b"),
    }
    pollers = [
        SecretPoller(cores["a"], ns + "-edge", "mtls-client-ca", servers["edge-a"].install),
        SecretPoller(cores["a"], ns + "-istio", "gw-mtls", servers["gw-a"].install),
        SecretPoller(cores["b"], ns + "-istio", "gw-mtls", servers["gw-b"].install),
    ]
    for poller in pollers:
        poller.poll()
    assert servers["edge-a"].history[-1] == (2, 2), "the edge Secret holds %d certificates and %d CRLs" % (servers["edge-a"].history[-1])
    for server in servers.values():
        server.start()
    gateways = [("gw-a", servers["gw-a"].port, None), ("gw-b", servers["gw-b"].port, None)]
    clients = {
        "a": SecretClient("a", str(tmp_path), [("edge-a", servers["edge-a"].port, server_ca)] + gateways),
        "b": SecretClient("b", str(tmp_path), gateways),
    }
    pollers += [SecretPoller(cores[name], apps, "client-%s-mtls" % name, clients[name].install) for name in clients]
    for poller in pollers[3:]:
        poller.poll()
    revoked = SecretClient("revoked", str(tmp_path), [("edge-a", servers["edge-a"].port, server_ca)], fixed=revoked_data)
    started = time.time()
    try:
        for poller in pollers:
            poller.run()
        for party in list(clients.values()) + [revoked]:
            party.start()
        stand_in.run()
        time.sleep(1)
        rotation = _playbook(inventory, "rotate_root_ca.yml", log)
        time.sleep(2)
    finally:
        stand_in.stop()
        for party in list(clients.values()) + [revoked]:
            party.stop()
        for poller in pollers:
            poller.stop()
        for server in servers.values():
            server.stop()
    seconds = time.time() - started

    per_pair = dict(("%s->%s" % (name, label), sum(counts.values())) for name, party in clients.items() for label, counts in party.successes.items())
    failed = dict(("%s->%s" % (name, label), len(errors)) for name, party in clients.items() for label, errors in party.failures.items())
    print(
        "\nestate rotation: 2 clusters, %.0f s; successful handshakes per pair %s, failed %s; revoked certificate "
        "accepted %d times, refused %d; edge A versions (certificates, CRLs) %s; gateway A / B versions %d / %d"
        % (
            seconds,
            per_pair,
            failed,
            revoked.total(),
            len(revoked.failures["edge-a"]),
            servers["edge-a"].history,
            len(servers["gw-a"].history),
            len(servers["gw-b"].history),
        )
    )
    assert re.search(r"phases done 5/5", rotation), "the rotation did not complete in one run"
    # It waited for cert-manager: the Secret was re-issued from the new intermediate before
    # the old root was retired, and the rotation saw it on the live Secret.
    assert len(stand_in.issued) == 2 and stand_in.issued[0][0] != stand_in.issued[1][0], stand_in.issued
    assert stand_in.triggers == ["ManuallyTriggered"], "the rotation did not ask for the re-issue as cmctl renew does: %s" % stand_in.triggers
    issued = x509.load_pem_x509_certificates(harness.secret_data(cores["b"], apps, "api-tls")["tls.crt"])
    issued[1].verify_directly_issued_by(x509.load_pem_x509_certificate(open(os.path.join(str(tmp_path / "pki"), "root", "ca.crt"), "rb").read()))
    for name, party in clients.items():
        for label, errors in party.failures.items():
            assert not errors, "%s -> %s: %d handshakes failed, first %s" % (name, label, len(errors), errors[:3])
        for label, counts in party.successes.items():
            assert len(counts) == 2, "client %s -> %s succeeded with %d intermediates, not its old and new one: %s" % (name, label, len(counts), counts)
    assert revoked.total() == 0, "the revoked certificate was accepted %d times" % revoked.total()
    assert revoked.failures["edge-a"]
    sizes = [certs for certs, _crls in servers["edge-a"].history]
    assert [size for index, size in enumerate(sizes) if index == 0 or sizes[index - 1] != size] == [2, 4, 2], sizes
    assert servers["edge-a"].history[-1] == (2, 2), servers["edge-a"].history
    assert not any(poller.errors for poller in pollers), [poller.errors[:2] for poller in pollers]

    with open(os.path.join(str(tmp_path / "pki"), "root", "ca.crt"), "rb") as handle:
        active_root = _fingerprint(x509.load_pem_x509_certificate(handle.read()))
    for core in cores.values():
        cacerts = harness.secret_data(core, ns + "-istio", "cacerts")
        assert [_fingerprint(r) for r in x509.load_pem_x509_certificates(cacerts["root-cert.pem"])] == [active_root]
    after = _playbook(inventory, "site.yml", log)
    assert [_recap_changed(after, "estate-" + name) for name in sorted(cores)] == [0, 0]
    # And the audit is clean: every certificate of the PKI and of cluster A's namespaces of
    # this estate chains to the new root, nothing is due, no revoked certificate is deployed
    # (audit.yml fails otherwise; _playbook raises on a non-zero exit).
    audited = _playbook(inventory, "audit.yml", log, "-e", '{"audit_namespaces": ["%s-istio", "%s-edge", "%s-apps"]}' % (ns, ns, ns))
    assert "BROKEN" not in audited and re.search(r"no revoked certificate deployed", audited), audited[-3000:]

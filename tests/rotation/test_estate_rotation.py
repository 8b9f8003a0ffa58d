# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The root CA rotation of a site.yml estate in one command, with real handshakes throughout.

An estate of one cluster (its own namespaces on the local control plane) is converged by
playbooks/site.yml: Istio cacerts, an ingress-nginx edge (the ingress_mtls role's client
CA Secret, ca.crt + ca.crl) and three client certificates of the client_certs role
(Secrets). One client is revoked with playbooks/revoke.yml, so every CA has a CRL.

A real nginx (ssl_verify_client on, ssl_crl) is built from the edge Secret and reloaded
whenever the Secret changes, as ingress-nginx does; each live client re-reads its Secret
whenever it changes and does full mutual-TLS handshakes in a loop; the revoked
certificate (kept from before its revocation) tries too. Then one command,
`ansible-playbook -i <inventory> playbooks/rotate_root_ca.yml`, rotates the root.

Asserted: not one handshake of a live client fails, each live client succeeds with a
certificate of the old and of the new intermediate, the revoked certificate is refused
every time (the CRLs travel through the rotation: nginx checks a CRL for every CA of a
chain), the edge bundle goes old -> old + new -> new (2 -> 4 -> 2 certificates) and
never narrows while a client still holds an old certificate, Istio's cacerts ends on the
new root alone, and site.yml afterwards reports changed=0.
"""

import base64
import os
import re
import socket
import ssl
import subprocess
import threading
import time
import uuid

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes

import harness

KUBECONFIG = os.environ.get('MTLS_KUBECONFIG')

pytestmark = pytest.mark.skipif(not KUBECONFIG, reason='MTLS_KUBECONFIG is not set: the local control plane '
                                                       '(tests/cluster/up.sh) is not running')

LIVE_CLIENTS = ('alpha', 'beta')
REVOKED_CLIENT = 'gamma'
POLL_SECONDS = 0.2


def _fingerprint(cert):
    return cert.fingerprint(hashes.SHA256()).hex()


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
            data = dict((k, base64.b64decode(v)) for k, v in (secret.data or {}).items())
            self.on_change(data)
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


class EdgeNginx(object):
    """nginx requiring a client certificate from the edge Secret's ca.crt, checking ca.crl,
    reloaded when the Secret changes (what the ingress-nginx controller does with it)."""

    def __init__(self, workdir, server_cert, server_key):
        self.prefix = os.path.join(workdir, 'edge-nginx')
        os.makedirs(os.path.join(self.prefix, 'logs'), exist_ok=True)
        self.port = harness.free_port()
        self.conf = os.path.join(self.prefix, 'nginx.conf')
        self.ca = os.path.join(self.prefix, 'ca.crt')
        self.crl = os.path.join(self.prefix, 'ca.crl')
        self.server_cert, self.server_key = server_cert, server_key
        self.history = []  # (certificates in ca.crt, CRLs in ca.crl) of each version loaded
        self.process = None

    def write_secret(self, data):
        """Install a Secret version: atomic renames, then a reload nginx accepts."""
        for path, key in ((self.ca, 'ca.crt'), (self.crl, 'ca.crl')):
            with open(path + '.tmp', 'wb') as handle:
                handle.write(data.get(key, b''))
            os.replace(path + '.tmp', path)
        self.history.append((data.get('ca.crt', b'').count(b'BEGIN CERTIFICATE'),
                             data.get('ca.crl', b'').count(b'BEGIN X509 CRL')))
        if self.process is not None:
            subprocess.run([harness.NGINX, '-t', '-q', '-p', self.prefix, '-c', self.conf], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            subprocess.run([harness.NGINX, '-s', 'reload', '-p', self.prefix, '-c', self.conf], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self):
        with open(self.conf, 'w') as handle:
            handle.write('''
daemon off;
worker_processes 1;
pid %(prefix)s/nginx.pid;
error_log %(prefix)s/logs/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %(prefix)s/tmp_body;
    proxy_temp_path %(prefix)s/tmp_proxy;
    fastcgi_temp_path %(prefix)s/tmp_fastcgi;
    uwsgi_temp_path %(prefix)s/tmp_uwsgi;
    scgi_temp_path %(prefix)s/tmp_scgi;
    server {
        listen 127.0.0.1:%(port)d ssl;
        server_name localhost;
        ssl_certificate %(cert)s;
        ssl_certificate_key %(key)s;
        ssl_client_certificate %(ca)s;
        ssl_crl %(crl)s;
        ssl_verify_client on;
        ssl_verify_depth 3;
        keepalive_timeout 0;
        location / { return 200 "verified $ssl_client_s_dn\\n"; }
    }
}
''' % dict(prefix=self.prefix, port=self.port, cert=self.server_cert, key=self.server_key, ca=self.ca,
                crl=self.crl))
        self.process = subprocess.Popen([harness.NGINX, '-p', self.prefix, '-c', self.conf],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=0.5).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise AssertionError('nginx did not start: %s' % self.process.stderr.read().decode())
                time.sleep(0.05)
        raise AssertionError('nginx did not listen on 127.0.0.1:%d within 10 s' % self.port)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class SecretClient(object):
    """Handshakes with the edge in a loop using the certificate its Secret holds right now."""

    def __init__(self, name, workdir, server_ca, port, fixed=None):
        self.name = name
        self.dir = os.path.join(workdir, 'client-' + name)
        os.makedirs(self.dir, exist_ok=True)
        self.server_ca, self.port = server_ca, port
        self.context = None
        self.issuer = None
        self.successes = {}  # issuing intermediate fingerprint -> count
        self.failures = []
        self.refusals = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        if fixed is not None:
            self.install(fixed)

    def install(self, data):
        if 'tls.crt' not in data:
            return
        chain = x509.load_pem_x509_certificates(data['tls.crt'])
        cert, key = os.path.join(self.dir, 'tls.crt'), os.path.join(self.dir, 'tls.key')
        with open(cert, 'wb') as handle:
            handle.write(data['tls.crt'])
        with open(key, 'wb') as handle:
            handle.write(data['tls.key'])
        context = harness.context_trusting(self.server_ca, cert, key)
        self.context, self.issuer = context, _fingerprint(chain[1]) if len(chain) > 1 else chain[0].issuer.rfc4514_string()

    def handshake(self):
        context, issuer = self.context, self.issuer
        with socket.create_connection(('127.0.0.1', self.port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname='localhost') as tls:
                tls.sendall(b'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
                answer = b''
                while True:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
        if not answer.startswith(b'HTTP/1.1 200'):
            raise AssertionError('nginx answered %r' % answer[:60])
        return issuer

    def _loop(self):
        while not self._stop.is_set():
            try:
                issuer = self.handshake()
                self.successes[issuer] = self.successes.get(issuer, 0) + 1
            except (OSError, ssl.SSLError, AssertionError) as exc:
                self.failures.append('%s %s' % (time.strftime('%H:%M:%S'), exc))
            time.sleep(0.05)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(15)


def _inventory(path, ns, pki_dir):
    python = os.path.join(harness.REPO, '.venv', 'bin', 'python')
    local = {'ansible_connection': 'local', 'ansible_python_interpreter': python}
    cluster = dict(local, mtls_cluster_name=ns, mtls_environment='staging',
                   mtls_istio_enabled=True, istio_mtls_root_namespace=ns + '-istio',
                   mtls_ingress_enabled=True,
                   ingress_mtls_nginx_ingresses=[{
                       'name': 'edge', 'namespace': ns + '-edge', 'verify_client': 'on',
                       'spec': {'ingressClassName': 'nginx',
                                'rules': [{'host': 'edge.local.test', 'http': {'paths': [{
                                    'path': '/', 'pathType': 'Prefix',
                                    'backend': {'service': {'name': 'edge', 'port': {'number': 8080}}}}]}}]}}],
                   mtls_client_certs_enabled=True,
                   client_certs_clients=[{'name': name, 'namespace': ns + '-apps'}
                                         for name in LIVE_CLIENTS + (REVOKED_CLIENT,)])
    inventory = {'all': {
        'vars': {'mtls_pki_dir': pki_dir, 'mtls_kubeconfig': KUBECONFIG, 'mtls_trust_domain': 'it.local',
                 'mtls_root_key_passphrase': harness.DEMO_PASSPHRASE.decode(),
                 'mtls_intermediate_key_passphrase': harness.DEMO_INTERMEDIATE_PASSPHRASE.decode(),
                 'mtls_rotation_namespace': ns + '-sys'},
        'children': {'pki': {'hosts': {'localhost': local}},
                     'clusters': {'hosts': {'estate-' + ns: cluster}}}}}
    with open(path, 'w') as handle:
        yaml.safe_dump(inventory, handle)


def _playbook(inventory, playbook, log, *extra):
    command = [harness.ANSIBLE_PLAYBOOK, '-i', inventory, os.path.join(harness.REPO, 'playbooks', playbook),
               '-e', 'mtls_site_hosts=clusters']
    result = subprocess.run(command + list(extra), cwd=harness.REPO, env=harness.playbook_env(), timeout=900,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    output = result.stdout.decode('utf-8', 'replace')
    with open(log, 'a') as handle:
        handle.write(output)
    if result.returncode != 0:
        raise AssertionError('%s failed (rc %d), log %s:\n%s' % (playbook, result.returncode, log, output[-3000:]))
    return output


def _recap_changed(output, host):
    match = re.search(r'^%s\s*:\s*ok=\d+\s+changed=(\d+)' % re.escape(host), output, re.M)
    assert match, 'no recap line for %s' % host
    return int(match.group(1))


@pytest.fixture
def estate(tmp_path):
    from kubernetes import client, config
    core = client.CoreV1Api(config.new_client_from_config(KUBECONFIG))
    ns = 'est-%s' % uuid.uuid4().hex[:6]
    names = [ns + suffix for suffix in ('-sys', '-istio', '-edge', '-apps')]
    for name in names:
        core.create_namespace({'metadata': {'name': name}})
    inventory = str(tmp_path / 'inventory.yml')
    _inventory(inventory, ns, str(tmp_path / 'pki'))
    try:
        yield core, ns, inventory
    finally:
        for name in names:
            core.delete_namespace(name)


def test_one_command_root_rotation_loses_no_handshake(tmp_path, estate):
    core, ns, inventory = estate
    log = str(tmp_path / 'playbooks.log')
    host = 'estate-' + ns
    _playbook(inventory, 'site.yml', log)
    apps = ns + '-apps'
    revoked_data = harness.secret_data(core, apps, REVOKED_CLIENT + '-mtls')
    _playbook(inventory, 'revoke.yml', log, '-e', '{"mtls_revoke": ["%s"]}' % REVOKED_CLIENT)
    # The next converge issues the revoked client a new certificate: its old one stays revoked.
    _playbook(inventory, 'site.yml', log)

    server_cert, server_key, server_ca = harness.server_pair(str(tmp_path))
    nginx = EdgeNginx(str(tmp_path), server_cert, server_key)
    edge = SecretPoller(core, ns + '-edge', 'mtls-client-ca', nginx.write_secret)
    edge.poll()
    assert nginx.history[-1] == (2, 2), 'the edge Secret holds %d certificates and %d CRLs before the rotation' % (
        nginx.history[-1])
    nginx.start()
    clients = {name: SecretClient(name, str(tmp_path), server_ca, nginx.port) for name in LIVE_CLIENTS}
    pollers = [SecretPoller(core, apps, name + '-mtls', clients[name].install) for name in LIVE_CLIENTS]
    revoked = SecretClient(REVOKED_CLIENT + '-revoked', str(tmp_path), server_ca, nginx.port, fixed=revoked_data)
    started = time.time()
    try:
        for poller in pollers:
            poller.poll()
        for poller in [edge] + pollers:
            poller.run()
        for party in list(clients.values()) + [revoked]:
            party.start()
        time.sleep(1)
        rotation = _playbook(inventory, 'rotate_root_ca.yml', log)
        time.sleep(2)
    finally:
        for party in list(clients.values()) + [revoked]:
            party.stop()
        for poller in [edge] + pollers:
            poller.stop()
        nginx.stop()
    seconds = time.time() - started

    counts = dict((name, sum(c.successes.values())) for name, c in clients.items())
    print('\nestate rotation: %.0f s; handshakes per client %s, failed %s; revoked certificate accepted %d times, '
          'refused %d; edge versions (certificates, CRLs) %s; nginx reloads %d'
          % (seconds, counts, dict((n, len(c.failures)) for n, c in clients.items()),
             sum(revoked.successes.values()), len(revoked.failures), nginx.history, len(nginx.history) - 1))
    assert re.search(r'phases done 5/5', rotation), 'the rotation did not complete in one run'
    for name, party in clients.items():
        assert not party.failures, '%s: %d handshakes failed, first %s' % (name, len(party.failures), party.failures[:3])
        assert len(party.successes) == 2, '%s handshook with %d intermediates, not the old and the new: %s' % (
            name, len(party.successes), party.successes)
    assert not revoked.successes, 'the revoked certificate was accepted %d times' % sum(revoked.successes.values())
    assert revoked.failures
    sizes = [certs for certs, _crls in nginx.history]
    assert [size for index, size in enumerate(sizes) if index == 0 or sizes[index - 1] != size] == [2, 4, 2], sizes
    assert nginx.history[-1] == (2, 2), nginx.history
    assert not edge.errors and not any(p.errors for p in pollers)

    cacerts = harness.secret_data(core, ns + '-istio', 'cacerts')
    roots = x509.load_pem_x509_certificates(cacerts['root-cert.pem'])
    with open(os.path.join(str(tmp_path / 'pki'), 'root', 'ca.crt'), 'rb') as handle:
        active_root = x509.load_pem_x509_certificate(handle.read())
    assert [_fingerprint(r) for r in roots] == [_fingerprint(active_root)]
    assert _recap_changed(_playbook(inventory, 'site.yml', log), host) == 0

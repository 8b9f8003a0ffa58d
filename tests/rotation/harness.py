# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared parts of the rotation proofs: running the real playbooks, a real nginx that
demands client certificates, an mTLS client that reloads its files, and PKI checks.

Everything runs on 127.0.0.1; nothing here mocks TLS, nginx or the playbooks.
"""

import base64
import glob
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE_PLAYBOOK = os.path.join(REPO, ".venv", "bin", "ansible-playbook")


def _demo_passphrases():
    # The published demo passphrases of inventories/local (not secrets), read from the
    # inventory rather than repeated here, so that no copy of them ships in a built
    # collection: the root and intermediate keys of the test PKI are encrypted with them.
    with open(os.path.join(REPO, "inventories", "local", "group_vars", "all", "pki.yml")) as handle:
        values = yaml.safe_load(handle)
    return (values["mtls_root_key_passphrase"].encode("utf-8"), values["mtls_intermediate_key_passphrase"].encode("utf-8"))


DEMO_PASSPHRASE, DEMO_INTERMEDIATE_PASSPHRASE = _demo_passphrases()
# The default mtls_pki_dir of inventories/local (what `make run` converges): the per-user
# data directory, outside the checkout.
LOCAL_PKI_DIR = os.path.join(os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share"), "zerotrust-mtls", "pki")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def kube_extra_vars():
    """Use the local control plane when it runs; otherwise run the file-only parts."""
    kubeconfig = os.environ.get("MTLS_KUBECONFIG", "")
    extra = ["-e", "mtls_kubeconfig=%s" % kubeconfig]
    if os.environ.get("MTLS_ROTATION_NAMESPACE"):
        # Records and state ConfigMaps of a test go to its own namespace on the shared cluster.
        extra += ["-e", "mtls_rotation_namespace=%s" % os.environ["MTLS_ROTATION_NAMESPACE"]]
    return extra


def playbook_command(playbook, pki_dir, *extra):
    # These proofs rotate a PKI of their own under the default inventory, whose host is also
    # the shared cluster's estate: the rotations must not run the estate's roles with it.
    return (
        [ANSIBLE_PLAYBOOK, os.path.join(REPO, "playbooks", playbook), "-e", "mtls_pki_dir=%s" % pki_dir, "-e", "mtls_rotation_converge_roles=false"]
        + kube_extra_vars()
        + list(extra)
    )


def playbook_env():
    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_PIPELINING="1", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return env


def run_playbook(playbook, pki_dir, *extra, timeout=300, log=None):
    """Run a playbook to completion; returns its output; raises with the tail on failure."""
    result = subprocess.run(
        playbook_command(playbook, pki_dir, *extra),
        cwd=REPO,
        env=playbook_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        check=False,
    )
    output = result.stdout.decode("utf-8", "replace")
    if log is not None:
        with open(log, "a") as handle:
            handle.write(output)
    if result.returncode != 0:
        raise AssertionError("%s failed (rc %d):\n%s" % (playbook, result.returncode, output[-4000:]))
    return output


def bootstrap(pki_dir):
    """A fresh PKI as an operator builds it: bootstrap, then the regular renewal job
    (which adds fullchain files and the trust bundle file)."""
    run_playbook("bootstrap_pki.yml", pki_dir)
    run_playbook("rotate_client_certs.yml", pki_dir)


# --------------------------------------------------------------------------- PKI checks


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def load_key(path):
    """The private key of ``path`` (CA keys are encrypted with the demo passphrases)."""
    pem = _read(path)
    if not pem.strip():
        raise AssertionError("%s is empty (truncated)" % path)
    for passphrase in (None, DEMO_PASSPHRASE, DEMO_INTERMEDIATE_PASSPHRASE):
        try:
            return serialization.load_pem_private_key(pem, password=passphrase)
        except (TypeError, ValueError):
            continue
    raise AssertionError("%s does not parse as a PEM private key (truncated or corrupt)" % path)


def load_certs(path):
    pem = _read(path)
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise AssertionError("%s does not parse as PEM certificates: %s" % (path, exc)) from None
    if not certs:
        raise AssertionError("%s holds no certificate" % path)
    return certs


def public_fingerprint(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo).hex()


def cert_for_key(key_path):
    """The certificate file that goes with a key file (ca.key -> ca.crt, x.key -> x.crt)."""
    return key_path[: -len(".key")] + ".crt"


def check_pki(pki_dir, mismatches=None):
    """Every key and certificate parses and every key matches its certificate.

    With ``mismatches`` (a list), key/certificate mismatches are appended there instead
    of failing. Returns the set of public-key fingerprints of every CA key found - active, staged,
    previous, archived or in a backup copy (``*~``) - so a caller can prove that no CA
    key ever disappears. Hidden files are the writers' temporary files and are skipped
    (a killed writer leaves them; they are never read by anyone).
    """
    problems = []
    ca_keys = set()
    for path in sorted(glob.glob(os.path.join(pki_dir, "**", "*"), recursive=True)):
        name = os.path.basename(path)
        if not os.path.isfile(path) or name.startswith(".") or name.endswith(".json") or ".json." in name:
            continue
        try:
            if name.endswith("~"):
                if ".key." in name:
                    key = load_key(path)
                    ca_keys.add(public_fingerprint(key.public_key()))
                continue
            if name.endswith((".crt", ".pem")):
                load_certs(path)
            elif name.endswith(".key"):
                key = load_key(path)
                cert_path = cert_for_key(path)
                if not os.path.exists(cert_path):
                    problems.append("%s has no certificate beside it" % path)
                    continue
                cert = load_certs(cert_path)[0]
                if public_fingerprint(cert.public_key()) != public_fingerprint(key.public_key()):
                    # Callers that expect a repair on rerun collect these instead of failing.
                    (mismatches if mismatches is not None else problems).append("%s does not match %s" % (path, cert_path))
                if os.stat(path).st_mode & 0o077:
                    problems.append("%s is readable by others (mode %o)" % (path, os.stat(path).st_mode & 0o777))
                if _has_basic_constraints(cert) and cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                    ca_keys.add(public_fingerprint(key.public_key()))
        except AssertionError as exc:
            problems.append(str(exc))
    if problems:
        raise AssertionError("PKI check failed:\n  " + "\n  ".join(problems))
    return ca_keys


def stale_temp_files(pki_dir):
    return [p for p in glob.glob(os.path.join(pki_dir, "**", ".*"), recursive=True) if p.endswith(".tmp")]


def _has_basic_constraints(cert):
    try:
        cert.extensions.get_extension_for_class(x509.BasicConstraints)
        return True
    except x509.ExtensionNotFound:
        return False


# --------------------------------------------------------------------------- nginx


def kill_group(process):
    """SIGKILL a process started with start_new_session=True and everything it started."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(30)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_nginx(prefix, conf, port):
    """Start nginx in the foreground of its own process; return once it listens on 127.0.0.1:port."""
    process = subprocess.Popen([NGINX, "-p", prefix, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process
        except OSError:
            if process.poll() is not None:
                raise AssertionError("nginx did not start: %s" % process.stderr.read().decode()) from None
            time.sleep(0.05)
    process.kill()
    raise AssertionError("nginx did not listen on 127.0.0.1:%d within 10 s" % port)


class Nginx(object):
    """A real nginx on 127.0.0.1 that requires a client certificate from the trust bundle,
    reloaded (nginx -s reload) whenever the files it serves change on disk."""

    def __init__(self, pki_dir, workdir):
        self.pki_dir = pki_dir
        self.prefix = os.path.join(workdir, "nginx")
        os.makedirs(os.path.join(self.prefix, "logs"), exist_ok=True)
        self.port = free_port()
        self.conf = os.path.join(self.prefix, "nginx.conf")
        self.watched = [
            os.path.join(pki_dir, "server", "localhost.fullchain.crt"),
            os.path.join(pki_dir, "server", "localhost.key"),
            os.path.join(pki_dir, "trust", "bundle.pem"),
        ]
        self.reloads = 0
        self.refused_configs = 0
        self.process = None
        self._stop = threading.Event()
        self._watcher = None

    def _write_conf(self):
        with open(self.conf, "w") as handle:
            handle.write(
                """
daemon off;
worker_processes 1;
pid %(prefix)s/nginx.pid;
error_log %(prefix)s/logs/error.log warn;
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
        ssl_client_certificate %(bundle)s;
        ssl_verify_client on;
        ssl_verify_depth 3;
        keepalive_timeout 0;
        location / { return 200 "verified $ssl_client_s_dn\\n"; }
    }
}
"""
                % dict(prefix=self.prefix, port=self.port, cert=self.watched[0], key=self.watched[1], bundle=self.watched[2])
            )

    def _signature(self):
        stamp = []
        for path in self.watched:
            try:
                info = os.stat(path)
                stamp.append((info.st_ino, info.st_mtime_ns, info.st_size))
            except OSError:
                stamp.append(None)
        return stamp

    def start(self):
        self._write_conf()
        self.process = start_nginx(self.prefix, self.conf, self.port)
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def _watch(self):
        seen = self._signature()
        while not self._stop.is_set():
            time.sleep(0.1)
            now = self._signature()
            if now == seen:
                continue
            # Reload only a configuration nginx accepts (a key and certificate that match);
            # until then the running workers keep serving the previous files.
            test = subprocess.run([NGINX, "-t", "-q", "-p", self.prefix, "-c", self.conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            if test.returncode != 0:
                self.refused_configs += 1
                continue
            subprocess.run([NGINX, "-s", "reload", "-p", self.prefix, "-c", self.conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            self.reloads += 1
            seen = now

    def stop(self):
        self._stop.set()
        if self._watcher:
            self._watcher.join(5)
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


# --------------------------------------------------------------------------- client


class MtlsClient(object):
    """Does one full mTLS handshake (new connection, no session reuse) plus a request
    after another, reloading its certificate, key and trust bundle when they change."""

    def __init__(self, pki_dir, port, max_seconds, max_handshakes):
        self.port = port
        self.cert = os.path.join(pki_dir, "client", "demo-client.fullchain.crt")
        self.key = os.path.join(pki_dir, "client", "demo-client.key")
        self.bundle = os.path.join(pki_dir, "trust", "bundle.pem")
        self.max_seconds = max_seconds
        self.max_handshakes = max_handshakes
        self.successes = 0
        self.failures = []
        self.context_reloads = 0
        self.rejected_reloads = 0
        self.server_issuers = set()
        self._context = None
        self._signature = None
        self._stop = threading.Event()
        self._thread = None

    def _files_signature(self):
        return [(os.stat(p).st_ino, os.stat(p).st_mtime_ns) for p in (self.cert, self.key, self.bundle)]

    def _maybe_reload(self):
        try:
            signature = self._files_signature()
        except OSError:
            return
        if signature == self._signature:
            return
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            context.load_verify_locations(self.bundle)
            context.load_cert_chain(self.cert, self.key)
        except (ssl.SSLError, OSError):
            # Caught between two renames of a pair: keep the working context, retry later.
            self.rejected_reloads += 1
            return
        self._context = context
        self._signature = signature
        self.context_reloads += 1

    def handshake(self, context=None):
        return https_get(context or self._context, self.port)

    def _loop(self):
        deadline = time.time() + self.max_seconds
        while not self._stop.is_set() and time.time() < deadline and self.successes < self.max_handshakes:
            self._maybe_reload()
            try:
                self.server_issuers.add(self.handshake())
                self.successes += 1
            except (OSError, ssl.SSLError, AssertionError) as exc:
                self.failures.append("%s: %s" % (time.strftime("%H:%M:%S"), exc))
            # Paced so the playbook keeps most of the two cores this runs on.
            time.sleep(0.02)

    def start(self):
        self._maybe_reload()
        if self._context is None:
            raise AssertionError("the client cannot load %s / %s / %s" % (self.cert, self.key, self.bundle))
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(15)


def https_get(context, port):
    """One full mTLS handshake (a new connection) and GET / to 127.0.0.1:port; fails unless
    the answer is 200. Returns the issuer of the server certificate."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            issuer = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).issuer.rfc4514_string()
            tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            answer = b""
            while True:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                answer += chunk
    if not answer.startswith(b"HTTP/1.1 200"):
        raise AssertionError("nginx answered %r" % answer[:80])
    return issuer


def context_trusting(bundle_pem_path, cert=None, key=None):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(bundle_pem_path)
    if cert:
        context.load_cert_chain(cert, key)
    return context


def workdir():
    return tempfile.mkdtemp(prefix="mtls-rotation-")


def key_needles(pki_dir):
    """Strings that betray a private key of ``pki_dir`` in a log: every base64 body line
    of every key file (as in the PEM), and a slice of the base64 of the whole file (as
    ansible.builtin.slurp would print it), skipping the header every key shares."""
    needles = {}
    for path in glob.glob(os.path.join(pki_dir, "**", "*.key"), recursive=True):
        raw = _read(path)
        for line in raw.decode("ascii", "replace").splitlines():
            if line and not line.startswith("-----") and re.match(r"^[A-Za-z0-9+/=]{16,}$", line):
                needles[line] = path
        whole = base64.b64encode(raw).decode("ascii")
        needles[whole[60:100]] = path + " (base64 of the file)"
        if b"ENCRYPTED" in raw:
            # Delivery decrypts CA keys in memory: the plain form must not show either,
            # neither as PEM lines nor base64-encoded as in a Secret's data.
            plain = load_key(path).private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            for line in plain.decode("ascii").splitlines():
                if not line.startswith("-----") and len(line) >= 16:
                    needles[line] = path + " (decrypted)"
            needles[base64.b64encode(plain).decode("ascii")[60:100]] = path + " (decrypted, base64)"
    return needles


# --------------------------------------------------------------------------- cluster helpers


def secret_data(core, namespace, name):
    """{key: bytes} of a Secret, read with a kubernetes CoreV1Api."""
    data = core.read_namespaced_secret(name, namespace).data or {}
    return dict((key, base64.b64decode(value)) for key, value in data.items())


def server_pair(workdir):
    """A server certificate for 127.0.0.1 / localhost from a throw-away CA outside the PKI
    under test: (certificate path, key path, CA path). The CA is what the clients trust."""
    import datetime

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test edge server CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = [os.path.join(workdir, name) for name in ("edge-server.crt", "edge-server.key", "edge-server-ca.crt")]
    for path, content in zip(
        paths,
        (
            cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
            ca.public_bytes(serialization.Encoding.PEM),
        ),
    ):
        with open(path, "wb") as handle:
            handle.write(content)
    os.chmod(paths[1], 0o600)
    return tuple(paths)


def leaf_from(ca_cert, ca_key, dns_name):
    """(certificate PEM, key PEM) of a server/client leaf for ``dns_name`` signed by the CA."""
    import datetime

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


# --------------------------------------------------------------------------- one handshake with a server of a Secret


def server_context(directory, cert_pem, key_pem, client_ca_pem, crl_pem=None):
    """An ssl server context from PEM bytes (a Secret's data) that requires a client
    certificate chaining to ``client_ca_pem``. With ``crl_pem`` it checks a CRL for every
    certificate of the client's chain, as nginx's ssl_crl and Envoy do: a CA of the chain
    without its CRL fails the handshake."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    paths = dict((name, os.path.join(directory, name)) for name in ("tls.crt", "tls.key", "ca.crt", "ca.crl"))
    for name, content in (("tls.crt", cert_pem), ("tls.key", key_pem), ("ca.crt", client_ca_pem), ("ca.crl", crl_pem or b"")):
        descriptor = os.open(paths[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(paths["tls.crt"], paths["tls.key"])
    context.load_verify_locations(paths["ca.crt"])
    if crl_pem:
        # load_verify_locations reads the CRLs of a PEM file too.
        context.load_verify_locations(paths["ca.crl"])
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
    return context


def mtls_exchange(server_ctx, client_ctx, timeout=10):
    """One full mutual-TLS handshake and GET / between a Python ssl server on a free port of
    127.0.0.1 (``server_ctx``, requiring a client certificate) and ``client_ctx`` (through
    https_get, server name localhost). Returns the subject of the client certificate the
    server verified; fails with the errors of both sides."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(timeout)
    outcome = {}

    def serve():
        try:
            raw, _address = listener.accept()
        except OSError as exc:
            outcome["server"] = "accept: %s" % exc
            return
        try:
            raw.settimeout(timeout)
            with server_ctx.wrap_socket(raw, server_side=True) as tls:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                subject = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).subject.rfc4514_string()
                body = ("verified %s\n" % subject).encode("utf-8")
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
                outcome["client_subject"] = subject
        except (OSError, ssl.SSLError, ValueError) as exc:
            outcome["server"] = str(exc)
        finally:
            raw.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        https_get(client_ctx, listener.getsockname()[1])
    except (OSError, ssl.SSLError, AssertionError) as exc:
        server.join(timeout)
        raise AssertionError("mutual-TLS handshake failed - client: %s; server: %s" % (exc, outcome.get("server", "no error"))) from None
    finally:
        listener.close()
    server.join(timeout)
    if "client_subject" not in outcome:
        raise AssertionError("the server did not verify the client: %s" % outcome.get("server", "no answer"))
    return outcome["client_subject"]


# --------------------------------------------------------------------------- killing a playbook and its workers


def _children_by_parent():
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                # pid (comm) state ppid ...: comm may hold spaces and parentheses.
                state, parent = handle.read().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError, ValueError):
            continue
        if state != "Z":
            children.setdefault(int(parent), []).append(int(entry))
    return children


def _descendants(pid):
    children, found, stack = _children_by_parent(), set(), [pid]
    while stack:
        current = stack.pop()
        found.add(current)
        stack.extend(children.get(current, []))
    return found


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def kill_tree(process, timeout=30):
    """SIGKILL a playbook started with start_new_session=True, its workers and the modules
    they run, and return once all are dead. kill_group is not enough for ansible-core: each
    worker calls setsid(), so after the playbook's process group dies the worker and its
    module finish their task (a module is never cut mid-write, and it may write after the
    caller has looked). Everything is stopped first (SIGSTOP until no new descendant shows
    up), so nothing runs or forks between the kills and no orphan leaves the tree."""
    if process.poll() is not None:
        return 0  # it ended: its pid may belong to someone else by now
    stopped = set()
    while True:
        new = _descendants(process.pid) - stopped
        if not new:
            break
        for pid in new:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        stopped |= new
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    kill_group(process)
    deadline = time.time() + timeout
    while any(_alive(pid) for pid in stopped - {process.pid}):
        if time.time() > deadline:
            raise AssertionError("processes of the killed playbook still run after %d s: %s" % (timeout, sorted(p for p in stopped if _alive(p))))
        time.sleep(0.05)
    return len(stopped)

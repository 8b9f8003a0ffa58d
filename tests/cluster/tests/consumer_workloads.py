"""Long-lived mutual-TLS workloads fed by the real consumers (test_rotation_consumers.py).

A Pair is a server (a persistent loopback listener) and a client that shake hands every
INTERVAL_S. Before each handshake both sides take their certificate, key and trust from
where their consumer delivers them (a Source), and build their TLS contexts anew from
it, as a sidecar that reloads its files does. A handshake fails when the client cannot
connect, verify, be verified, or get its echo back; a consumer that cannot hand out a new
certificate for a moment (istiod or the SPIRE server restarting) is not a handshake
failure: the workload keeps its last certificate and the Source counts the miss.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from kubernetes.client.rest import ApiException
from test_consumers import TRUST_DOMAIN, fingerprint, istiod_entries, pod_runner, request_certificate, split_pem

INTERVAL_S = 0.3


class Material(NamedTuple):
    """What one side of a pair holds: its chain (leaf first), its key and the roots it trusts."""

    chain_pem: str
    key_pem: str
    trust_pem: str


def issuer_fingerprint(chain_pem: str) -> str:
    """SHA-256 of the certificate in the chain that issued the leaf (matched by key
    identifier, else by name); 'issuer:<DN>' when the chain does not carry it."""
    certs = [x509.load_pem_x509_certificate(pem.encode()) for pem in split_pem(chain_pem)]
    leaf = certs[0]
    try:
        aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        aki = None
    for pem, cert in zip(split_pem(chain_pem)[1:], certs[1:]):
        try:
            ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        except x509.ExtensionNotFound:
            ski = None
        if (aki and ski == aki) or (not aki and cert.subject == leaf.issuer):
            return fingerprint(pem)
    return "issuer:" + leaf.issuer.rfc4514_string()


def roots_of(pem: str) -> frozenset[str]:
    return frozenset(fingerprint(p) for p in split_pem(pem))


class Source:
    """Where a pair's material comes from. refresh() returns (server, client) Material."""

    def __init__(self, core):
        self.core = core
        self.refresh_failures = 0
        self.trust_history: list[frozenset[str]] = []  # distinct consecutive root sets of the watched bundle
        self.last: dict[str, Material] = {}

    def config_map_key(self, namespace: str, name: str, key: str) -> str | None:
        try:
            return (self.core.read_namespaced_config_map(name, namespace).data or {}).get(key)
        except ApiException:
            return None

    def observe(self, bundle: str | None) -> None:
        if bundle and split_pem(bundle):
            roots = roots_of(bundle)
            if not self.trust_history or self.trust_history[-1] != roots:
                self.trust_history.append(roots)

    def trust(self, side: str, namespace: str, name: str, key: str) -> str:
        """The bundle as delivered now; the last one read when the API does not answer."""
        bundle = self.config_map_key(namespace, name, key)
        if bundle and split_pem(bundle):
            return bundle
        self.refresh_failures += 1
        return self.last[side].trust_pem


class IstiodSource(Source):
    """Workload certificates from istiod's CA (istio-csr-client, a real service-account token),
    re-requested every renew_s; trust = istio-ca-root-cert of the workload's namespace."""

    def __init__(self, core, istiod: dict, tmp: Path, server=("zt-payments", "api"), client=("zt-shop", "frontend"), renew_s=2.0, ttl="10m"):
        super().__init__(core)
        self.istiod, self.tmp, self.renew_s, self.ttl = dict(istiod), tmp, renew_s, ttl
        self.workloads = {"server": server, "client": client}
        self.renewed_at = 0.0
        self.counter = itertools.count()
        for side, (namespace, account) in self.workloads.items():
            token = core.create_namespaced_service_account_token(
                account, namespace, {"spec": {"audiences": ["istio-ca"], "expirationSeconds": 3600}}
            ).status.token
            (tmp / f"{side}.token").parent.mkdir(parents=True, exist_ok=True)
            (tmp / f"{side}.token").write_text(token)

    def request(self, side: str, trust_pem: str) -> Material | None:
        namespace, account = self.workloads[side]
        out = self.tmp / f"{side}-{next(self.counter)}"
        out.mkdir(parents=True)
        (out / "trust.pem").write_text(trust_pem)
        spiffe = f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{account}"
        try:
            result = request_certificate(self.istiod, out / "trust.pem", self.tmp / f"{side}.token", spiffe, out, "-ttl", self.ttl)
            if result.returncode != 0:
                return None
            return Material((out / "cert-chain.pem").read_text(), (out / "key.pem").read_text(), trust_pem)
        except (OSError, subprocess.SubprocessError):
            return None
        finally:
            shutil.rmtree(out, ignore_errors=True)

    def refresh(self) -> tuple[Material, Material]:
        trusts = {side: self.trust(side, ns, "istio-ca-root-cert", "root-cert.pem") for side, (ns, _) in self.workloads.items()}
        self.observe(trusts["server"])
        if time.monotonic() - self.renewed_at >= self.renew_s:
            self.renewed_at = time.monotonic()
            for side in self.workloads:
                fresh = self.request(side, trusts[side])
                if fresh:
                    self.last[side] = fresh
                else:
                    self.refresh_failures += 1
                    entries = [e for e in istiod_entries() if e["state"] == "ready"]
                    if entries:  # istiod restarted: its new pod may have a new address
                        self.istiod = entries[0]
        return tuple(Material(self.last[side].chain_pem, self.last[side].key_pem, trusts[side]) for side in ("server", "client"))


class CertManagerSource(Source):
    """The Secrets cert-manager keeps for two Certificates (tls.crt, tls.key), re-read every
    time; trust = trust-manager's Bundle target ConfigMap of each namespace."""

    def __init__(self, core, server=("zt-payments", "payments-api-tls"), client=("zt-shop", "shop-client-tls"), bundle=("mtls-trust-bundle", "ca.crt")):
        super().__init__(core)
        self.secrets = {"server": server, "client": client}
        self.bundle = bundle

    def secret(self, side: str) -> tuple[str, str] | None:
        namespace, name = self.secrets[side]
        try:
            data = self.core.read_namespaced_secret(name, namespace).data or {}
            return base64.b64decode(data["tls.crt"]).decode(), base64.b64decode(data["tls.key"]).decode()
        except (ApiException, KeyError):
            return None

    def refresh(self) -> tuple[Material, Material]:
        trusts = {side: self.trust(side, ns, *self.bundle) for side, (ns, _) in self.secrets.items()}
        self.observe(trusts["server"])
        for side in self.secrets:
            pair = self.secret(side)
            if pair:
                self.last[side] = Material(*pair, trusts[side])
            else:
                self.refresh_failures += 1
        return tuple(Material(self.last[side].chain_pem, self.last[side].key_pem, trusts[side]) for side in ("server", "client"))


def spire_socket() -> str | None:
    """The API socket of the SPIRE server that runs now (a new pod has a new directory)."""
    state = json.loads(pod_runner("status", "--json").stdout or "{}")
    for entry in state.get("containers", []):
        if entry["consumer"] == "spire-server" and entry["state"] == "ready":
            return str(Path(entry["pod_dir"]) / "c" / "spire-server" / "tmp" / "spire-server" / "private" / "api.sock")
    return None


def mint_svid(binary: str, socket_path: str, spiffe: str, out: Path) -> tuple[str, str] | None:
    """spire-server x509 mint: (svid.pem chain, key.pem), or None when the server refused or is not there."""
    out.mkdir(parents=True)
    try:
        result = subprocess.run(
            [binary, "x509", "mint", "-socketPath", socket_path, "-spiffeID", spiffe, "-write", str(out)], capture_output=True, text=True, timeout=30
        )
        if result.returncode != 0:
            return None
        return (out / "svid.pem").read_text(), (out / "key.pem").read_text()
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        shutil.rmtree(out, ignore_errors=True)


class SpireSource(Source):
    """X.509 SVIDs minted by the SPIRE server every renew_s; trust = spire-bundle's bundle.crt
    (what the k8sbundle notifier publishes, namespace spire)."""

    def __init__(self, core, binary: str, socket_path: str, tmp: Path, server="zt-payments/sa/api", client="zt-payments/sa/frontend", renew_s=3.0):
        super().__init__(core)
        self.binary, self.socket, self.tmp, self.renew_s = binary, socket_path, tmp, renew_s
        self.ids = {"server": f"spiffe://{TRUST_DOMAIN}/ns/{server}", "client": f"spiffe://{TRUST_DOMAIN}/ns/{client}"}
        self.renewed_at = 0.0
        self.counter = itertools.count()

    def refresh(self) -> tuple[Material, Material]:
        trust = self.trust("server", "spire", "spire-bundle", "bundle.crt")
        self.observe(trust)
        if time.monotonic() - self.renewed_at >= self.renew_s:
            self.renewed_at = time.monotonic()
            for side, spiffe in self.ids.items():
                minted = mint_svid(self.binary, self.socket, spiffe, self.tmp / f"mint-{next(self.counter)}")
                if minted:
                    self.last[side] = Material(*minted, trust)
                else:
                    self.refresh_failures += 1
                    self.socket = spire_socket() or self.socket
        return tuple(Material(self.last[side].chain_pem, self.last[side].key_pem, trust) for side in ("server", "client"))


def context(material: Material, server_side: bool, key_file: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    key_file.write_text(material.chain_pem + material.key_pem)
    key_file.chmod(0o600)
    ctx.load_cert_chain(key_file)
    ctx.load_verify_locations(cadata=material.trust_pem)
    ctx.verify_mode = ssl.CERT_REQUIRED
    if not server_side:
        ctx.check_hostname = False  # SPIFFE identities: the chain is what is under test
    return ctx


class Pair:
    """A server and a client of one consumer, shaking hands every INTERVAL_S until stopped."""

    def __init__(self, name: str, source: Source, tmp: Path, stop: threading.Event):
        self.name, self.source, self.tmp, self.stop = name, source, tmp, stop
        tmp.mkdir(parents=True, exist_ok=True)
        self.ok = self.failed = 0
        self.issuers: set[str] = set()
        self.errors: list[str] = []
        self.server_errors: list[str] = []
        self.lock = threading.Lock()
        self.server_material: Material | None = None
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.settimeout(0.5)
        self.threads = [threading.Thread(target=self.serve, daemon=True), threading.Thread(target=self.drive, daemon=True)]

    def start(self) -> Pair:
        for thread in self.threads:
            thread.start()
        return self

    def join(self) -> None:
        for thread in self.threads:
            thread.join(30)
        self.listener.close()

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                with self.lock:
                    material = self.server_material
                ctx = context(material, True, self.tmp / "server.pem")
                connection.settimeout(10)
                with ctx.wrap_socket(connection, server_side=True) as tls:
                    tls.sendall(tls.recv(64).upper())
            except Exception as error:  # noqa: BLE001 - every refusal is recorded, none ends the server
                self.server_errors.append(f"{time.strftime('%H:%M:%S')} {type(error).__name__}: {error}")
            finally:
                connection.close()

    def handshake(self, material: Material) -> None:
        ctx = context(material, False, self.tmp / "client.pem")
        with socket.create_connection(self.listener.getsockname(), timeout=10) as raw, ctx.wrap_socket(raw) as tls:
            tls.sendall(b"ping")
            echo = tls.recv(64)
        if echo != b"PING":
            raise ssl.SSLError(f"the server answered {echo!r} (it refused the client or could not load its material)")

    def drive(self) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                server, client = self.source.refresh()
            except Exception as error:  # noqa: BLE001 - no material yet: no handshake to count
                self.source.refresh_failures += 1
                self.errors.append(f"{time.strftime('%H:%M:%S')} refresh: {type(error).__name__}: {error}")
                time.sleep(INTERVAL_S)
                continue
            with self.lock:
                self.server_material = server
            try:
                self.handshake(client)
                self.ok += 1
                self.issuers.update({issuer_fingerprint(server.chain_pem), issuer_fingerprint(client.chain_pem)})
            except Exception as error:  # noqa: BLE001 - whatever stops the handshake is a failure
                self.failed += 1
                self.errors.append(f"{time.strftime('%H:%M:%S')} {type(error).__name__}: {error}")
            self.stop.wait(max(0.0, INTERVAL_S - (time.monotonic() - began)))


def table(pairs: list[Pair], names: dict[str, str]) -> str:
    """pair, handshakes ok, failed, distinct issuers (named old/new where known), CSR/mint failures."""
    lines = [f"{'PAIR':14} {'OK':>6} {'FAILED':>6} {'ISSUERS':>7}  {'REFRESH FAILURES':>16}  ISSUERS SEEN"]
    for pair in pairs:
        seen = ", ".join(sorted(names.get(i, i[:12]) for i in pair.issuers))
        lines.append(f"{pair.name:14} {pair.ok:>6} {pair.failed:>6} {len(pair.issuers):>7}  {pair.source.refresh_failures:>16}  {seen}")
    return "\n".join(lines)

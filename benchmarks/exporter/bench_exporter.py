"""mtls-exporter vs x509-certificate-exporter v4 on the same 10,000 TLS Secrets, and
mtls-exporter alone at 100,000.

Loads N kubernetes.io/tls Secrets (parallel creates) into a fresh namespace of the local
control plane, then runs each exporter in turn against the same data, on 127.0.0.1:

  time to first complete scrape  process start -> first /metrics holding all N
                                 x509_cert_not_after series of the namespace
  scrape latency                 median of --scrapes full /metrics downloads, after that
  peak RSS                       VmHWM of the exporter process at the end

and prints a table with ratios (ours / reference; below 1.0 is better for all three).

With --count above 10,000 the run is done in steps (--steps, default 10000,COUNT): the
figures are taken at each step, the growth from the first step to the last is printed
beside what linear growth would be, and at the last step kube-apiserver is restarted
while the exporter runs (--no-restart to skip): every scrape during the restart must
still hold all N series, the exporter's memory must not double, and a Secret created
after the restart must appear (the exporter has caught up). The figures at the last step
are printed beside the targets of issue 16 (first complete scrape <= 30 s, scrape
<= 1.5 s, peak RSS <= 400 MB at 100,000).

The namespace is deleted afterwards, whatever happens (unless --keep), so the cluster
stays usable.

  benchmarks/exporter/run.sh [--count 10000] [--scrapes 15]
  benchmarks/exporter/run.sh --count 100000      # own cluster: see docs/performance-exporter.md
  benchmarks/exporter/run.sh --count 2000 --trust-bundle   # with chain checks against the bench CA
"""

from __future__ import annotations

import argparse
import datetime
import functools
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "zerotrust-mtls" / "bin"
REFERENCE_MODULE = "github.com/enix/x509-certificate-exporter/v4/cmd/x509-certificate-exporter"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- data ------------------------------------------------------------------------------------


class CertificateFactory:
    """Distinct leaf certificates from one CA; one shared leaf public key keeps it fast.

    Each Secret holds the certificate only (tls.key is empty: the exporter never reads
    keys, and 100,000 Secrets must fit etcd's quota comfortably).
    """

    def __init__(self):
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.now = datetime.datetime.now(datetime.timezone.utc)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zerotrust bench"), x509.NameAttribute(NameOID.COMMON_NAME, "bench root")])
        self.public_key = ec.generate_private_key(ec.SECP256R1()).public_key()

    def pem(self, index: int) -> bytes:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import NameOID

        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zerotrust bench"), x509.NameAttribute(NameOID.COMMON_NAME, f"svc-{index}.bench.svc")])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(self.ca_name)
            .public_key(self.public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - datetime.timedelta(hours=1))
            .not_valid_after(self.now + datetime.timedelta(days=1 + index % 90))
            .sign(self.ca_key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM)

    def ca_pem(self) -> bytes:
        """The CA's own certificate, for mtls-exporter's --trust-bundle."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization

        certificate = (
            x509.CertificateBuilder()
            .subject_name(self.ca_name)
            .issuer_name(self.ca_name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - datetime.timedelta(days=1))
            .not_valid_after(self.now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM)


def secret_body(name: str, cert_pem: bytes) -> dict:
    import base64

    return {
        "metadata": {"name": name, "labels": {"zerotrust.mtls/bench": "exporter"}},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": base64.b64encode(cert_pem).decode(), "tls.key": ""},
    }


def api_request(api, method: str, path: str, body=None, query=None, accept="application/json", timeout=60):
    """One raw request through the client's ApiClient (auth, TLS); returns (status, bytes).

    Raw, because CoreV1Api would deserialize every answer into models: at 100,000
    creates that is the loader's bottleneck, not the API server.
    """
    headers = {"Accept": accept}
    if body is not None:
        headers["Content-Type"] = "application/json"
    method, url, headers, body, post_params = api.param_serialize(
        method, path, query_params=list((query or {}).items()), header_params=headers, body=body, auth_settings=["BearerToken"]
    )
    response = api.call_api(method, url, headers, body, post_params, _request_timeout=timeout)
    response.read()
    return response.status, response.data


def create_secret(api, namespace: str, body: dict, patience: float = 0.0) -> None:
    """POST one Secret (409 AlreadyExists counts as done), retrying for `patience` s."""
    deadline = time.monotonic() + patience
    while True:
        try:
            status, data = api_request(api, "POST", f"/api/v1/namespaces/{namespace}/secrets", body=body)
            if status in (201, 409):
                return
            failure = RuntimeError(f"creating Secret {body['metadata']['name']}: HTTP {status} {data[:300]!r}")
        except Exception as error:  # noqa: BLE001 - connection refused while the API server restarts
            failure = error
        if time.monotonic() > deadline:
            raise failure
        time.sleep(1)


def count_secrets(api, namespace: str) -> int:
    """Secrets in the namespace, from a one-item metadata list (remainingItemCount)."""
    status, data = api_request(
        api, "GET", f"/api/v1/namespaces/{namespace}/secrets", query={"limit": "1"}, accept="application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    )
    if status != 200:
        raise RuntimeError(f"listing Secrets of {namespace}: HTTP {status}")
    page = json.loads(data)
    return len(page.get("items") or ()) + int((page.get("metadata") or {}).get("remainingItemCount") or 0)


def list_floor(api, namespace: str, page_size: int = 500) -> dict:
    """The API server's share: the exporter's paginated LIST, bytes read and dropped.

    Same requests as the exporter's first list (limit/continue, field selector on the
    type), no decoding: the floor under the time to first complete scrape.
    """
    started, requests, size, token = time.monotonic(), 0, 0, None
    while True:
        query = {"limit": str(page_size), "fieldSelector": "type=kubernetes.io/tls"}
        if token:
            query["continue"] = token
        status, data = api_request(api, "GET", f"/api/v1/namespaces/{namespace}/secrets", query=query, timeout=120)
        if status != 200:
            raise RuntimeError(f"listing Secrets of {namespace}: HTTP {status}")
        requests += 1
        size += len(data)
        # The continue token sits in the list's metadata, ahead of the items.
        match = re.search(rb'"continue":"([^"]*)"', data[:2048])
        token = match.group(1).decode() if match else None
        if not token:
            break
    return {"seconds": time.monotonic() - started, "requests": requests, "bytes": size}


def load_secrets(api, namespace: str, start: int, stop: int, workers: int, factory: CertificateFactory) -> dict:
    """Create bench-<start>..bench-<stop-1>: `workers` threads, each signing and POSTing."""
    counter = itertools.count(start)
    lock = threading.Lock()
    failures: list[BaseException] = []

    def work():
        while not failures:
            with lock:
                index = next(counter)
            if index >= stop:
                return
            try:
                create_secret(api, namespace, secret_body(f"bench-{index:06d}", factory.pem(index)), patience=30)
            except BaseException as error:  # noqa: BLE001 - reported once, stops the others
                failures.append(error)

    started, cpu_started = time.monotonic(), os.times()
    threads = [threading.Thread(target=work, daemon=True) for _unused in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    cpu = os.times()
    return {
        "secrets": stop - start,
        "seconds": time.monotonic() - started,
        "loader_cpu_s": (cpu.user + cpu.system) - (cpu_started.user + cpu_started.system),
    }


# -- exporters ---------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reference_binary(version: str) -> tuple[str | None, str]:
    """x509-certificate-exporter from $X509_EXPORTER_BIN, the cache, or one `go install`."""
    explicit = os.environ.get("X509_EXPORTER_BIN")
    if explicit:
        return (explicit, "from X509_EXPORTER_BIN") if os.access(explicit, os.X_OK) else (None, f"X509_EXPORTER_BIN={explicit} is not executable")
    cache_dir = CACHE_ROOT / f"x509-certificate-exporter-{version}"
    binary = cache_dir / "x509-certificate-exporter"
    if binary.exists():
        return str(binary), f"cached {version}"
    if not shutil.which("go"):
        return None, "no Go toolchain to build it"
    log(f"building x509-certificate-exporter {version} with go install (once, cached in {cache_dir})")
    cache_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["go", "install", f"{REFERENCE_MODULE}@{version}"],
        env={**os.environ, "GOBIN": str(cache_dir)},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0 or not binary.exists():
        reason = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
        return None, f"go install {REFERENCE_MODULE}@{version} failed: {reason}"
    return str(binary), f"built {version}"


def count_series(body: bytes, namespace: str) -> int:
    """x509_cert_not_after series of the namespace (each exporter watches only that one)."""
    return body.count(b"\nx509_cert_not_after{") + body.startswith(b"x509_cert_not_after{")


def proc_status_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def peak_rss_mb(pid: int) -> float:
    return proc_status_mb(pid, "VmHWM")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process: what it cost, whatever else loads the machine."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(url: str, timeout: float = 120) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


# -- the API server restart ---------------------------------------------------------------


class ApiServerRestart:
    """Stops the local control plane's kube-apiserver and starts it again, same flags.

    Works on a cluster of tests/cluster/up.sh (its run/kube-apiserver.pid names the PID
    and binary); the new PID is written back there, so status.sh and down.sh keep
    working. etcd keeps running: the API server comes back with the same data and a
    fresh watch cache, which is what a rolling restart of the control plane looks like
    to a client.
    """

    def __init__(self, cluster_dir: Path):
        self.cluster_dir = cluster_dir
        self.pid_file = cluster_dir / "run" / "kube-apiserver.pid"

    def available(self) -> str | None:
        """None when the restart can be done, else why not."""
        if not self.pid_file.is_file():
            return f"no {self.pid_file} (not a cluster of tests/cluster/up.sh)"
        try:
            self._running()
        except RuntimeError as error:
            return str(error)
        return None

    def _running(self) -> tuple[int, str]:
        lines = self.pid_file.read_text().split("\n")
        pid, binary = int(lines[0]), lines[1].strip()
        try:
            exe = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
        except OSError:
            raise RuntimeError(f"kube-apiserver (pid {pid} of {self.pid_file}) is not running") from None
        if exe != binary:
            raise RuntimeError(f"pid {pid} of {self.pid_file} runs {exe}, not {binary}")
        return pid, binary

    def restart(self, api) -> dict:
        pid, binary = self._running()
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = [arg.decode() for arg in handle.read().split(b"\0") if arg]
        stopped = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        while os.path.exists(f"/proc/{pid}") and time.monotonic() - stopped < 30:
            time.sleep(0.05)
        if os.path.exists(f"/proc/{pid}"):
            os.kill(pid, signal.SIGKILL)
        down = time.monotonic()
        with open(self.cluster_dir / "logs" / "kube-apiserver.log", "ab") as log_file:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_file.write_text(f"{process.pid}\n{binary}\n")
        log(f"kube-apiserver stopped (pid {pid}) and started again (pid {process.pid})")
        while True:
            try:
                if api_request(api, "GET", "/readyz", accept="text/plain", timeout=5)[0] == 200:
                    break
            except Exception:  # noqa: BLE001 - refused until it listens
                pass
            if time.monotonic() - down > 300:
                raise RuntimeError("kube-apiserver did not become ready within 300 s of its restart")
            time.sleep(0.2)
        ready = time.monotonic()
        return {"stop_s": down - stopped, "unavailable_s": ready - stopped}


class Scraper(threading.Thread):
    """Scrapes /metrics back to back and samples the exporter's RSS, until stopped."""

    def __init__(self, url: str, pid: int, namespace: str):
        super().__init__(daemon=True)
        self.url, self.pid, self.namespace = url, pid, namespace
        self.stop = threading.Event()
        self.series: list[int] = []
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.rss_peak_mb = 0.0

    def run(self) -> None:
        while not self.stop.is_set():
            begin = time.monotonic()
            try:
                body = scrape(self.url)
                self.latencies.append(time.monotonic() - begin)
                self.series.append(count_series(body, self.namespace))
                del body
            except OSError as error:
                self.failures.append(str(error))
            self.rss_peak_mb = max(self.rss_peak_mb, proc_status_mb(self.pid, "VmRSS"))
            self.stop.wait(0.2)


def restart_check(restart: ApiServerRestart, api, url: str, pid: int, stderr_path: str, *, namespace: str, count: int, factory: CertificateFactory) -> dict:
    """Restart kube-apiserver under a running exporter; check series, memory, catch-up."""
    time.sleep(2)
    rss_before = proc_status_mb(pid, "VmRSS")
    hwm_before = peak_rss_mb(pid)
    cpu_before = cpu_seconds(pid)
    scraper = Scraper(url, pid, namespace)
    scraper.start()
    time.sleep(1)
    timing = restart.restart(api)
    # A Secret created after the restart must show up: the exporter has relisted or
    # resumed its watch, not merely kept serving the old store.
    probe = f"bench-probe-{uuid.uuid4().hex[:6]}"
    create_secret(api, namespace, secret_body(probe, factory.pem(count + 7)), patience=60)
    ready = time.monotonic()
    caught_up = None
    while time.monotonic() - ready < 600:
        if scraper.series and scraper.series[-1] >= count + 1:
            caught_up = time.monotonic() - ready
            break
        time.sleep(0.2)
    time.sleep(1)
    scraper.stop.set()
    scraper.join()
    api_request(api, "DELETE", f"/api/v1/namespaces/{namespace}/secrets/{probe}")
    with open(stderr_path, errors="replace") as handle:
        log_text = handle.read()
    return {
        **timing,
        "scrapes_during": len(scraper.series),
        "failed_scrapes": len(scraper.failures),
        "min_series_during": min(scraper.series) if scraper.series else 0,
        "scrape_max_s": max(scraper.latencies) if scraper.latencies else None,
        "probe_visible_after_s": caught_up,
        "rss_before_mb": rss_before,
        "rss_peak_during_mb": scraper.rss_peak_mb,
        "hwm_before_mb": hwm_before,
        "hwm_after_mb": peak_rss_mb(pid),
        "cpu_during_s": cpu_seconds(pid) - cpu_before,
        "relists": len(re.findall(r"relisting", log_text)),
        "lists_logged": re.findall(r"listed (\d+) objects in ([0-9.]+)s", log_text),
    }


# -- measuring one exporter ---------------------------------------------------------------------


def measure(name: str, command: list[str], port: int, namespace: str, count: int, scrapes: int, timeout: float, poll: float = 0.1, after=None) -> dict:
    """Start the exporter, wait for its first complete scrape, time --scrapes scrapes;
    then `after(url, pid, stderr_path)` (the restart check) while it still runs."""
    url = f"http://127.0.0.1:{port}/metrics"
    log(f"{name}: {' '.join(command)}")
    with tempfile.NamedTemporaryFile(prefix="exporter-", suffix=".log") as stderr:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            first_complete = None
            polls = 0
            while time.monotonic() - started < timeout:
                if process.poll() is not None:
                    stderr.seek(0)
                    raise RuntimeError(f"{name} exited: {stderr.read().decode()[-2000:]}")
                try:
                    body = scrape(url)
                except OSError:
                    time.sleep(poll)
                    continue
                polls += 1
                if count_series(body, namespace) >= count:
                    first_complete = time.monotonic() - started
                    cpu_to_complete = cpu_seconds(process.pid)
                    break
                del body
                time.sleep(poll)
            if first_complete is None:
                raise RuntimeError(f"{name}: not all {count} series after {timeout:.0f}s")
            del body
            latencies = []
            cpu_before_scrapes = cpu_seconds(process.pid)
            for _unused in range(scrapes):
                begin = time.monotonic()
                body = scrape(url)
                latencies.append(time.monotonic() - begin)
            series = count_series(body, namespace)
            result = {
                "first_complete_scrape_s": first_complete,
                "cpu_to_first_complete_s": cpu_to_complete,
                "polls_until_complete": polls,
                "cpu_per_scrape_s": (cpu_seconds(process.pid) - cpu_before_scrapes) / scrapes,
                "scrape_median_s": statistics.median(latencies),
                "scrape_max_s": max(latencies),
                "scrape_bytes": len(body),
                "peak_rss_mb": peak_rss_mb(process.pid),
                "series": series,
            }
            del body
            if after is not None:
                result["restart"] = after(url, process.pid, stderr.name)
            return result
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def ours_command(kubeconfig: str, namespace: str, port: int, python: str, trust_bundle: str | None = None) -> list[str]:
    # INFO: the exporter logs each list (objects, seconds) and each relist, a few lines.
    extra = ["--trust-bundle", trust_bundle] if trust_bundle else []
    return [
        python,
        "-m",
        "mtls_exporter",
        "--kubeconfig",
        kubeconfig,
        "--namespace",
        namespace,
        "--secret-type",
        "kubernetes.io/tls",
        "--listen",
        f"127.0.0.1:{port}",
        "--log-level",
        "INFO",
    ] + extra


def reference_command(binary: str, kubeconfig: str, namespace: str, port: int) -> list[str]:
    return [
        binary,
        "--kubeconfig",
        kubeconfig,
        "--watch-kube-secrets",
        "--secret-type",
        "kubernetes.io/tls:tls.crt",
        "--include-namespace",
        namespace,
        "--expose-relative-metrics",
        "--listen-address",
        f"127.0.0.1:{port}",
    ]


def delete_namespace(api, namespace: str, patience: float = 600.0) -> None:
    """Delete the Secrets and the namespace, retrying through an API server restart."""
    log(f"deleting namespace {namespace}")
    deadline = time.monotonic() + patience
    while True:
        try:
            status, data = api_request(api, "DELETE", f"/api/v1/namespaces/{namespace}/secrets", timeout=600)
            if status in (200, 404):
                status, data = api_request(api, "DELETE", f"/api/v1/namespaces/{namespace}")
                if status in (200, 202, 404):
                    return
            failure = RuntimeError(f"HTTP {status} {data[:200]!r}")
        except Exception as error:  # noqa: BLE001 - connection refused while it restarts
            failure = error
        if time.monotonic() > deadline:
            raise RuntimeError(f"could not delete namespace {namespace}; delete it by hand") from failure
        time.sleep(5)


# -- report ------------------------------------------------------------------------------------


FIGURES = (
    ("first_complete_scrape_s", "time to first complete scrape", "s"),
    ("scrape_median_s", "scrape latency (median)", "s"),
    ("peak_rss_mb", "peak RSS (VmHWM)", "MB"),
    # CPU figures do not move with the load other processes put on the machine.
    ("cpu_to_first_complete_s", "CPU until first complete scrape", "s"),
    ("cpu_per_scrape_s", "CPU per scrape", "s"),
)

# Issue 16, at 100,000 Secrets.
TARGETS = {"first_complete_scrape_s": 30.0, "scrape_median_s": 1.5, "peak_rss_mb": 400.0}


def table(results: dict[str, dict], reference_note: str) -> str:
    ours, reference = results.get("mtls-exporter"), results.get("x509-certificate-exporter")
    lines = [f"{'figure':32} {'mtls-exporter':>15} {'x509-cert-exp v4':>17} {'ratio ours/ref':>15}"]
    for key, label, unit in FIGURES:
        mine = f"{ours[key]:.3f} {unit}" if ours else "n/a"
        theirs = f"{reference[key]:.3f} {unit}" if reference else "n/a"
        ratio = f"{ours[key] / reference[key]:.2f}x" if ours and reference else "n/a"
        lines.append(f"{label:32} {mine:>15} {theirs:>17} {ratio:>15}")
    if ours:
        lines.append(
            f"{'series / body size':32} {ours['series']:>7} {ours['scrape_bytes'] / 1e6:5.1f} MB"
            + (f" {reference['series']:>8} {reference['scrape_bytes'] / 1e6:5.1f} MB" if reference else "")
        )
    lines.append(f"reference: {reference_note}")
    return "\n".join(lines)


def growth_table(steps: dict[int, dict]) -> str:
    """mtls-exporter's figures at each step, and last/first beside the count ratio."""
    counts = sorted(steps)
    first, last = counts[0], counts[-1]
    header = f"{'figure':32}" + "".join(f" {count:>14,}" for count in counts) + f" {'growth':>8} {'(count x' + format(last / first, 'g') + ')':>12}"
    lines = [header]
    for key, label, unit in FIGURES:
        values = [steps[count][key] for count in counts]
        growth = values[-1] / values[0] if values[0] else float("nan")
        lines.append(f"{label:32}" + "".join(f" {value:>11.3f} {unit:<2}" for value in values) + f" {growth:>7.1f}x")
    per_secret = (steps[last]["peak_rss_mb"] - steps[first]["peak_rss_mb"]) * 1024 / (last - first)
    lines.append(f"{'peak RSS per added Secret':32} {per_secret:>11.2f} KB (from {first:,} to {last:,})")
    lines.append("growth: last step / first step; linear means the same factor as the count (CPU figures compare best)")
    return "\n".join(lines)


def target_lines(result: dict, count: int) -> str:
    lines = [f"targets at {count:,} Secrets (issue 16):"]
    for key, label, unit in FIGURES:
        if key in TARGETS:
            value, target = result[key], TARGETS[key]
            lines.append(f"  {label:32} {value:9.3f} {unit:<2}  target <= {target:g} {unit:<2}  {'ok' if value <= target else 'MISSED'}")
    return "\n".join(lines)


def restart_lines(check: dict, count: int) -> str:
    doubled = check["rss_peak_during_mb"] >= 2 * check["rss_before_mb"]
    return "\n".join(
        [
            "kube-apiserver restart while the exporter ran:",
            f"  API server unavailable            {check['unavailable_s']:.1f} s (stop {check['stop_s']:.1f} s)",
            f"  scrapes during the restart        {check['scrapes_during']} ({check['failed_scrapes']} failed), "
            f"fewest series {check['min_series_during']:,} of {count:,}  "
            f"{'ok' if check['failed_scrapes'] == 0 and check['min_series_during'] >= count else 'GAP'}",
            f"  Secret created after the restart  in the scrape {check['probe_visible_after_s']:.1f} s later"
            if check["probe_visible_after_s"] is not None
            else "  Secret created after the restart  NOT SEEN within 600 s",
            f"  exporter RSS                      {check['rss_before_mb']:.0f} MB before, peak {check['rss_peak_during_mb']:.0f} MB "
            f"during ({'DOUBLED' if doubled else 'not doubled: ok'}); VmHWM {check['hwm_before_mb']:.0f} -> {check['hwm_after_mb']:.0f} MB",
            f"  exporter CPU during the check     {check['cpu_during_s']:.2f} s; relists logged: {check['relists']}",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", default=os.environ.get("MTLS_KUBECONFIG", str(REPO_ROOT / ".cluster" / "kubeconfig")))
    parser.add_argument(
        "--cluster-dir",
        default=None,
        help="the local control plane's directory, for the API server restart (default: $MTLS_CLUSTER_DIR, else the kubeconfig's directory)",
    )
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--steps", help="comma-separated Secret counts to measure at (default: 10000,COUNT when COUNT > 10000)")
    parser.add_argument("--scrapes", type=int, default=15)
    parser.add_argument("--workers", type=int, default=48, help="parallel Secret creates")
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between scrapes while waiting for a complete one")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for a complete scrape")
    parser.add_argument(
        "--restart", dest="restart", action="store_true", default=None, help="restart kube-apiserver at the last step (default when COUNT > 10000)"
    )
    parser.add_argument("--no-restart", dest="restart", action="store_false")
    parser.add_argument("--namespace", help="use (and fill up) this namespace instead of a fresh one")
    parser.add_argument("--keep", action="store_true", help="do not delete the namespace afterwards")
    parser.add_argument("--reference-version", default=os.environ.get("X509_EXPORTER_VERSION", "v4.0.0"))
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--trust-bundle", action="store_true", help="run mtls-exporter with the bench CA as --trust-bundle (chain checks)")
    args = parser.parse_args()
    if not os.path.isfile(args.kubeconfig):
        print(f"no kubeconfig at {args.kubeconfig}: start the local control plane (tests/cluster/up.sh)", file=sys.stderr)
        return 2
    steps = sorted({int(step) for step in args.steps.split(",")}) if args.steps else ([10000, args.count] if args.count > 10000 else [args.count])
    restart_wanted = args.restart if args.restart is not None else steps[-1] > 10000
    cluster_dir = Path(args.cluster_dir or os.environ.get("MTLS_CLUSTER_DIR") or Path(args.kubeconfig).parent)
    restart = ApiServerRestart(cluster_dir) if restart_wanted else None
    if restart is not None and (why := restart.available()):
        print(f"cannot restart kube-apiserver: {why}; pass --cluster-dir or --no-restart", file=sys.stderr)
        return 2

    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=args.kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = args.workers
    api = client.ApiClient(configuration)

    reference, reference_note = reference_binary(args.reference_version)
    log(f"reference: {reference_note}")
    namespace = args.namespace or f"mtls-bench-{uuid.uuid4().hex[:6]}"
    status, data = api_request(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": namespace, "labels": {"zerotrust.mtls/bench": "exporter"}}})
    if status not in (201, 409):
        raise RuntimeError(f"creating namespace {namespace}: HTTP {status} {data[:200]!r}")
    factory = CertificateFactory()
    trust_bundle = None
    if args.trust_bundle:
        trust_bundle = str(Path(tempfile.mkdtemp(prefix="mtls-bench-")) / "bench-ca.pem")
        Path(trust_bundle).write_bytes(factory.ca_pem())
    env_python = str(REPO_ROOT / ".venv" / "bin" / "python")
    os.environ["PYTHONPATH"] = str(REPO_ROOT / "exporter" / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")
    report: dict = {"steps": {}, "loads": [], "namespace": namespace, "cpus": os.cpu_count()}
    try:
        present = count_secrets(api, namespace)
        for step in steps:
            if present > step:
                log(f"step {step}: skipped, {namespace} already holds {present} Secrets")
                continue
            if present < step:
                log(f"creating Secrets {present}..{step - 1} in {namespace} with {args.workers} workers")
                loaded = load_secrets(api, namespace, present, step, args.workers, factory)
                log(
                    f"loaded {loaded['secrets']} in {loaded['seconds']:.1f}s ({loaded['secrets'] / loaded['seconds']:.0f}/s, "
                    f"loader CPU {loaded['loader_cpu_s']:.1f}s)"
                )
                report["loads"].append(loaded)
                present = step
            results: dict[str, dict] = {}
            floor = list_floor(api, namespace)
            log(f"LIST floor: {floor['requests']} pages, {floor['bytes'] / 1e6:.0f} MB in {floor['seconds']:.1f}s")
            port = free_port()
            after = None
            if restart is not None and step == steps[-1]:
                after = functools.partial(restart_check, restart, api, namespace=namespace, count=step, factory=factory)
            results["mtls-exporter"] = measure(
                "mtls-exporter",
                ours_command(args.kubeconfig, namespace, port, env_python, trust_bundle),
                port,
                namespace,
                step,
                args.scrapes,
                args.timeout,
                args.poll,
                after,
            )
            if reference:
                port = free_port()
                command = reference_command(reference, args.kubeconfig, namespace, port)
                results["x509-certificate-exporter"] = measure(
                    "x509-certificate-exporter", command, port, namespace, step, args.scrapes, args.timeout, args.poll
                )
            results["mtls-exporter"]["list_floor_s"] = floor["seconds"]
            report["steps"][step] = results
            print(f"\n{step:,} kubernetes.io/tls Secrets, {args.scrapes} scrapes each, 127.0.0.1, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
            print(table(results, reference_note))
            print(
                f"{'API server LIST alone (floor)':32} {floor['seconds']:>13.3f} s  "
                f"({floor['requests']} pages of 500, {floor['bytes'] / 1e6:.0f} MB, read and dropped)",
                flush=True,
            )
    finally:
        if not args.keep:
            delete_namespace(api, namespace)
    measured = {step: results["mtls-exporter"] for step, results in report["steps"].items()}
    if measured:
        last = max(measured)
        for loaded in report["loads"]:
            print(
                f"\nloading: {loaded['secrets']:,} Secrets in {loaded['seconds']:.1f} s "
                f"({loaded['secrets'] / loaded['seconds']:.0f}/s, {args.workers} parallel creates)"
            )
        if len(measured) > 1:
            print("\nmtls-exporter from step to step:")
            print(growth_table(measured))
        if last >= 100000:
            print()
            print(target_lines(measured[last], last))
        if "restart" in measured[last]:
            print()
            print(restart_lines(measured[last]["restart"], last))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"count": args.count, "reference": reference_note, **report}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

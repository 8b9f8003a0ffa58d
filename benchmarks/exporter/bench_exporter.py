"""mtls-exporter vs x509-certificate-exporter v4 on the same 10,000 TLS Secrets.

Loads N kubernetes.io/tls Secrets (parallel creates) into a fresh namespace of the local
control plane, then runs each exporter in turn against the same data, on 127.0.0.1:

  time to first complete scrape  process start -> first /metrics holding all N
                                 x509_cert_not_after series of the namespace
  scrape latency                 median of --scrapes full /metrics downloads, after that
  peak RSS                       VmHWM of the exporter process at the end

and prints a table with ratios (ours / reference; below 1.0 is better for all three).
The namespace is deleted afterwards, whatever happens, so the shared cluster stays usable.

  benchmarks/exporter/run.sh [--count 10000] [--scrapes 15]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
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


def make_certificates(count: int):
    """N distinct leaf certificates from one CA; one shared leaf key keeps generation fast."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zerotrust bench"), x509.NameAttribute(NameOID.COMMON_NAME, "bench root")])
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key_pem = leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    for index in range(count):
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zerotrust bench"), x509.NameAttribute(NameOID.COMMON_NAME, f"svc-{index}.bench.svc")])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(ca_name)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1 + index % 90))
            .sign(ca_key, hashes.SHA256())
        )
        yield certificate.public_bytes(serialization.Encoding.PEM), leaf_key_pem


def load_secrets(core, namespace: str, count: int, workers: int) -> float:
    import base64

    start = time.monotonic()
    bodies = (
        {
            "metadata": {"name": f"bench-{index:05d}", "labels": {"zerotrust.mtls/bench": "exporter"}},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()},
        }
        for index, (cert, key) in enumerate(make_certificates(count))
    )
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for _unused in pool.map(lambda body: core.create_namespaced_secret(namespace, body), bodies):
            pass
    return time.monotonic() - start


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
        env={**os.environ, "GOBIN": str(cache_dir)}, capture_output=True, text=True, timeout=1800, check=False)
    if result.returncode != 0 or not binary.exists():
        reason = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
        return None, f"go install {REFERENCE_MODULE}@{version} failed: {reason}"
    return str(binary), f"built {version}"


def count_series(body: bytes, namespace: str) -> int:
    marker = f'secret_namespace="{namespace}"'.encode()
    return sum(1 for line in body.split(b"\n") if line.startswith(b"x509_cert_not_after{") and marker in line)


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process: what it cost, whatever else loads the machine."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name: str, command: list[str], port: int, namespace: str, count: int, scrapes: int, timeout: float) -> dict:
    url = f"http://127.0.0.1:{port}/metrics"
    log(f"{name}: {' '.join(command)}")
    with tempfile.TemporaryFile() as stderr:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            first_complete = None
            while time.monotonic() - started < timeout:
                if process.poll() is not None:
                    stderr.seek(0)
                    raise RuntimeError(f"{name} exited: {stderr.read().decode()[-2000:]}")
                try:
                    with urllib.request.urlopen(url, timeout=60) as response:
                        body = response.read()
                except OSError:
                    time.sleep(0.1)
                    continue
                if count_series(body, namespace) >= count:
                    first_complete = time.monotonic() - started
                    cpu_to_complete = cpu_seconds(process.pid)
                    break
                time.sleep(0.1)
            if first_complete is None:
                raise RuntimeError(f"{name}: not all {count} series after {timeout:.0f}s")
            latencies = []
            cpu_before_scrapes = cpu_seconds(process.pid)
            for _unused in range(scrapes):
                begin = time.monotonic()
                with urllib.request.urlopen(url, timeout=60) as response:
                    body = response.read()
                latencies.append(time.monotonic() - begin)
            series = count_series(body, namespace)
            return {
                "first_complete_scrape_s": first_complete,
                "cpu_to_first_complete_s": cpu_to_complete,
                "cpu_per_scrape_s": (cpu_seconds(process.pid) - cpu_before_scrapes) / scrapes,
                "scrape_median_s": statistics.median(latencies),
                "scrape_bytes": len(body),
                "peak_rss_mb": peak_rss_mb(process.pid),
                "series": series,
            }
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def ours_command(kubeconfig: str, namespace: str, port: int, python: str) -> list[str]:
    return [
        python, "-m", "mtls_exporter", "--kubeconfig", kubeconfig, "--namespace", namespace,
        "--secret-type", "kubernetes.io/tls", "--listen", f"127.0.0.1:{port}", "--log-level", "WARNING",
    ]


def reference_command(binary: str, kubeconfig: str, namespace: str, port: int) -> list[str]:
    return [
        binary, "--kubeconfig", kubeconfig, "--watch-kube-secrets", "--secret-type", "kubernetes.io/tls:tls.crt",
        "--include-namespace", namespace, "--expose-relative-metrics", "--listen-address", f"127.0.0.1:{port}",
    ]


def delete_namespace(core, namespace: str, patience: float = 300.0) -> None:
    """Delete the Secrets and the namespace, retrying through an API server restart."""
    from kubernetes.client import ApiException

    log(f"deleting namespace {namespace}")
    deadline = time.monotonic() + patience
    while True:
        try:
            core.delete_collection_namespaced_secret(namespace)
            core.delete_namespace(namespace)
            return
        except ApiException as error:
            if error.status == 404:
                return
            failure = error
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


def table(results: dict[str, dict], reference_note: str) -> str:
    ours, reference = results.get("mtls-exporter"), results.get("x509-certificate-exporter")
    lines = [f"{'figure':32} {'mtls-exporter':>15} {'x509-cert-exp v4':>17} {'ratio ours/ref':>15}"]
    for key, label, unit in FIGURES:
        mine = f"{ours[key]:.3f} {unit}" if ours else "n/a"
        theirs = f"{reference[key]:.3f} {unit}" if reference else "n/a"
        ratio = f"{ours[key] / reference[key]:.2f}x" if ours and reference else "n/a"
        lines.append(f"{label:32} {mine:>15} {theirs:>17} {ratio:>15}")
    if ours:
        lines.append(f"{'series / body size':32} {ours['series']:>7} {ours['scrape_bytes'] / 1e6:5.1f} MB"
                     + (f" {reference['series']:>8} {reference['scrape_bytes'] / 1e6:5.1f} MB" if reference else ""))
    lines.append(f"reference: {reference_note}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", default=os.environ.get("MTLS_KUBECONFIG", str(REPO_ROOT / ".cluster" / "kubeconfig")))
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--scrapes", type=int, default=15)
    parser.add_argument("--workers", type=int, default=16, help="parallel Secret creates")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for a complete scrape")
    parser.add_argument("--reference-version", default=os.environ.get("X509_EXPORTER_VERSION", "v4.0.0"))
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if not os.path.isfile(args.kubeconfig):
        print(f"no kubeconfig at {args.kubeconfig}: start the local control plane (tests/cluster/up.sh)", file=sys.stderr)
        return 2

    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=args.kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = args.workers
    core = client.CoreV1Api(client.ApiClient(configuration))

    reference, reference_note = reference_binary(args.reference_version)
    log(f"reference: {reference_note}")
    namespace = f"mtls-bench-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace, "labels": {"zerotrust.mtls/bench": "exporter"}}})
    results: dict[str, dict] = {}
    try:
        log(f"creating {args.count} TLS Secrets in {namespace} with {args.workers} workers")
        seconds = load_secrets(core, namespace, args.count, args.workers)
        log(f"loaded in {seconds:.1f}s ({args.count / seconds:.0f}/s)")
        env_python = str(REPO_ROOT / ".venv" / "bin" / "python")
        os.environ["PYTHONPATH"] = str(REPO_ROOT / "exporter" / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")
        port = free_port()
        results["mtls-exporter"] = measure(
            "mtls-exporter", ours_command(args.kubeconfig, namespace, port, env_python), port, namespace, args.count, args.scrapes, args.timeout
        )
        if reference:
            port = free_port()
            command = reference_command(reference, args.kubeconfig, namespace, port)
            results["x509-certificate-exporter"] = measure(
                "x509-certificate-exporter", command, port, namespace, args.count, args.scrapes, args.timeout
            )
    finally:
        delete_namespace(core, namespace)
    print(f"\n{args.count} kubernetes.io/tls Secrets, {args.scrapes} scrapes each, 127.0.0.1, {os.cpu_count()} CPUs")
    print(table(results, reference_note))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"count": args.count, "reference": reference_note, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

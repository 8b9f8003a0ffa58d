"""Where mtls-exporter's time and memory go at N Secrets, in one process, no API server.

Builds API-server-shaped SecretList pages (500 kubernetes.io/tls Secrets each, as the
exporter's paginated LIST receives them), then times each stage the way ListWatch runs
it: JSON decoding of the pages, stripping to certificate keys (objects.strip_secret),
parsing into the store (store.upsert); then the store's memory and a few full scrapes
(exposition.iter_text, as /metrics streams it). CPU seconds (process time) throughout:
unlike wall time they barely move with the load of other processes.

  .venv/bin/python benchmarks/exporter/profile_exporter.py [--count 100000] [--profile ingest|scrape]

--distinct certificates are generated (default 10,000) and reused under new Secret
names up to --count; with more distinct certificates than the parse cache holds (4,096)
every object is parsed, as with distinct certificates.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import gc
import json
import pstats
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "exporter" / "src"))

PAGE = 500


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def certificates(count: int) -> tuple[bytes, list[str]]:
    """(the bench CA's certificate as PEM, `count` base64 PEM leaves it signed), the same
    certificates bench_exporter.py loads into the cluster."""
    from bench_exporter import CertificateFactory

    factory = CertificateFactory()
    return factory.ca_pem(), [base64.b64encode(factory.pem(index)).decode() for index in range(count)]


def pages(count: int, encoded: list[str]):
    """SecretList JSON pages, shaped like kube-apiserver's (managedFields included)."""
    for start in range(0, count, PAGE):
        items = []
        for index in range(start, min(start + PAGE, count)):
            items.append(
                {
                    "metadata": {
                        "name": f"bench-{index:06d}",
                        "namespace": "bench",
                        "uid": f"00000000-0000-4000-8000-{index:012d}",
                        "resourceVersion": str(1000 + index),
                        "creationTimestamp": "2026-12-03T07:44:19Z",
                        "labels": {"zerotrust.mtls/bench": "exporter"},
                        "managedFields": [
                            {
                                "manager": "bench",
                                "operation": "Update",
                                "apiVersion": "v1",
                                "time": "2026-12-03T07:44:19Z",
                                "fieldsType": "FieldsV1",
                                "fieldsV1": {"f:data": {".": {}, "f:tls.crt": {}, "f:tls.key": {}}, "f:type": {}},
                            }
                        ],
                    },
                    "data": {"tls.crt": encoded[index % len(encoded)], "tls.key": ""},
                    "type": "kubernetes.io/tls",
                }
            )
        yield json.dumps({"kind": "SecretList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100000)
    parser.add_argument("--distinct", type=int, default=10000)
    parser.add_argument("--scrapes", type=int, default=3)
    parser.add_argument("--trust-bundle", action="store_true", help="check every chain against the bench CA, as with --trust-bundle")
    parser.add_argument("--profile", choices=("ingest", "scrape"), help="cProfile one stage (slower, shows where)")
    args = parser.parse_args()

    from prometheus_client.registry import CollectorRegistry

    from mtls_exporter.certs import parse_pem_bundle
    from mtls_exporter.chains import TrustAnchors
    from mtls_exporter.collector import CertificateCollector
    from mtls_exporter.exposition import iter_text
    from mtls_exporter.objects import KeySelection, strip_secret
    from mtls_exporter.store import CertificateStore

    started = time.monotonic()
    ca_pem, encoded = certificates(min(args.distinct, args.count))
    raw_pages = list(pages(args.count, encoded))
    del encoded
    print(
        f"{args.count:,} Secrets in {len(raw_pages)} pages of {PAGE} ({sum(map(len, raw_pages)) / 1e6:.0f} MB of JSON), "
        f"built in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )

    selection = KeySelection()
    anchors = TrustAnchors(parse_pem_bundle(ca_pem)) if args.trust_bundle else None
    store = CertificateStore(anchors, keep_der=args.trust_bundle)
    gc.collect()
    baseline = rss_mb()
    stages = {"json": 0.0, "strip": 0.0, "store": 0.0}

    def ingest():
        while raw_pages:
            data = raw_pages.pop(0)
            begin = time.process_time()
            page = json.loads(data)
            decoded = time.process_time()
            stripped = [strip_secret(obj, selection) for obj in page["items"]]
            del page, data
            done_strip = time.process_time()
            for item in stripped:
                store.upsert(item, "secrets:bench")
            stages["json"] += decoded - begin
            stages["strip"] += done_strip - decoded
            stages["store"] += time.process_time() - done_strip

    if args.profile == "ingest":
        profiler = cProfile.Profile()
        profiler.runcall(ingest)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    else:
        ingest()
    gc.collect()
    gc.freeze()
    store_mb = rss_mb() - baseline
    objects = len(store.snapshot())
    print(
        f"ingest CPU: JSON decoding {stages['json']:.2f} s, stripping {stages['strip']:.2f} s, "
        f"parsing into the store {stages['store']:.2f} s  (total {sum(stages.values()):.2f} s, "
        f"{sum(stages.values()) / objects * 1e6:.0f} us per Secret)"
    )
    print(f"store: {store_mb:.0f} MB for {objects:,} Secrets ({store_mb * 1048576 / objects:.0f} bytes each)")

    registry = CollectorRegistry()
    registry.register(CertificateCollector(store))
    gc.disable()
    for _unused in range(args.scrapes):
        begin_cpu, begin = time.process_time(), time.monotonic()
        size = sum(len(chunk) for chunk in iter_text(registry))
        print(f"scrape: {time.process_time() - begin_cpu:.3f} s CPU, {time.monotonic() - begin:.3f} s wall, {size / 1e6:.0f} MB")
    if args.profile == "scrape":
        profiler = cProfile.Profile()
        profiler.runcall(lambda: sum(len(chunk) for chunk in iter_text(registry)))
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (includes the pages it built)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

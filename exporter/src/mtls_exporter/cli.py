"""mtls-exporter command line."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading

from prometheus_client.registry import CollectorRegistry

from . import __version__, certs, chains
from .collector import DEFAULT_TRUST_BUNDLE_SOURCES, CertificateCollector, RotationState, TrustBundleSource
from .files import FilePoller
from .objects import (
    DEFAULT_CONFIGMAP_KEYS,
    DEFAULT_OPAQUE_SECRET_KEYS,
    DEFAULT_SECRET_TYPES,
    ISTIO_KEY_AND_CERT_KEYS,
    SECRET_TYPE_ISTIO,
    SECRET_TYPE_OPAQUE,
    SECRET_TYPE_TLS,
    TLS_SECRET_KEYS,
    KeySelection,
)
from .server import MetricsApp, serve
from .store import CertificateStore

LOG = logging.getLogger("mtls_exporter")

DEFAULT_LISTEN = "127.0.0.1:9793"


def _csv(values: list[str] | None) -> list[str]:
    """Accept both repeated flags and comma-separated lists."""
    return [item.strip() for value in values or [] for item in value.split(",") if item.strip()]


def _add_list_option(group, flag: str, metavar: str, help_text: str, dest: str | None = None) -> None:
    """A repeatable option; its values are read with _csv, so each may also be a comma-separated list."""
    group.add_argument(flag, action="append", dest=dest or flag[2:].replace("-", "_"), metavar=metavar, help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtls-exporter",
        description="Export certificate expiry, chain validity, trust-bundle agreement and rotation runs "
        "of a Kubernetes estate as Prometheus metrics (x509-certificate-exporter compatible names). "
        "Private keys are never read.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_kubernetes_options(parser.add_argument_group("Kubernetes"))
    _add_trust_options(parser.add_argument_group("Trust"))
    files = parser.add_argument_group("Files")
    files.add_argument("--watch-file", action="append", default=[], metavar="PATH", help="PEM file to watch (repeatable)")
    files.add_argument("--file-poll-interval", type=float, default=15.0, help="seconds between file checks; default 15")
    _add_output_options(parser.add_argument_group("Output"))
    return parser


def _add_kubernetes_options(kube) -> None:
    kube.add_argument("--kubeconfig", help="kubeconfig file; default: in-cluster config, then ~/.kube/config")
    kube.add_argument("--context", help="kubeconfig context")
    _add_list_option(kube, "--namespace", "NS", "namespace to watch (repeatable or comma-separated); default: all namespaces", dest="namespaces")
    kube.add_argument("--label-selector", help="label selector sent to the API server for Secrets (e.g. 'app.kubernetes.io/managed-by=zerotrust.mtls')")
    _add_list_option(
        kube,
        "--secret-type",
        "TYPE",
        f"Secret type to watch (repeatable); each type is one watch with the field selector type=TYPE. Default: {', '.join(DEFAULT_SECRET_TYPES)}",
        dest="secret_types",
    )
    kube.add_argument("--no-secrets", action="store_true", help="do not watch Secrets at all")
    _add_list_option(
        kube,
        "--opaque-secret-keys",
        "KEYS",
        f"keys of Opaque Secrets that hold certificates (repeatable or comma-separated); default: {','.join(DEFAULT_OPAQUE_SECRET_KEYS)}",
    )
    kube.add_argument("--include-configmaps", action="store_true", help="also watch ConfigMaps (trust bundles, istio-ca-root-cert)")
    _add_list_option(kube, "--configmap-keys", "KEYS", f"ConfigMap keys that hold certificates; default: {','.join(DEFAULT_CONFIGMAP_KEYS)}")
    kube.add_argument("--configmap-label-selector", help="label selector sent to the API server for ConfigMaps")
    kube.add_argument("--page-size", type=int, default=500, help="objects per list page (limit/continue); default 500")
    kube.add_argument(
        "--rotation-configmap",
        metavar="NAMESPACE/NAME",
        help="ConfigMap where the rotation playbooks record their runs (see docs/exporter.md)",
    )


def _add_trust_options(trust) -> None:
    trust.add_argument("--trust-bundle", metavar="FILE", help="PEM bundle of trust anchors; enables mtls_cert_chain_valid")
    _add_list_option(
        trust,
        "--trust-bundle-source",
        "KIND/NAME/KEY",
        "objects that must hold the same bundle in every namespace (repeatable); default: " + ", ".join(s.label for s in DEFAULT_TRUST_BUNDLE_SOURCES),
    )


def _add_output_options(output) -> None:
    output.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"address to serve /metrics on; default {DEFAULT_LISTEN} (the cert_exporter role uses 0.0.0.0:9793)",
    )
    output.add_argument("--no-expose-relative-metrics", action="store_true", help="omit x509_cert_expires_in_seconds and x509_cert_valid_since_seconds")
    output.add_argument("--expose-per-cert-error", action="store_true", help="emit x509_cert_error per certificate key (1 for keys that fail to parse)")
    output.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def build_selection(args: argparse.Namespace) -> KeySelection:
    opaque_keys = tuple(_csv(args.opaque_secret_keys)) or DEFAULT_OPAQUE_SECRET_KEYS
    configmap_keys = tuple(_csv(args.configmap_keys)) or DEFAULT_CONFIGMAP_KEYS
    return KeySelection(
        secret_keys_by_type={
            SECRET_TYPE_TLS: TLS_SECRET_KEYS,
            SECRET_TYPE_OPAQUE: opaque_keys,
            SECRET_TYPE_ISTIO: ISTIO_KEY_AND_CERT_KEYS,
        },
        configmap_keys=configmap_keys,
    )


def build_scopes(args: argparse.Namespace):
    from .kube import WatchScope

    namespaces = _csv(args.namespaces) or [None]
    scopes = []
    if not args.no_secrets:
        for secret_type in _csv(args.secret_types) or list(DEFAULT_SECRET_TYPES):
            for namespace in namespaces:
                scopes.append(WatchScope("secrets", namespace, args.label_selector, f"type={secret_type}"))
    if args.include_configmaps:
        for namespace in namespaces:
            scopes.append(WatchScope("configmaps", namespace, args.configmap_label_selector, None))
    return scopes


class Exporter:
    """Wires store, collector, sources and HTTP server together (also used by tests)."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.selection = build_selection(args)
        anchors = chains.load_trust_anchors(args.trust_bundle) if args.trust_bundle else None
        # Without --trust-bundle no chain is ever checked: the store keeps no DER.
        self.store = CertificateStore(anchors, keep_der=anchors is not None)
        self.rotation = RotationState() if args.rotation_configmap else None
        sources = tuple(TrustBundleSource.parse(s) for s in _csv(args.trust_bundle_source)) or DEFAULT_TRUST_BUNDLE_SOURCES
        self.collector = CertificateCollector(
            self.store,
            expose_relative=not args.no_expose_relative_metrics,
            expose_per_cert_error=args.expose_per_cert_error,
            trust_bundle_sources=sources,
            rotation=self.rotation,
        )
        self.registry = CollectorRegistry()
        self.registry.register(self.collector)
        self.watchers = []
        self.file_poller = None
        self.server = None

    def start(self) -> None:
        scopes = build_scopes(self.args)
        if scopes or self.rotation is not None:
            from .kube import ListWatch, WatchScope, load_api_client

            api = load_api_client(self.args.kubeconfig, self.args.context)
            for scope in scopes:
                self.watchers.append(ListWatch(api, scope, self.store, self.selection, page_size=self.args.page_size, stop=self.stop))
            if self.rotation is not None:
                namespace, _unused, name = self.args.rotation_configmap.partition("/")
                if not namespace or not name:
                    raise ValueError("--rotation-configmap must be NAMESPACE/NAME")
                self.watchers.append(
                    ListWatch(
                        api,
                        WatchScope("configmaps", namespace, None, f"metadata.name={name}"),
                        self.store,
                        self.selection,
                        stop=self.stop,
                        source_name="rotation-status",
                        on_object=self._rotation_event,
                    )
                )
        if self.args.watch_file or self.args.trust_bundle:
            self.file_poller = FilePoller(self.store, self.args.watch_file, self.args.trust_bundle, self.args.file_poll_interval, self.stop)
            self.file_poller.poll_once()
            self.file_poller.start()
        self.server = serve(MetricsApp(self.registry, self.ready), self.args.listen)
        for watcher in self.watchers:
            watcher.start()
        threading.Thread(target=self._wait_ready, name="ready", daemon=True).start()

    def _rotation_event(self, event: str, obj: dict) -> None:
        if event == "upsert":
            rejected = self.rotation.replace(obj.get("data") or {})
            for key in rejected:
                LOG.warning("rotation status: ignoring key %r (expected <rotation>.last_success|last_failure|failures_total with a number)", key)
                self.store.count_error("kubernetes", "rotation-status", certs.REASON_DECODE_FAILED)
        elif event == "delete" or (event == "listed" and not obj.get("items_seen")):
            self.rotation.replace(None)

    def _wait_ready(self) -> None:
        for watcher in self.watchers:
            while not watcher.synced.wait(1.0):
                if self.stop.is_set():
                    return
        # The certificate store built by the first lists lives as long as the process:
        # moving it out of the GC's generations keeps later collections from rescanning it.
        gc.collect()
        gc.freeze()
        LOG.info("initial lists done: %d objects", len(self.store.snapshot()))
        self.ready.set()

    def shutdown(self) -> None:
        self.stop.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        exporter = Exporter(args)
        exporter.start()
    except (ValueError, OSError, certs.CertificateParseError) as error:
        print(f"mtls-exporter: {error}", file=sys.stderr)
        return 2
    LOG.info("mtls-exporter %s serving on http://%s/metrics", __version__, args.listen)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_unused: done.set())
    signal.signal(signal.SIGINT, lambda *_unused: done.set())
    done.wait()
    exporter.shutdown()
    return 0

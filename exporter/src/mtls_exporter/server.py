"""HTTP endpoints: /metrics, /healthz (process alive), /readyz (every source listed once)."""

from __future__ import annotations

import gc
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client.registry import CollectorRegistry

from .exposition import CONTENT_TYPE, iter_text, render_text


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        # One line per scrape would drown the logs that matter.
        pass


class MetricsApp:
    def __init__(self, registry: CollectorRegistry, ready: threading.Event):
        self.registry = registry
        self.ready = ready
        # Scrapes of a large estate are serialized: two concurrent renderings would only
        # double the peak memory and both finish later.
        self._scrape_lock = threading.Lock()

    def render(self) -> bytes:
        with self._scrape_lock:
            # A scrape allocates one short-lived sample per series and no cycles; a
            # cyclic GC pass in the middle would walk the whole certificate store for
            # nothing, which is most of a large scrape's time.
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                return render_text(self.registry)
            finally:
                if gc_was_enabled:
                    gc.enable()

    def stream(self):
        """Like render(), chunk by chunk; the lock and GC pause last until the end."""
        with self._scrape_lock:
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                yield from iter_text(self.registry)
            finally:
                if gc_was_enabled:
                    gc.enable()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path == "/readyz":
            if self.ready.is_set():
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"ready\n"]
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"initial list not finished\n"]
        if path in ("/metrics", "/"):
            # Streamed without Content-Length: the HTTP/1.0 response ends when the
            # connection closes, which every Prometheus client handles.
            start_response("200 OK", [("Content-Type", CONTENT_TYPE)])
            return self.stream()
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]


def parse_listen(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--listen {address!r} must be HOST:PORT")
    host = host.strip("[]")  # [::1]:9793
    return host, int(port)


def serve(app: MetricsApp, address: str) -> _ThreadingWSGIServer:
    host, port = parse_listen(address)
    server = make_server(host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return server

"""ListWatch protocol handling: pagination, selectors, 410 Gone relist, pruning.

A real kube-apiserver will not answer 410 on demand, so this test serves the list and
watch protocol from a small HTTP server on 127.0.0.1 and drives the real ListWatch (with
the real kubernetes client) against it. The cluster end-to-end test covers the rest.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kubernetes import client

from conftest import b64, key_pem, pem, secret_json
from mtls_exporter.kube import ListWatch, WatchScope
from mtls_exporter.objects import KeySelection
from mtls_exporter.store import CertificateStore


class FakeApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, pages_per_list, watch_scripts):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.pages_per_list = list(pages_per_list)  # one list of pages per (re)list
        self.watch_scripts = list(watch_scripts)  # one list of events per watch call
        self.requests: list[dict] = []
        self.list_calls = 0
        self.all_watches_served = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        server: FakeApiServer = self.server
        query = {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query).items()}
        server.requests.append({"path": urllib.parse.urlparse(self.path).path, **query})
        if query.get("watch") in ("true", "True", "1"):
            events = server.watch_scripts.pop(0) if server.watch_scripts else None
            if events is None:
                server.all_watches_served.set()
                events = []
            body = b"".join(json.dumps(e).encode() + b"\n" for e in events)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        pages = server.pages_per_list[min(server.list_calls, len(server.pages_per_list) - 1)]
        index = int(query.get("continue", "0"))
        if index == len(pages) - 1:
            server.list_calls += 1
        items, resource_version = pages[index]
        metadata = {"resourceVersion": resource_version}
        if index + 1 < len(pages):
            metadata["continue"] = str(index + 1)
        body = json.dumps({"kind": "SecretList", "items": items, "metadata": metadata}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _secret(root_ca, name, rv):
    certificate, key = root_ca.issue(f"{name}.svc")
    return secret_json("shop", name, {"tls.crt": b64(pem(certificate)), "tls.key": b64(key_pem(key))}, rv=rv)


def test_paginated_list_watch_and_relist_after_410(root_ca):
    a, b, c, d = (_secret(root_ca, n, "5") for n in ("a", "b", "c", "d"))
    first_list = [([a, b], "100"), ([c], "100")]  # two pages: follows the continue token
    relist = [([a], "300"), ([d], "300")]  # b and c were deleted while the watch was gone
    b_modified = dict(b, metadata={**b["metadata"], "resourceVersion": "150"})
    watches = [
        [
            {"type": "MODIFIED", "object": b_modified},
            {"type": "BOOKMARK", "object": {"kind": "Secret", "metadata": {"resourceVersion": "160"}}},
            {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version"}},
        ],
    ]
    server = FakeApiServer([first_list, relist], watches)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
    store = CertificateStore()
    scope = WatchScope("secrets", "shop", "team=payments", "type=kubernetes.io/tls")
    watcher = ListWatch(client.ApiClient(configuration), scope, store, KeySelection(), page_size=2, watch_timeout_seconds=5)
    try:
        watcher.start()
        assert server.all_watches_served.wait(20), "the watcher never came back after the 410"
    finally:
        watcher.stop_event.set()
        server.shutdown()

    assert watcher.relists == 1
    assert sorted(o.name for o in store.snapshot()) == ["a", "d"]
    lists = [r for r in server.requests if "watch" not in r]
    watch_requests = [r for r in server.requests if "watch" in r]
    # Selectors and page size went to the server; the path is namespaced.
    assert all(r["path"] == "/api/v1/namespaces/shop/secrets" for r in server.requests)
    assert all(r["fieldSelector"] == "type=kubernetes.io/tls" and r["labelSelector"] == "team=payments" for r in server.requests)
    assert [r.get("limit") for r in lists[:2]] == ["2", "2"]
    assert [r.get("continue") for r in lists[:2]] == [None, "1"]
    # The first watch resumes from the list's resourceVersion, the second from the relist's.
    assert watch_requests[0]["resourceVersion"] == "100"
    assert watch_requests[0]["allowWatchBookmarks"] in ("true", "True")
    assert watch_requests[1]["resourceVersion"] == "300"
    # "a" had the same uid and resourceVersion in both lists: parsed once. a, b, c, b@150, d.
    assert store.parse_count == 5

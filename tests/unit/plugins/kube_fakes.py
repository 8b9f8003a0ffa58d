# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the tests of the Kubernetes modules share: a module run against a closed port, the
recording part of the fake API clients, and a real HTTP server on loopback that answers
like the API server."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from ansible.module_utils.testing import patch_module_args


def closed_port():
    """A loopback port nothing listens on: a request that gets there fails "cannot reach"."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_module(module, capsys, **args):
    """The result of ``module``.main() for ``args``, pointed at a closed port unless ``host`` is given."""
    args.setdefault("host", "http://127.0.0.1:%d" % closed_port())
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


class RecordingClient(object):
    """Records every call (from many threads) as a tuple whose first item is the verb."""

    def __init__(self):
        self.calls = []
        self._lock = threading.Lock()

    def _record(self, *call):
        with self._lock:
            self.calls.append(call)

    def count(self, verb):
        return len([call for call in self.calls if call[0] == verb])


class LoopbackApiServer(object):
    """A real HTTP server on 127.0.0.1 (``url``) for the client's transport to talk to;
    ``answer(request)`` of a subclass gives the (status, JSON body, headers or None) of each
    request ({'method', 'path', 'headers' (lower-case names), 'body'})."""

    def __init__(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                request = {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict((k.lower(), v) for k, v in self.headers.items()),
                    "body": self.rfile.read(length) if length else b"",
                }
                status, body, headers = owner.answer(request)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PATCH = do_PUT = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]

    def answer(self, request):
        raise NotImplementedError

    def close(self):
        self.server.shutdown()
        self.server.server_close()

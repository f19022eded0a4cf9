"""A loopback HTTP server that answers like clip-server, scripted per request.

For the failure modes a healthy clip-server never shows on demand (HTTP 503 bursts, hangs,
``embedding: null``, a model swapped under a running gateway). The real server covers the
normal protocol in test_service_vectors.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A reply: (status, JSON body) or None to hang until the client gives up.
Reply = tuple[int, dict[str, Any]] | None
Script = Callable[[dict[str, Any]], Reply]


def encode_reply(payload: dict[str, Any], dim: int = 4) -> tuple[int, dict[str, Any]]:
    """clip-server's answer shape with a deterministic vector per doc."""
    data = [{**doc, "embedding": [float(i + 1)] * dim} for i, doc in enumerate(payload["data"])]
    return 200, {"header": {"requestId": "x"}, "parameters": {}, "routes": [], "data": data}


class StubServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.dry_run_code = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._send(200, {"code": stub.dry_run_code, "description": "stub"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                payload = json.loads(self.rfile.read(length))
                stub.requests.append(payload)
                reply = stub.script(payload)
                if reply is None:
                    time.sleep(30)  # longer than any test timeout: the client must give up
                    return
                self._send(*reply)

        return Handler

    @contextmanager
    def running(self) -> Iterator[StubServer]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()

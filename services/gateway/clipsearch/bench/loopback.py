"""A real gateway on a free loopback port, served by uvicorn in a thread of this process.

The benches measure through it (real HTTP, real sockets), and the tests use it where a
``TestClient`` is not enough (a second process, or a client that must see real TCP).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def free_port() -> int:
    """A port nothing listens on right now (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(
    app: Any,
    *,
    name: str = "loopback-gateway",
    start_timeout_s: float = 120.0,
    **uvicorn_options: Any,
) -> Iterator[str]:
    """Serve the ASGI ``app`` until the block ends; yields its base URL. The app's lifespan
    runs inside, so adapters it builds are closed when the block ends. ``uvicorn_options``
    override the quiet defaults (e.g. ``access_log=True, log_config=None``)."""
    import uvicorn

    port = free_port()
    options: dict[str, Any] = {"log_level": "warning", "access_log": False} | uvicorn_options
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
    thread = threading.Thread(target=server.run, daemon=True, name=name)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the gateway did not start in {start_timeout_s:g} s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)

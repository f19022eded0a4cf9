"""A real gateway on a free loopback port, served by uvicorn in a thread of this process
(:func:`serve`) or in a child process (:class:`GatewayProcess`).

The benches measure through it (real HTTP, real sockets), and the tests use it where a
``TestClient`` is not enough (a second process, or a client that must see real TCP).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import httpx


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


class GatewayProcess:
    """``clipsearch serve`` in a child process on a free loopback port, configured by
    ``env`` (``CLIPSEARCH_*``; the parent's own ``CLIPSEARCH_*`` are not inherited). For
    measures that must not share this process's GIL with their clients, and for kills."""

    def __init__(self, env: dict[str, str], log: IO[bytes]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPSEARCH_")}
        self.env.update(env)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120.0) -> None:
        cmd = [sys.executable, "-m", "clipsearch", "serve", "--host", "127.0.0.1",
               "--port", str(self.port)]  # fmt: skip
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the gateway exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the gateway was not ready in {timeout_s:g} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

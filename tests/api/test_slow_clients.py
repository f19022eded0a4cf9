"""The request-head deadline on a real uvicorn server over loopback: a client that sends
its headers too slowly is disconnected, on a fresh connection and on a kept-alive one (where
uvicorn's own keep-alive timer is cancelled by the first byte and never re-armed)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from clipsearch.api.slow_clients import head_deadline_protocol
from tests.helpers import free_port


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await PlainTextResponse("ok")(scope, receive, send)


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(
        _app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_keep_alive=30,
        http=head_deadline_protocol(0.5),
        lifespan="off",
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield port
    srv.should_exit = True
    thread.join(10)


def _closed_after(sock: socket.socket) -> float:
    """Seconds until the server closes ``sock`` (reads until EOF, 5 s at most)."""
    started = time.monotonic()
    sock.settimeout(5)
    while sock.recv(4096):
        pass
    return time.monotonic() - started


def test_a_normal_request_is_served(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")


def test_a_slow_head_is_cut_off(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")  # ...and the rest never comes
        assert _closed_after(sock) < 2


def test_a_slow_head_on_a_kept_alive_connection_is_cut_off(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        for _ in range(2):  # a byte now and then: each used to cancel the idle timer
            sock.sendall(b"G")
            time.sleep(0.2)
        assert _closed_after(sock) + (time.monotonic() - started) < 2.5

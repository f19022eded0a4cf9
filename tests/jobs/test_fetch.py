"""SSRF-safe fetcher: a loopback server allowed only through the test's own allowlist, and a
corpus of blocked targets that must be refused before any connection is attempted."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import pytest

from clipsearch.jobs.fetch import (
    BlockedTarget,
    Fetcher,
    FetchError,
    blocked_reason,
    sniff_image_type,
)
from tests.helpers import solid

PNG = solid((8, 8), (255, 0, 0))


class _Handler(BaseHTTPRequestHandler):
    hosts: list[str] = []  # noqa: RUF012 (shared by the test server's threads)
    redirect_to: dict[str, str] = {}  # noqa: RUF012

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        type(self).hosts.append(self.headers.get("Host", ""))
        if self.path in self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to[self.path])
            self.end_headers()
            return
        if self.path == "/img.png":
            body, ctype = PNG, "text/html"  # wrong header on purpose: bytes decide
        elif self.path == "/fake.png":
            body, ctype = b"<html>not an image</html>", "image/png"
        elif self.path == "/slow":
            time.sleep(1.5)
            body, ctype = PNG, "image/png"
        elif self.path == "/big":
            body, ctype = PNG + b"\0" * 50_000, "image/png"
        elif self.path == "/big-chunked":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()  # no Content-Length: the cap must count streamed bytes
            self.wfile.write(PNG + b"\0" * 50_000)
            self.close_connection = True
            return
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class SpyBackend(httpcore.AsyncNetworkBackend):
    """Records every real connection attempt."""

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kw: Any) -> Any:
        self.connects.append((host, port))
        return await self.inner.connect_tcp(host, port, *args, **kw)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def _fetch(url: str, **kw: Any) -> tuple[Any, SpyBackend]:
    spy = SpyBackend()

    async def go() -> Any:
        fetcher = Fetcher(backend=spy, timeout_s=5, **kw)
        try:
            return await fetcher.fetch(url)
        finally:
            await fetcher.aclose()

    try:
        return asyncio.run(go()), spy
    except FetchError as exc:
        return exc, spy


LOOPBACK = ["127.0.0.1/32"]


def test_loopback_allowed_only_by_allowlist(server: str) -> None:
    got, spy = _fetch(f"http://{server}/img.png", allow_networks=LOOPBACK)
    assert got.data == PNG
    assert got.content_type == "image/png"  # sniffed, although the server said text/html
    assert spy.connects == [("127.0.0.1", int(server.split(":")[1]))]
    refused, spy = _fetch(f"http://{server}/img.png")
    assert isinstance(refused, BlockedTarget)
    assert spy.connects == []


def test_connects_to_checked_address_with_original_host(server: str) -> None:
    port = int(server.split(":")[1])
    calls: list[str] = []

    async def resolver(host: str, _: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    _Handler.hosts.clear()
    got, spy = _fetch(
        f"http://images.example:{port}/img.png", allow_networks=LOOPBACK, resolver=resolver
    )
    assert got.data == PNG
    assert calls == ["images.example"]  # resolved once ...
    assert spy.connects == [("127.0.0.1", port)]  # ... and that exact address was dialled
    assert _Handler.hosts == [f"images.example:{port}"]  # virtual host kept


BLOCKED_URLS = [
    "http://127.0.0.1/",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://017700000001/",
    "http://localhost/",
    "http://0.0.0.0/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://239.255.255.250:1900/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://198.18.0.1/",
    "http://192.0.2.1/",
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://[fc00::1]/",
    "http://[ff02::1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[2002:7f00:1::]/",
    "http://[2001:db8::1]/",
    "https://user:pw@10.1.2.3/x.png",
    "ftp://example.com/a.png",
    "file:///etc/passwd",
    "gopher://example.com/",
    "data:image/png;base64,AAAA",
    "http:///nohost",
]


@pytest.mark.parametrize("url", BLOCKED_URLS)
def test_blocked_corpus_refused_before_connecting(url: str) -> None:
    refused, spy = _fetch(url)
    assert isinstance(refused, BlockedTarget), refused
    assert spy.connects == []


@pytest.mark.parametrize(
    "answers", [["10.0.0.7"], ["169.254.169.254"], ["93.184.216.34", "127.0.0.1"], ["fd12::1"]]
)
def test_hostnames_resolving_to_blocked_addresses(answers: list[str]) -> None:
    async def resolver(_: str, __: int) -> list[str]:
        return answers

    refused, spy = _fetch("https://cdn.example/pic.jpg", resolver=resolver)
    assert isinstance(refused, BlockedTarget)
    assert spy.connects == []


@pytest.mark.parametrize(
    "target",
    ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "file:///etc/passwd"],
)
def test_redirect_to_blocked_target_refused(server: str, target: str) -> None:
    _Handler.redirect_to["/go"] = target
    refused, spy = _fetch(f"http://{server}/go", allow_networks=LOOPBACK)
    assert isinstance(refused, BlockedTarget)
    assert len(spy.connects) == 1  # only the allowed loopback server was contacted


def test_redirects_followed_and_capped(server: str) -> None:
    _Handler.redirect_to.update({"/r1": "/r2", "/r2": "/r3", "/r3": "/img.png"})
    got, _ = _fetch(f"http://{server}/r1", allow_networks=LOOPBACK)
    assert got.data == PNG
    assert len(got.redirects) == 3
    too_many, _ = _fetch(f"http://{server}/r1", allow_networks=LOOPBACK, max_redirects=2)
    assert isinstance(too_many, FetchError)
    assert too_many.reason == "redirects"


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
def test_byte_cap(server: str, path: str) -> None:
    refused, _ = _fetch(f"http://{server}{path}", allow_networks=LOOPBACK, max_bytes=10_000)
    assert isinstance(refused, FetchError)
    assert refused.reason == "too_large"
    got, _ = _fetch(f"http://{server}{path}", allow_networks=LOOPBACK, max_bytes=100_000)
    assert got.data.startswith(PNG)


def test_content_sniffed_not_trusted(server: str) -> None:
    refused, _ = _fetch(f"http://{server}/fake.png", allow_networks=LOOPBACK)
    assert isinstance(refused, FetchError)
    assert refused.reason == "not_image"


def test_http_error_and_timeout(server: str) -> None:
    missing, _ = _fetch(f"http://{server}/nope", allow_networks=LOOPBACK)
    assert isinstance(missing, FetchError)
    assert missing.reason == "http"
    spy = SpyBackend()

    async def go() -> Any:
        fetcher = Fetcher(backend=spy, timeout_s=0.3, allow_networks=LOOPBACK)
        try:
            return await fetcher.fetch(f"http://{server}/slow")
        finally:
            await fetcher.aclose()

    with pytest.raises(FetchError) as info:
        asyncio.run(go())
    assert info.value.reason == "timeout"


def test_sniffer_and_policy_units() -> None:
    import ipaddress

    assert sniff_image_type(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_image_type(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp"
    assert sniff_image_type(b"<svg xmlns=") is None
    assert blocked_reason(ipaddress.ip_address("93.184.216.34")) is None
    assert blocked_reason(ipaddress.ip_address("2606:4700::1111")) is None
    allow = [ipaddress.ip_network("10.0.0.0/8")]
    assert blocked_reason(ipaddress.ip_address("10.1.2.3"), allow) is None
    assert blocked_reason(ipaddress.ip_address("::ffff:10.1.2.3"), allow) is None
    assert blocked_reason(ipaddress.ip_address("10.1.2.3")) == "private"

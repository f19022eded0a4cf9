"""SSRF-safe URL fetcher for ingest jobs.

Every connection goes through :class:`_GuardedBackend`: it resolves the host itself, refuses
the request if *any* resolved address is non-public (loopback, private, link-local incl.
169.254.169.254, CGNAT, multicast, reserved, unspecified, and the IPv6 forms that embed an
IPv4 address) unless a configured network allowlists it, then connects to exactly the
address it checked. The TLS handshake and the ``Host`` header still use the URL's host name,
so certificates verify as usual and DNS rebinding between "check" and "connect" is
impossible. httpcore is used directly (not httpx) so that no proxy from the environment can
route around the check. Redirects are followed by hand, each target checked again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_REDIRECTS = {301, 302, 303, 307, 308}


class FetchError(Exception):
    """A URL could not be fetched; ``reason`` is a short machine-readable cause."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class BlockedTarget(FetchError):
    """The URL (or a redirect) points at a scheme or address we refuse to contact."""

    def __init__(self, message: str) -> None:
        super().__init__("blocked", message)


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address tunnels to, if any (mapped, 6to4, Teredo, NAT64)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def blocked_reason(ip: IPAddress, allow: Sequence[IPNetwork] = ()) -> str | None:
    """Why ``ip`` may not be contacted, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # judge ::ffff:a.b.c.d exactly like a.b.c.d
    if any(ip.version == net.version and ip in net for net in allow):
        return None
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("cgnat", isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT),
        ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
        ("not global", not ip.is_global),
    )
    for name, hit in checks:
        if hit:
            return name
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            why = blocked_reason(inner, allow)
            if why is not None:
                return f"embeds {inner} ({why})"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """All addresses the system resolver gives for ``host`` (numeric hosts need no DNS)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_networks(values: Iterable[str]) -> list[IPNetwork]:
    """CIDR strings (a bare address means that one address) -> networks."""
    return [ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip()]


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, and connects to the checked address only."""

    def __init__(
        self,
        allow: Sequence[IPNetwork],
        resolver: Resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow = list(allow)
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def checked_address(self, host: str, port: int) -> str:
        host = host.strip("[]")
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                addresses = await self.resolver(host, port)
            except OSError as exc:
                raise FetchError("dns", f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise FetchError("dns", f"{host} resolves to no address")
        # Refuse if any answer is blocked: a name mixing public and private answers is a trap.
        for addr in addresses:
            why = blocked_reason(ipaddress.ip_address(addr.split("%")[0]), self.allow)
            if why is not None:
                raise BlockedTarget(f"{host} resolves to {addr} ({why})")
        return addresses[0]

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await self.checked_address(host, port)
        return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedTarget("unix sockets are never contacted")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@dataclass(slots=True)
class Fetched:
    data: bytes
    url: str  # final URL after redirects
    content_type: str  # sniffed from the bytes, not taken from the headers
    redirects: list[str] = field(default_factory=list)


_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


def sniff_image_type(data: bytes) -> str | None:
    """The image MIME type the leading bytes announce, or None for anything else."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    return None


class Fetcher:
    """Fetches image URLs under an SSRF policy, byte cap and total time cap.

    At most ``max_connections`` fetches run at once, ``per_host`` of them to one host; the
    others wait for a slot *before* their time cap starts, so a slow host makes a job slower
    but never fails URLs that only waited their turn (with the cap counted from the call, 16
    of 32 URLs to a host answering in 3 s failed). One instance holds one connection pool;
    close it with :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        allow_networks: Iterable[str] = (),
        max_bytes: int = 20 * 1024 * 1024,
        timeout_s: float = 15.0,
        max_redirects: int = 3,
        max_connections: int = 8,
        per_host: int = 4,
        resolver: Resolver = system_resolver,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.max_redirects = max_redirects
        self.guard = _GuardedBackend(parse_networks(allow_networks), resolver, backend)
        self._slots = asyncio.Semaphore(max_connections)
        self._per_host = per_host
        self._hosts: dict[tuple[str, int | None], asyncio.Semaphore] = {}
        # Twice the slots: a redirect to another host opens a second connection while its
        # fetch holds a slot, and must not wait for the pool inside its time cap.
        self._pool = httpcore.AsyncConnectionPool(
            max_connections=2 * max_connections, network_backend=self.guard, retries=0
        )

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def fetch(self, url: str) -> Fetched:
        """The bytes at ``url``; raises :class:`FetchError` (or :class:`BlockedTarget`)."""
        target = _check_url(url)
        key = (target.host.decode("ascii", "replace").lower(), target.port)
        host = self._hosts.setdefault(key, asyncio.Semaphore(self._per_host))
        try:
            async with host, self._slots, asyncio.timeout(self.timeout_s):
                return await self._fetch(url)
        except TimeoutError as exc:
            raise FetchError("timeout", f"fetch exceeded {self.timeout_s:g} s") from exc
        except httpcore.TimeoutException as exc:
            raise FetchError("timeout", f"fetch timed out: {exc}") from exc
        except httpcore.NetworkError as exc:
            raise FetchError("network", f"network error: {exc}") from exc
        except httpcore.ProtocolError as exc:
            raise FetchError("protocol", f"bad HTTP answer: {exc}") from exc
        except (httpcore.UnsupportedProtocol, httpcore.LocalProtocolError) as exc:
            raise BlockedTarget(f"unsupported URL: {exc}") from exc

    async def _fetch(self, url: str) -> Fetched:
        redirects: list[str] = []
        current = url
        while True:
            target = _check_url(current)
            async with self._pool.stream(
                "GET",
                target,
                headers={"User-Agent": "clipsearch-ingest/1", "Accept": "image/*"},
                extensions={"timeout": {"connect": self.timeout_s, "read": self.timeout_s}},
            ) as response:
                status = response.status
                if status in _REDIRECTS:
                    location = _header(response.headers, b"location")
                    if not location:
                        raise FetchError("http", f"redirect {status} without Location")
                    if len(redirects) >= self.max_redirects:
                        raise FetchError("redirects", f"more than {self.max_redirects} redirects")
                    current = urljoin(current, location)
                    redirects.append(current)
                    continue
                if not 200 <= status < 300:
                    raise FetchError("http", f"HTTP {status}")
                declared = _header(response.headers, b"content-length")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise FetchError("too_large", f"body over {self.max_bytes} bytes")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_stream():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise FetchError("too_large", f"body over {self.max_bytes} bytes")
                    chunks.append(chunk)
            data = b"".join(chunks)
            mime = sniff_image_type(data)
            if mime is None:
                raise FetchError("not_image", "content is not a supported image format")
            return Fetched(data=data, url=current, content_type=mime, redirects=redirects)


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return ""


def _check_url(url: str) -> httpcore.URL:
    """Scheme and syntax checks; returns the request URL (IDNA host, no credentials)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise BlockedTarget(f"scheme {scheme or '(none)'!r} is not http or https")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise BlockedTarget(f"invalid URL: {exc}") from exc
    if not parsed.raw_host:
        raise BlockedTarget("URL has no host")
    # Credentials in the URL are dropped: we never send them anywhere.
    return httpcore.URL(
        scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=parsed.raw_path
    )

"""The in-flight cap per request class: past it, 503 ``overloaded`` with ``Retry-After`` at
once, while the requests already admitted finish normally."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from clipsearch.api.overload import InflightLimit, request_class


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v1/search/text", "search"),
        ("POST", "/v1/search/batch", "search"),
        ("POST", "/v1/ingest", "ingest"),
        ("POST", "/v1/images", "write"),
        ("DELETE", "/v1/texts/abc", "write"),
        ("GET", "/v1/images/abc/file", None),
        ("GET", "/v1/jobs", None),
        ("GET", "/healthz", None),
    ],
)
def test_request_class(method: str, path: str, expected: str | None) -> None:
    assert request_class(method, path) == expected


def test_past_the_cap_is_refused_at_once_and_admitted_requests_finish() -> None:
    release = asyncio.Event()
    entered: asyncio.Queue[None] = asyncio.Queue()

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        entered.put_nowait(None)
        await release.wait()
        await JSONResponse({"ok": True})(scope, receive, send)

    guard = InflightLimit(slow_app, {"search": 2, "write": 0, "ingest": 1})

    async def go() -> None:
        transport = httpx.ASGITransport(app=guard)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            admitted = [
                asyncio.create_task(client.post("/v1/search/text", json={})) for _ in range(2)
            ]
            for _ in range(2):
                await entered.get()
            started = time.perf_counter()
            refused = await client.post("/v1/search/text", json={})
            took = time.perf_counter() - started
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["error"]["code"] == "overloaded"
            assert refused.json()["error"]["details"] == {"class": "search", "limit": 2}
            assert took < 0.5  # refused without waiting for a slot
            # Another class is not affected by the search cap; a cap of 0 means none.
            writes = [asyncio.create_task(client.post("/v1/images")) for _ in range(3)]
            for _ in range(3):
                await entered.get()
            release.set()
            for r in await asyncio.gather(*admitted, *writes):
                assert r.status_code == 200
            assert guard.inflight == {"search": 0, "write": 0, "ingest": 0}
            assert guard.refused["search"] == 1
            # Slots are given back: the next search is admitted.
            assert (await client.post("/v1/search/text", json={})).status_code == 200

    asyncio.run(go())


def test_uncapped_routes_pass_through() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await JSONResponse({"path": Request(scope).url.path})(scope, receive, send)

    guard = InflightLimit(app, {"search": 1, "write": 1, "ingest": 1})

    async def go() -> None:
        transport = httpx.ASGITransport(app=guard)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            rs = await asyncio.gather(*(client.get("/v1/jobs") for _ in range(5)))
            assert [r.status_code for r in rs] == [200] * 5

    asyncio.run(go())

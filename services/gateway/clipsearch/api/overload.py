"""Load shedding: a cap on requests in flight per class, refused at once past it.

Without a cap every request is admitted and all of them slow down together (200 clients on
one CPU: p99 1.3 s, no refusals). With one, a request past the cap of its class gets 503
``overloaded`` with ``Retry-After`` before its body is read, so the requests already
admitted keep their latency and a client knows to come back (see RELIABILITY.md).

Classes: ``search`` (``/v1/search*``, ``GET .../similar`` and ``.../duplicates``), ``ingest``
(``POST /v1/ingest``) and ``write`` (``POST``/``PUT``/``PATCH``/``DELETE`` under
``/v1/images`` and ``/v1/texts``). Cheap reads (health, stats, jobs, blobs) are never
refused here; job event streams have their own cap.
The count is per process and needs no lock: the event loop runs one coroutine at a time.
:class:`EventStreams` is the cap on open ``/v1/jobs/{id}/events`` streams.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal

from starlette.types import ASGIApp, Receive, Scope, Send

from clipsearch.api.errors import error_body, retry_after_header, status_of
from clipsearch.core.errors import Unavailable

RequestClass = Literal["search", "write", "ingest"]
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def request_class(method: str, path: str) -> RequestClass | None:
    """The class whose cap a request counts against, or None when it is not capped."""
    if path.startswith(("/v1/search", "/v1/similarity")):
        return "search"
    if method == "GET" and path.endswith(("/similar", "/duplicates")):
        return "search"  # near duplicates: searches too
    if path.rstrip("/") == "/v1/ingest" and method == "POST":
        return "ingest"
    if method in _WRITES and path.startswith(("/v1/images", "/v1/texts")):
        return "write"
    return None


class Overloaded(Unavailable):
    """Too many requests of one class are in flight; retry after ``retry_after_s``."""

    code = "overloaded"


class InflightLimit:
    """ASGI middleware: at most ``limits[cls]`` requests of each class at once (0 = no cap).

    A slot is held until the response is fully sent, streamed bodies included.
    """

    def __init__(
        self, app: ASGIApp, limits: Mapping[RequestClass, int], retry_after_s: float = 1.0
    ) -> None:
        self.app = app
        self.limits = dict(limits)
        self.retry_after_s = retry_after_s
        self.inflight: dict[RequestClass, int] = dict.fromkeys(self.limits, 0)
        self.refused: dict[RequestClass, int] = dict.fromkeys(self.limits, 0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cls = request_class(str(scope.get("method", "")), str(scope.get("path", "")))
        limit = self.limits.get(cls, 0) if cls is not None else 0
        if cls is None or limit <= 0:
            await self.app(scope, receive, send)
            return
        if self.inflight[cls] >= limit:
            self.refused[cls] += 1
            await self._refuse(send, cls, limit)
            return
        self.inflight[cls] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight[cls] -= 1

    async def _refuse(self, send: Send, cls: RequestClass, limit: int) -> None:
        err = Overloaded(
            f"too many {cls} requests in flight (limit {limit}); retry shortly",
            details={"class": cls, "limit": limit},
            retry_after_s=self.retry_after_s,
        )
        body = json.dumps(error_body(err.code, err.message, err.details)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        headers += [(k.lower().encode(), v.encode()) for k, v in retry_after_header(err).items()]
        await send({"type": "http.response.start", "status": status_of(err), "headers": headers})
        await send({"type": "http.response.body", "body": body})


class EventStreams:
    """At most ``limit`` job event streams open at once; each lives ``max_s`` at most."""

    def __init__(self, limit: int, max_s: float) -> None:
        self.limit = limit
        self.max_s = max_s
        self.open = 0

    def acquire(self) -> _Slot:
        """A slot for one stream, or :class:`Overloaded` (503) when all are taken."""
        if self.open >= self.limit:
            raise Overloaded(
                f"too many job event streams open (limit {self.limit}); poll /v1/jobs/{{id}}",
                details={"class": "events", "limit": self.limit},
                retry_after_s=5.0,
            )
        self.open += 1
        return _Slot(self)


class _Slot:
    """One open stream; :meth:`release` is idempotent (a stream ends in several ways)."""

    def __init__(self, owner: EventStreams) -> None:
        self._owner: EventStreams | None = owner

    def release(self) -> None:
        if self._owner is not None:
            self._owner.open -= 1
            self._owner = None

"""ASGI middleware: refuse oversized bodies before they are read whole; count and time
every request."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Collection, Mapping, Sequence

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clipsearch.api.errors import error_body
from clipsearch.core.metrics import Metrics


class _TooLarge(HTTPException):
    # An HTTPException so FastAPI's body parsing re-raises it instead of turning it into a
    # generic 400; the app's handler then renders it with the error shape.
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body exceeds {max_bytes} bytes")


class BodySizeLimit:
    """413 with the error shape when a request body exceeds its limit: ``max_bytes`` for
    multipart uploads, else the longest matching path prefix of ``json_limits`` (JSON
    bodies are small; see :func:`clipsearch.api.json_body.body_limits`).

    Checks ``Content-Length`` first, then counts streamed bytes, so a chunked upload
    cannot slip past the limit: the body is cut at the limit, never read whole.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        json_limits: Mapping[str, int] | None = None,
        multipart_paths: Collection[str] = (),
        stream_limits: Sequence[tuple[re.Pattern[str], int]] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Longest prefix first, so /v1/search beats "".
        self.json_limits = sorted((json_limits or {}).items(), key=lambda kv: -len(kv[0]))
        # Only routes that read multipart get its limit: a "multipart" header on a JSON
        # route must not buy a body of max_bytes.
        self.multipart_paths = frozenset(multipart_paths)
        # Routes that stream a large body to disk themselves (imports): checked first.
        self.stream_limits = list(stream_limits)

    def limit_for(self, scope: Scope) -> int:
        path = str(scope.get("path", ""))
        for pattern, limit in self.stream_limits:
            if pattern.match(path):
                return limit
        headers = dict(scope.get("headers", []))
        multipart = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        if multipart and (not self.json_limits or path in self.multipart_paths):
            return self.max_bytes
        for prefix, limit in self.json_limits:
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > max_bytes:
                    await self._reject(send, max_bytes)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise _TooLarge(max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send, max_bytes)

    async def _reject(self, send: Send, max_bytes: int) -> None:
        body = json.dumps(
            error_body(
                "payload_too_large",
                f"request body exceeds {max_bytes} bytes",
                {"max_bytes": max_bytes},
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RequestMetrics:
    """ASGI middleware: count and time every HTTP request by its route *template*
    (``/v1/images/{image_id}``), so ids never explode the label set."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.request_seconds.labels(method, template).observe(
                time.perf_counter() - started
            )

"""JSON request bodies: a size limit per route, parsing in a worker thread, and one
answer for JSON that cannot be parsed (malformed, not UTF-8, or nested too deeply).

* :func:`body_limits` gives :class:`~clipsearch.api.middleware.BodySizeLimit` its limit per
  route: multipart uploads to :data:`MULTIPART_PATHS` may be large (``max_request_bytes``),
  any other body is small; the middleware counts bytes while they stream in and answers
  413 at the limit. JSON is parsed by C code that holds the GIL, so a worker thread alone
  would not keep the event loop free during a huge parse: the limit is what bounds it.
* :class:`JsonRoute` parses the JSON body of a FastAPI route in a worker thread before
  FastAPI sees it (FastAPI would parse on the event loop, and answer 400 for a body nested
  deeper than the parser's recursion limit); :func:`read_json` does the same for routes
  that read the body themselves, and :func:`parse_json_field` for JSON in form fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from clipsearch.core.config import Settings
from clipsearch.core.errors import InvalidRequest

# The routes that read multipart bodies (uploads): only they get max_request_bytes.
MULTIPART_PATHS = ("/v1/images", "/v1/search/image", "/v1/ingest", "/v1/similarity")


def body_limits(cfg: Settings) -> dict[str, int]:
    """Path prefix -> largest JSON (any non-multipart) body, in bytes; longest prefix wins.
    ``""`` is every other route (none of them takes a body)."""
    return {
        "": cfg.max_json_bytes_search,
        "/v1/search": cfg.max_json_bytes_search,
        "/v1/texts": cfg.max_json_bytes_texts,
        "/v1/ingest": cfg.max_json_bytes_ingest,
    }


# Routes whose body is a file streamed to disk (not JSON, not multipart): their own limit.
IMPORT_PATH = re.compile(r"^/v1/collections/[^/]+/import$")


def stream_limits(cfg: Settings) -> list[tuple[re.Pattern[str], int]]:
    """Path pattern -> largest body, checked before :func:`body_limits`."""
    return [(IMPORT_PATH, cfg.max_import_bytes)]


def _loads(raw: bytes | str, what: str, code: str) -> Any:
    try:
        return json.loads(raw)
    except RecursionError as exc:
        # The C parser's recursion guard: a body of 10,000 nested arrays is the client's
        # fault, not the server's.
        raise InvalidRequest(f"{what} is nested too deeply", code=code) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"{what} is not valid JSON: {exc}", code=code) from exc


def parse_json_field(raw: str, *, what: str, code: str) -> Any:
    """A JSON form field (small: form parts are bounded) parsed, or :class:`InvalidRequest`
    with ``code``."""
    return _loads(raw, what, code)


async def parse_json_bytes(raw: bytes, *, what: str = "body", code: str = "invalid_body") -> Any:
    """A JSON body parsed in a worker thread, or :class:`InvalidRequest` with ``code``."""
    return await run_in_threadpool(_loads, raw, what, code)


async def read_json(request: Request, *, code: str = "invalid_body") -> Any:
    """The request's JSON body, read (the size limit applies while it streams) and parsed
    in a worker thread."""
    return await parse_json_bytes(await request.body(), code=code)


def _is_json(request: Request) -> bool:
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return ctype == "application/json" or ctype.endswith("+json")


class JsonRoute(APIRoute):
    """An ``APIRoute`` whose JSON body is parsed off the event loop, with the errors above.

    The parsed value is left where Starlette's ``Request.json()`` caches it, so FastAPI
    validates it without parsing again."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def parse_then_handle(request: Request) -> Response:
            if _is_json(request):
                raw = await request.body()
                if raw:
                    request._json = await parse_json_bytes(raw, code="invalid_json")
            return await handler(request)

        return parse_then_handle


__all__ = [
    "MULTIPART_PATHS",
    "JsonRoute",
    "body_limits",
    "parse_json_bytes",
    "parse_json_field",
    "read_json",
]

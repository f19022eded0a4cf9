"""HTTP rendering of every error, in one shape: ``{"error": {"code", "message", "details"}}``.

The only place that knows HTTP statuses: an error kind (:mod:`clipsearch.core.errors`)
becomes a status here, as do the store's and the encoder's own errors and FastAPI's.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from clipsearch.core.errors import ClipsearchError, Kind
from clipsearch.encoder.protocol import EncoderError
from clipsearch.store.protocol import InvalidStoreRequest, StoreError

log = logging.getLogger(__name__)

STATUS: dict[Kind, int] = {
    "invalid": 422,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "unsupported": 415,
    "busy": 429,
    "unavailable": 503,
}

# Codes for errors raised by FastAPI/Starlette themselves (404 route, 405, 413 body...).
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    503: "unavailable",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def status_of(err: ClipsearchError) -> int:
    return STATUS.get(err.kind, 400)


def retry_after_header(exc: BaseException, default_s: float = 5.0) -> dict[str, str]:
    """``Retry-After`` (whole seconds, >= 1) from an error's ``retry_after_s``, if any."""
    seconds = getattr(exc, "retry_after_s", None)
    return {"Retry-After": str(max(1, math.ceil(seconds if seconds is not None else default_s)))}


def render(exc: ClipsearchError) -> JSONResponse:
    """The response for an error kind; also used by middleware, which runs outside the
    app's exception handlers."""
    status = status_of(exc)
    headers = None
    if status in (429, 503):
        # Tell the client when to come back: the error's own estimate, else that of its
        # cause (the encoder's breaker cooldown), else a default.
        source = exc if exc.retry_after_s is not None else (exc.__cause__ or exc)
        headers = retry_after_header(source)
    elif status == 401:
        # RFC 9110: a 401 names the scheme the client should use.
        headers = {"WWW-Authenticate": 'Bearer realm="clipsearch"'}
    return JSONResponse(
        error_body(exc.code, exc.message, exc.details), status_code=status, headers=headers
    )


async def _clipsearch_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ClipsearchError)
    return render(exc)


async def _store_request_error(_: Request, exc: Exception) -> JSONResponse:
    # The store refused the caller's input (bad filter value, field too long): a 4xx.
    return JSONResponse(error_body("invalid_input", str(exc)), status_code=422)


async def _store_error(_: Request, exc: Exception) -> JSONResponse:
    # A store outage (Milvus restarting): 503 the client may retry, told when to.
    return JSONResponse(
        error_body("store_unavailable", str(exc)),
        status_code=503,
        headers=retry_after_header(exc, default_s=2.0),
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI and Starlette answer 400 for a body they cannot parse (malformed multipart,
        # bytes that are not UTF-8): invalid input, so the 422 of every other invalid input.
        return JSONResponse(error_body("invalid_body", str(exc.detail)), status_code=422)
    code = _HTTP_CODES.get(exc.status_code, "error")
    return JSONResponse(
        error_body(code, str(exc.detail)),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return JSONResponse(
        error_body("invalid_input", "request validation failed", details), status_code=422
    )


async def _encoder_error(_: Request, exc: Exception) -> JSONResponse:
    # An encoder failure that no use-case translated (e.g. the service encoder does not know
    # its model's dim yet): still a 503 the client can retry, never a 500.
    return JSONResponse(
        error_body("encoder_unavailable", f"encoder unavailable: {exc}"),
        status_code=503,
        headers=retry_after_header(exc),
    )


async def _unhandled(_: Request, exc: Exception) -> JSONResponse:
    # Last resort: still the error shape, never a bare traceback.
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(error_body("internal", "internal server error"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error the app can raise through :func:`error_body`."""
    app.add_exception_handler(ClipsearchError, _clipsearch_error)
    app.add_exception_handler(InvalidStoreRequest, _store_request_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(EncoderError, _encoder_error)
    app.add_exception_handler(Exception, _unhandled)


# Documented on every /v1 route so clients see the error shape in OpenAPI.
def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    from clipsearch.api.schemas import ErrorBody

    text = {
        401: "missing or unknown API key",
        403: "API key scope too low, or a cross-site request",
        404: "unknown collection or id",
        409: "collection built with another model",
        413: "file or body over the size limit",
        422: "invalid input (error.code says which)",
        503: "encoder or store unavailable",
    }
    return {s: {"model": ErrorBody, "description": text.get(s, "error")} for s in statuses}

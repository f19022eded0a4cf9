"""HTTP rendering of use-case errors, in the project's error shape."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from clipsearch.core.errors import error_body, retry_after_header
from clipsearch.store.protocol import InvalidStoreRequest, StoreError
from clipsearch.usecases.errors import Kind, UseCaseError

STATUS: dict[Kind, int] = {
    "invalid": 422,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "unavailable": 503,
}


def status_of(err: UseCaseError) -> int:
    return STATUS.get(err.kind, 400)


async def _use_case_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UseCaseError)
    status = status_of(exc)
    # A 503 tells the client when to come back (the encoder's breaker cooldown, if known).
    headers = retry_after_header(exc.__cause__ or exc) if status == 503 else None
    return JSONResponse(
        error_body(exc.code, exc.message, exc.details), status_code=status, headers=headers
    )


async def _store_request_error(_: Request, exc: Exception) -> JSONResponse:
    # The store refused the caller's input (bad filter value, field too long): a 4xx.
    return JSONResponse(error_body("invalid_input", str(exc)), status_code=422)


async def _store_error(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(error_body("store_unavailable", str(exc)), status_code=503)


def install_use_case_errors(app: FastAPI) -> None:
    app.add_exception_handler(UseCaseError, _use_case_error)
    app.add_exception_handler(InvalidStoreRequest, _store_request_error)
    app.add_exception_handler(StoreError, _store_error)


# Documented on every /v1 route so clients see the error shape in OpenAPI.
def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    from clipsearch.api.schemas import ErrorBody

    text = {
        404: "unknown collection or id",
        409: "collection built with another model",
        413: "file or body over the size limit",
        422: "invalid input (error.code says which)",
        503: "encoder or store unavailable",
    }
    return {s: {"model": ErrorBody, "description": text.get(s, "error")} for s in statuses}

"""Bulk ingest: ``POST /v1/ingest`` creates a durable job; ``/v1/jobs`` reports on it.

With API keys on, a job records the name of the key that created it, and a key below
admin sees (lists, reads, follows, cancels) only the jobs of its own name: another's job
is a 404, as if it did not exist. Server paths in items are shown to admins only.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask

from clipsearch.api.auth import Principal, PrincipalDep, RequireWrite
from clipsearch.api.deps import StateDep, check_may_create
from clipsearch.api.jobs_schema import (
    INGEST_OPENAPI,
    IngestBody,
    JobAccepted,
    JobList,
    JobView,
    job_view,
    request_from_form,
    request_from_json,
)
from clipsearch.api.json_body import read_json
from clipsearch.api.links import ACCEPTED_JOB
from clipsearch.api.overload import EventStreams
from clipsearch.core.errors import Forbidden, InvalidRequest, NotFoundError, UnsupportedMediaType
from clipsearch.core.keys import Scope
from clipsearch.core.names import COLLECTION_PATTERN
from clipsearch.jobs.runner import JobManager
from clipsearch.jobs.store import Job
from clipsearch.jobs.submit import IngestRequest, submit_job
from clipsearch.jobs.uploads import parse_multipart

ITEM_STATUS_RE = "^(pending|stored|updated|duplicate|failed)$"
router = APIRouter(tags=["ingest"])
FINAL = ("done", "partial", "failed", "cancelled")
_SSE_EXAMPLE = (
    'event: progress\ndata: {"job_id": "9f1c", "status": "running", "counts": {"total": 500,'
    ' "stored": 120, "updated": 0, "duplicate": 0, "failed": 1, "pending": 379}, "rate": 41.5,'
    ' "eta_s": 9.1}\n\n'
)
MAX_OFFSET = 2**53  # any real page; far inside SQLite's 64-bit integers
_ERR = {"model": None, "description": "Error shape: `{error: {code, message, details}}`"}


@router.post(
    "/v1/ingest",
    status_code=202,
    response_model=JobAccepted,
    summary="Start a bulk ingest job (uploads, URLs, server paths)",
    openapi_extra=INGEST_OPENAPI,
    responses={
        200: {"model": JobAccepted, "description": "Idempotency-Key seen: that job"},
        202: {"links": ACCEPTED_JOB},
        403: _ERR,
        413: _ERR,
        415: _ERR,
        422: _ERR,
        429: _ERR,
        503: _ERR,
    },
    dependencies=[RequireWrite],
)
async def ingest(
    request: Request,
    state: StateDep,
    principal: PrincipalDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    collection: Annotated[str | None, Query(pattern=COLLECTION_PATTERN)] = None,
) -> Any:
    """Record a job and all its items, then answer ``202 {job_id}`` at once.

    The body is multipart (``files`` parts, optional ``captions`` one per file, a
    ``captions_file`` part, ``urls``/``paths`` fields one per line, ``metadata`` JSON,
    ``collection``) or JSON (:class:`IngestBody`). Uploads are streamed to the data dir.
    A known ``Idempotency-Key`` returns its job (200) without reading the body; too much
    pending work gives ``429`` with ``Retry-After``.
    """
    manager = state.jobs

    async def read(spool: Path) -> IngestRequest:
        return await _read_request(request, spool, manager)

    async def check_collection(name: str) -> None:
        await check_may_create(state, principal, name)

    job, existing = await submit_job(
        manager,
        read,
        collection=collection,
        idempotency_key=idempotency_key,
        owner=principal.name,
        check_collection=check_collection,
    )
    if existing and not _visible(job, principal):
        raise Forbidden("this Idempotency-Key names another key's job", code="idempotency_conflict")
    if existing:
        return JSONResponse(JobAccepted.of(job, existing=True).model_dump(), 200)
    return JobAccepted.of(job)


async def _read_request(request: Request, spool: Path, manager: JobManager) -> IngestRequest:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        parsed = await parse_multipart(
            ctype,
            request.stream(),
            spool,
            max_file_bytes=manager.settings.max_upload_bytes,
            quota=manager.spool,
        )
        try:
            return request_from_form(parsed)
        except (ValueError, ValidationError) as exc:
            raise InvalidRequest(f"invalid form fields: {exc}", code="invalid_input") from exc
    if ctype.startswith("application/json"):
        raw = await read_json(request, code="invalid_json")  # size-limited, parsed in a thread
        try:
            body = await to_thread.run_sync(IngestBody.model_validate, raw)
        except ValidationError as exc:
            details = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
            raise InvalidRequest("invalid JSON body", details=details) from exc
        return request_from_json(body)
    raise UnsupportedMediaType("send multipart/form-data or application/json")


def _visible(job: Job, principal: Principal) -> bool:
    return principal.allows(Scope.admin) or job.owner == principal.name


def _owner_filter(principal: Principal) -> str | None:
    """The owner whose jobs this caller may list; ``None``: everyone's (an admin)."""
    if principal.allows(Scope.admin):
        return None
    return principal.name or ""  # no name (an open path): nothing matches


async def _job_or_404(manager: JobManager, job_id: str, principal: Principal) -> Job:
    job = await manager.get(job_id)
    if job is None or not _visible(job, principal):
        raise NotFoundError(f"job {job_id!r} not found", code="job_not_found")
    return job


@router.get(
    "/v1/jobs/{job_id}",
    response_model=JobView,
    summary="Status, counts, rate, ETA and per-item results (paged)",
    responses={404: _ERR, 422: _ERR},
)
async def get_job(
    state: StateDep,
    principal: PrincipalDep,
    job_id: str,
    # Bounded: SQLite integers are 64-bit (an offset past that was a 500).
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=0, le=1000)] = 100,
    item_status: Annotated[str | None, Query(pattern=ITEM_STATUS_RE)] = None,
) -> JobView:
    """One job with a page of its items: ``{source, id, status, error}`` in submit order."""
    manager = state.jobs
    job = await _job_or_404(manager, job_id, principal)
    items = await to_thread.run_sync(
        lambda: manager.jobs.items(job_id, status=item_status, offset=offset, limit=limit)
    )
    reveal = principal.allows(Scope.admin)
    return job_view(job, manager.rate_eta(job), items, offset, limit, reveal_paths=reveal)


@router.get(
    "/v1/jobs",
    response_model=JobList,
    summary="List jobs, newest first",
    responses={422: _ERR},
)
async def list_jobs(
    state: StateDep,
    principal: PrincipalDep,
    status: Annotated[
        str | None, Query(pattern="^(queued|running|done|partial|failed|cancelled)$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JobList:
    """Jobs (without items), optionally only those in one ``status``."""
    manager = state.jobs
    owner = _owner_filter(principal)
    jobs = await to_thread.run_sync(lambda: manager.jobs.list_jobs(status, limit, owner=owner))
    return JobList(jobs=[job_view(j, manager.rate_eta(j), None, 0, 0) for j in jobs])


@router.delete(
    "/v1/jobs/{job_id}",
    response_model=JobView,
    summary="Cancel a queued or running job",
    responses={403: _ERR, 404: _ERR},
    dependencies=[RequireWrite],
)
async def cancel_job(state: StateDep, principal: PrincipalDep, job_id: str) -> JobView:
    """Stops the job; items already stored stay stored, the rest stay ``pending``."""
    manager = state.jobs
    await _job_or_404(manager, job_id, principal)
    job = await manager.cancel(job_id)
    assert job is not None
    return job_view(job, manager.rate_eta(job), None, 0, 0)


@router.get(
    "/v1/jobs/{job_id}/events",
    summary="Server-sent progress events until the job ends",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {"example": _SSE_EXAMPLE}}},
        404: _ERR,
        503: _ERR,
    },
)
async def job_events(
    request: Request,
    state: StateDep,
    principal: PrincipalDep,
    job_id: str,
    interval: Annotated[float, Query(ge=0.1, le=10)] = 0.5,
) -> StreamingResponse:
    """``progress`` events (the job without items) whenever it changes, ``end`` at the
    end; a comment line every 15 s keeps proxies from closing an idle stream. A stream
    lives ``CLIPSEARCH_EVENT_STREAM_MAX_S`` at most (then ``expired``: reconnect), and at
    most ``CLIPSEARCH_MAX_EVENT_STREAMS`` are open at once (then 503 + ``Retry-After``)."""
    manager = state.jobs
    await _job_or_404(manager, job_id, principal)
    streams: EventStreams = request.app.state.event_streams
    slot = streams.acquire()
    ends_at = time.monotonic() + streams.max_s

    async def stream() -> Any:
        try:
            async for event in _events(request, manager, job_id, interval, ends_at):
                yield event
        finally:
            slot.release()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
        background=BackgroundTask(slot.release),  # if the body never started
    )


async def _events(
    request: Request, manager: JobManager, job_id: str, interval: float, ends_at: float
) -> AsyncIterator[str]:
    last = ""
    quiet = 0.0
    while not await request.is_disconnected():
        job = await manager.get(job_id)
        if job is None:  # pruned (or never there): nothing more to tell
            return
        view = job_view(job, manager.rate_eta(job), None, 0, 0).model_dump()
        body = json.dumps(view)
        # `error` too: a job waiting for the encoder says so there while counts stand still.
        state = json.dumps([view["status"], view["counts"], view["error"]])
        if state != last:
            yield f"event: progress\ndata: {body}\n\n"
            last, quiet = state, 0.0
        elif quiet >= 15:
            yield ": keep-alive\n\n"
            quiet = 0.0
        if job.status in FINAL:
            yield f"event: end\ndata: {body}\n\n"
            return
        if time.monotonic() >= ends_at:
            yield f"event: expired\ndata: {body}\n\n"
            return
        await asyncio.sleep(interval)
        quiet += interval

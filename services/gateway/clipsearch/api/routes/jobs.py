"""Bulk ingest: ``POST /v1/ingest`` creates a durable job; ``/v1/jobs`` reports on it."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from typing import Annotated, Any, Literal, cast

from anyio import to_thread
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from clipsearch.api.jobs_schema import (
    INGEST_OPENAPI,
    IngestBody,
    IngestSpec,
    JobAccepted,
    JobList,
    JobView,
    caption_list,
    job_view,
)
from clipsearch.core.errors import APIError, InvalidInput, NotFound, PayloadTooLarge
from clipsearch.jobs.captions import CaptionFileError, Captions, parse_captions
from clipsearch.jobs.paths import PathRefused, expand
from clipsearch.jobs.runner import JobManager, QueueFull
from clipsearch.jobs.store import NewItem
from clipsearch.jobs.uploads import UploadError, parse_multipart

router = APIRouter(tags=["ingest"])
FINAL = ("done", "partial", "failed", "cancelled")
_SSE_EXAMPLE = (
    'event: progress\ndata: {"job_id": "9f1c", "status": "running", "counts": {"total": 500,'
    ' "stored": 120, "duplicate": 0, "failed": 1, "pending": 379}, "rate": 41.5, "eta_s": 9.1}\n\n'
)
_ERR = {"model": None, "description": "Error shape: `{error: {code, message, details}}`"}


def _manager(request: Request) -> JobManager:
    return cast(JobManager, request.app.state.jobs)


def _busy(exc: QueueFull) -> APIError:
    return APIError(
        str(exc),
        code="too_many_requests",
        status_code=429,
        details={"pending_items": exc.pending},
        headers={"Retry-After": str(exc.retry_after)},
    )


@router.post(
    "/v1/ingest",
    status_code=202,
    response_model=JobAccepted,
    summary="Start a bulk ingest job (uploads, URLs, server paths)",
    openapi_extra=INGEST_OPENAPI,
    responses={
        200: {"model": JobAccepted, "description": "Idempotency-Key seen: that job"},
        403: _ERR,
        413: _ERR,
        422: _ERR,
        429: _ERR,
    },
)
async def ingest(
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    collection: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_]{1,64}$")] = None,
) -> Any:
    """Record a job and all its items, then answer ``202 {job_id}`` at once.

    The body is multipart (``files`` parts, optional ``captions`` one per file, a
    ``captions_file`` part, ``urls``/``paths`` fields one per line, ``metadata`` JSON,
    ``collection``) or JSON (:class:`IngestBody`). Uploads are streamed to the data dir.
    A known ``Idempotency-Key`` returns its job (200) without reading the body; too much
    pending work gives ``429`` with ``Retry-After``.
    """
    manager = _manager(request)
    if idempotency_key:
        existing = await manager.find_by_key(idempotency_key)
        if existing is not None:
            return JSONResponse(JobAccepted.of(existing, existing=True).model_dump(), 200)
    try:
        await manager.check_capacity()
    except QueueFull as exc:
        raise _busy(exc) from exc
    job_id = uuid.uuid4().hex
    spool = manager.spool_dir(job_id)
    try:
        spec = await _read_request(request, spool, manager)
        items = await _build_items(spec, manager)
        await manager.check_capacity(len(items))
        job, created = await manager.submit(
            collection or spec.collection or manager.settings.default_collection,
            items,
            metadata=spec.metadata,
            idempotency_key=idempotency_key,
            job_id=job_id,
        )
    except QueueFull as exc:
        await to_thread.run_sync(shutil.rmtree, spool, True)
        raise _busy(exc) from exc
    except BaseException:
        await to_thread.run_sync(shutil.rmtree, spool, True)  # nothing half-written
        raise
    if not created:  # a concurrent request with the same key won the race
        await to_thread.run_sync(shutil.rmtree, spool, True)
        return JSONResponse(JobAccepted.of(job, existing=True).model_dump(), 200)
    return JobAccepted.of(job)


async def _read_request(request: Request, spool: Any, manager: JobManager) -> IngestSpec:
    ctype = request.headers.get("content-type", "")
    cfg = manager.settings
    if ctype.startswith("multipart/form-data"):
        try:
            parsed = await parse_multipart(
                ctype, request.stream(), spool, max_file_bytes=cfg.max_upload_bytes
            )
        except UploadError as exc:
            if exc.code == "payload_too_large":
                raise PayloadTooLarge(str(exc)) from exc
            raise InvalidInput(str(exc), code=exc.code) from exc
        try:
            return IngestSpec.from_form(parsed)
        except (ValueError, ValidationError) as exc:
            raise InvalidInput(f"invalid form fields: {exc}", code="invalid_input") from exc
    if ctype.startswith("application/json"):
        raw = await request.body()
        try:
            body = IngestBody.model_validate_json(raw)
        except ValidationError as exc:
            details = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
            raise InvalidInput("invalid JSON body", details=details) from exc
        return IngestSpec.from_json(body)
    raise APIError(
        "send multipart/form-data or application/json",
        code="unsupported_media_type",
        status_code=415,
    )


async def _build_items(spec: IngestSpec, manager: JobManager) -> list[NewItem]:
    cfg = manager.settings
    captions = Captions()
    if spec.captions_file is not None:
        name, data = spec.captions_file
        try:
            captions = parse_captions(data, name)
        except CaptionFileError as exc:
            raise InvalidInput(f"captions_file: {exc}", code="invalid_captions_file") from exc
    for name, text in spec.caption_map.items():
        captions.add(name, text)

    items: list[NewItem] = []
    for i, f in enumerate(spec.files):
        given = spec.file_captions[i] if i < len(spec.file_captions) else ""
        caps = [given] if given.strip() else captions.lookup(f.filename)
        bad = f"file is over {cfg.max_upload_bytes} bytes" if f.too_large else None
        status: Literal["pending", "failed"] = "failed" if bad else "pending"
        items.append(
            NewItem(
                f.filename, "upload", spool=str(f.path), captions=caps, status=status, error=bad
            )
        )
    for u in spec.urls:
        caps = caption_list(u.caption) or captions.lookup(
            u.url, u.url.rsplit("/", 1)[-1].split("?")[0]
        )
        items.append(NewItem(source=u.url, kind="url", captions=caps, metadata=u.metadata))
    if spec.paths:
        if not cfg.ingest_roots:
            raise APIError(
                "path ingest is off: set CLIPSEARCH_INGEST_ROOTS", code="forbidden", status_code=403
            )
        limit = cfg.ingest_max_items_per_job

        def walk() -> list[NewItem]:
            out: list[NewItem] = []
            for p in spec.paths:
                for found in expand(p.path, cfg.ingest_roots, cfg.ingest_extensions, limit=limit):
                    caps = caption_list(p.caption) or captions.lookup(found.relative, found.source)
                    out.append(NewItem(str(found.path), "path", captions=caps, metadata=p.metadata))
            return out

        try:
            items += await to_thread.run_sync(walk)
        except PathRefused as exc:
            raise InvalidInput(str(exc), code="path_refused") from exc
    if not items:
        raise InvalidInput("nothing to ingest: give files, urls or paths", code="no_items")
    if len(items) > cfg.ingest_max_items_per_job:
        raise InvalidInput(
            f"{len(items)} items, more than the limit of {cfg.ingest_max_items_per_job}",
            code="too_many_items",
        )
    return items


async def _job_or_404(manager: JobManager, job_id: str) -> Any:
    job = await manager.get(job_id)
    if job is None:
        raise NotFound(f"job {job_id!r} not found", code="job_not_found")
    return job


@router.get(
    "/v1/jobs/{job_id}",
    response_model=JobView,
    summary="Status, counts, rate, ETA and per-item results (paged)",
    responses={404: _ERR, 422: _ERR},
)
async def get_job(
    request: Request,
    job_id: str,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=0, le=1000)] = 100,
    item_status: Annotated[str | None, Query(pattern="^(pending|stored|duplicate|failed)$")] = None,
) -> JobView:
    """One job with a page of its items: ``{source, id, status, error}`` in submit order."""
    manager = _manager(request)
    job = await _job_or_404(manager, job_id)
    items = await to_thread.run_sync(
        lambda: manager.jobs.items(job_id, status=item_status, offset=offset, limit=limit)
    )
    return job_view(job, manager.rate_eta(job), items, offset, limit)


@router.get(
    "/v1/jobs",
    response_model=JobList,
    summary="List jobs, newest first",
    responses={422: _ERR},
)
async def list_jobs(
    request: Request,
    status: Annotated[
        str | None, Query(pattern="^(queued|running|done|partial|failed|cancelled)$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JobList:
    """Jobs (without items), optionally only those in one ``status``."""
    manager = _manager(request)
    jobs = await to_thread.run_sync(lambda: manager.jobs.list_jobs(status, limit))
    return JobList(jobs=[job_view(j, manager.rate_eta(j), None, 0, 0) for j in jobs])


@router.delete(
    "/v1/jobs/{job_id}",
    response_model=JobView,
    summary="Cancel a queued or running job",
    responses={404: _ERR},
)
async def cancel_job(request: Request, job_id: str) -> JobView:
    """Stops the job; items already stored stay stored, the rest stay ``pending``."""
    manager = _manager(request)
    await _job_or_404(manager, job_id)
    job = await manager.cancel(job_id)
    assert job is not None
    return job_view(job, manager.rate_eta(job), None, 0, 0)


@router.get(
    "/v1/jobs/{job_id}/events",
    summary="Server-sent progress events until the job ends",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"example": _SSE_EXAMPLE}}}, 404: _ERR},
)
async def job_events(
    request: Request, job_id: str, interval: Annotated[float, Query(ge=0.1, le=10)] = 0.5
) -> StreamingResponse:
    """``progress`` events (the job without items) whenever it changes, ``end`` at the
    end; a comment line every 15 s keeps proxies from closing an idle stream."""
    manager = _manager(request)
    await _job_or_404(manager, job_id)

    async def stream() -> Any:
        last = ""
        quiet = 0.0
        while not await request.is_disconnected():
            job = await manager.get(job_id)
            assert job is not None
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
            await asyncio.sleep(interval)
            quiet += interval

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )

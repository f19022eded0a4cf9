"""Submitting an ingest job: the use-case behind ``POST /v1/ingest``, free of any web
framework.

A submission is read (by the caller: uploads are streamed to the job's spool folder),
turned into items (captions looked up, server folders expanded, limits checked), and
recorded with all its items before anyone is told the job exists. Whatever goes wrong on
the way, nothing is half-written: the spool folder is removed and the error is raised.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from anyio import to_thread

from clipsearch.core.config import Settings
from clipsearch.core.errors import Forbidden, InvalidRequest
from clipsearch.jobs.captions import CaptionFileError, Captions, parse_captions
from clipsearch.jobs.paths import PathRefused, expand
from clipsearch.jobs.runner import JobManager
from clipsearch.jobs.store import Job, NewItem
from clipsearch.jobs.uploads import SpooledFile
from clipsearch.usecases.metadata import MetadataLimits, check_metadata, merged_metadata


@dataclass(slots=True)
class Located:
    """A URL or a server path to ingest, with its own captions and metadata, if any."""

    where: str
    captions: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class IngestRequest:
    """What a client asks to ingest, whichever form (multipart or JSON) it came in."""

    files: list[SpooledFile] = field(default_factory=list)
    file_captions: list[str] = field(default_factory=list)
    urls: list[Located] = field(default_factory=list)
    paths: list[Located] = field(default_factory=list)
    caption_map: dict[str, str] = field(default_factory=dict)
    captions_file: tuple[str, bytes] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    collection: str | None = None


# Reads the request into an IngestRequest; uploads go to files under the given folder.
Reader = Callable[[Path], Awaitable[IngestRequest]]
# Raises when the caller may not write to (create) the named collection.
CollectionCheck = Callable[[str], Awaitable[None]]


async def submit_job(
    manager: JobManager,
    read: Reader,
    *,
    collection: str | None = None,
    idempotency_key: str | None = None,
    owner: str | None = None,
    check_collection: CollectionCheck | None = None,
) -> tuple[Job, bool]:
    """Record a job and queue it; ``(job, existing)``, ``existing`` when the idempotency
    key named a job already (then nothing is read). Raises
    :class:`~clipsearch.jobs.runner.QueueFull` when too much work is pending. ``owner``
    (the API key's name) is recorded on the job; ``check_collection`` vets the target
    collection once the body has named it."""
    if idempotency_key:
        found = await manager.find_by_key(idempotency_key)
        if found is not None:
            return found, True
    # Refuse before reading a body the queue has no room for.
    await manager.check_capacity()
    job_id = uuid.uuid4().hex
    spool = manager.spool_dir(job_id)
    try:
        request = await read(spool)
        target = collection or request.collection or manager.settings.default_collection
        if check_collection is not None:
            await check_collection(target)
        items = await build_items(request, manager.settings)
        await manager.check_capacity(len(items))
        job, created = await manager.submit(
            target,
            items,
            metadata=request.metadata,
            idempotency_key=idempotency_key,
            job_id=job_id,
            owner=owner,
        )
    except BaseException:
        await to_thread.run_sync(manager.spool.remove_tree, spool)
        raise
    if not created:  # a concurrent request with the same key won the race
        await to_thread.run_sync(manager.spool.remove_tree, spool)
    return job, not created


async def build_items(request: IngestRequest, cfg: Settings) -> list[NewItem]:
    """The job's items in submit order: uploads, then URLs, then the files under paths."""
    captions = Captions()
    if request.captions_file is not None:
        name, data = request.captions_file
        try:
            captions = parse_captions(data, name)
        except CaptionFileError as exc:
            raise InvalidRequest(f"captions_file: {exc}", code="invalid_captions_file") from exc
    for name, text in request.caption_map.items():
        captions.add(name, text)

    # What is stored is the job's metadata under each item's own: each merge must fit.
    limits = MetadataLimits.of(cfg)
    check_metadata(request.metadata, limits)
    for located in (*request.urls, *request.paths):
        merged_metadata(request.metadata, located.metadata, limits)
    items: list[NewItem] = []
    for i, f in enumerate(request.files):
        given = request.file_captions[i] if i < len(request.file_captions) else ""
        caps = [given] if given.strip() else captions.lookup(f.filename)
        bad = f"file is over {cfg.max_upload_bytes} bytes" if f.too_large else None
        status: Literal["pending", "failed"] = "failed" if bad else "pending"
        items.append(
            NewItem(
                f.filename, "upload", spool=str(f.path), captions=caps, status=status, error=bad
            )
        )
    for u in request.urls:
        caps = u.captions or captions.lookup(u.where, u.where.rsplit("/", 1)[-1].split("?")[0])
        items.append(NewItem(source=u.where, kind="url", captions=caps, metadata=u.metadata))
    if request.paths:
        items += await _expand_paths(request.paths, captions, cfg)
    if not items:
        raise InvalidRequest("nothing to ingest: give files, urls or paths", code="no_items")
    if len(items) > cfg.ingest_max_items_per_job:
        raise InvalidRequest(
            f"{len(items)} items, more than the limit of {cfg.ingest_max_items_per_job}",
            code="too_many_items",
        )
    return items


async def _expand_paths(paths: list[Located], captions: Captions, cfg: Settings) -> list[NewItem]:
    if not cfg.ingest_roots:
        raise Forbidden("path ingest is off: set CLIPSEARCH_INGEST_ROOTS")
    limit = cfg.ingest_max_items_per_job

    def walk() -> list[NewItem]:  # a directory walk: disk work, in a thread
        out: list[NewItem] = []
        for p in paths:
            for found in expand(p.where, cfg.ingest_roots, cfg.ingest_extensions, limit=limit):
                caps = p.captions or captions.lookup(found.relative, found.source)
                out.append(NewItem(str(found.path), "path", captions=caps, metadata=p.metadata))
        return out

    try:
        return await to_thread.run_sync(walk)
    except PathRefused as exc:
        raise InvalidRequest(str(exc), code="path_refused") from exc


__all__ = ["IngestRequest", "Located", "Reader", "build_items", "submit_job"]

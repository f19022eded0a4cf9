"""Back up and restore: ``GET /v1/collections/{name}/export`` streams a collection as one
file, ``POST /v1/collections/{name}/import`` restores such a file into an empty one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Annotated, BinaryIO, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict

from clipsearch.api.auth import RequireAdmin
from clipsearch.api.deps import StateDep
from clipsearch.api.errors import error_responses
from clipsearch.api.routes.browse import FilterQuery, parse_filter
from clipsearch.core.errors import InvalidRequest, TooLarge
from clipsearch.core.names import COLLECTION_PATTERN
from clipsearch.usecases.common import run_sync

router = APIRouter(prefix="/v1/collections", tags=["backup"])
NameParam = Annotated[str, PathParam(pattern=COLLECTION_PATTERN, examples=["photos"])]


class ImportedOut(BaseModel):
    collection: str
    images: int
    texts: int
    blobs: int

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"collection": "photos", "images": 1250, "texts": 1302, "blobs": 1250}]
        }
    )


@router.get(
    "/{name}/export",
    summary="Export a collection",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "the export file (README: Export format)",
            "content": {
                "application/vnd.apache.parquet": {},
                "application/octet-stream": {},
                "application/x-tar": {},
            },
        },
        **error_responses(404, 422, 503),
    },
)
async def export_collection(
    state: StateDep,
    name: NameParam,
    format: Annotated[Literal["parquet", "npz"], Query(description="data file format")] = "parquet",
    blobs: Annotated[
        bool, Query(description="true: a tar with the original files (blobs/<id>) too")
    ] = False,
    filter: FilterQuery = None,
) -> StreamingResponse:
    """Every image and text of the collection (or those whose metadata matches `filter`):
    ids, vectors as stored, captions, texts, metadata, sources, content types, sizes,
    created_at, and a manifest with the model, its fingerprint, dim and index. Streamed
    while the collection is read a page at a time. Errors: `unknown_collection` (404),
    `invalid_filter` (422)."""
    export = await state.transfer.export(
        name, format, with_blobs=blobs, filter=parse_filter(filter)
    )
    return StreamingResponse(
        export.chunks,
        media_type=export.media_type,
        headers={"Content-Disposition": f'attachment; filename="{export.filename}"'},
    )


def _new_spool_file(directory: Path) -> tuple[Path, BinaryIO]:
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, suffix=".upload")
    return Path(name), os.fdopen(fd, "wb")


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


async def _spool_body(request: Request, directory: Path, max_bytes: int) -> Path:
    """The request body in a file of ``directory``, read as it streams in (never whole in
    memory); 413 past ``max_bytes``."""
    path, f = await run_sync(_new_spool_file, directory)
    size = 0
    try:
        with f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(
                        f"the import file exceeds {max_bytes} bytes",
                        details={"max_import_bytes": max_bytes},
                    )
                await run_sync(f.write, chunk)
    except BaseException:
        await run_sync(_remove, path)
        raise
    if size == 0:
        await run_sync(_remove, path)
        raise InvalidRequest("the body is empty: send the export file", code="empty_body")
    return path


@router.post(
    "/{name}/import",
    summary="Import a collection",
    response_model=ImportedOut,
    responses={
        200: {"description": "what was restored"},
        **error_responses(403, 409, 413, 422, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "an export file: Parquet, npz, or the tar of either with files",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
    dependencies=[RequireAdmin],
)
async def import_collection(state: StateDep, request: Request, name: NameParam) -> ImportedOut:
    """Restore an export into collection `name`, new or empty, without re-encoding: the
    file's model fingerprint must be the collection's (409 `model_mismatch`), the
    collection empty (409 `collection_not_empty`). The whole file is checked before the
    first write (422 `invalid_export_file` for a damaged, truncated or foreign file, or
    wrong vector sizes); a write failing after that removes what was written. Admin key."""
    path = await _spool_body(request, state.transfer.spool, state.settings.max_import_bytes)
    try:
        done = await state.transfer.import_file(name, path)
    finally:
        await run_sync(_remove, path)
    return ImportedOut(
        collection=done.collection, images=done.images, texts=done.texts, blobs=done.blobs
    )

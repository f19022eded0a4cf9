"""/v1/images: upload (vector + file + caption), read, change, download, delete."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool

from clipsearch.api.auth import RequireWrite
from clipsearch.api.deps import CollectionDep, StateDep, WritableCollectionDep
from clipsearch.api.errors import error_responses
from clipsearch.api.json_body import JsonRoute, parse_json_field
from clipsearch.api.links import STORED_IMAGE
from clipsearch.api.records_schema import DeletedOut, ImageOut, ImagePatchIn
from clipsearch.api.routes._common import render_hit, render_image, render_item
from clipsearch.api.schemas import SearchResponse, StoreResponse
from clipsearch.core.errors import InvalidRequest, NotFoundError, TooLarge
from clipsearch.usecases.image_patch import ImagePatch
from clipsearch.usecases.images import ImageInput
from clipsearch.usecases.imaging import file_too_large

router = APIRouter(prefix="/v1/images", tags=["images"])
# JSON bodies parsed off the event loop, with the one answer for malformed JSON.
json_router = APIRouter(prefix="/v1/images", tags=["images"], route_class=JsonRoute)
# Content-addressed: the bytes behind an id never change, so caches may keep them forever.
IMMUTABLE = "public, max-age=31536000, immutable"


def _parse_metadata(raw: str | None, n: int) -> list[dict[str, Any]]:
    """``metadata``: one JSON object for all files, or a JSON list with one per file."""
    if raw is None or not raw.strip():
        return [{} for _ in range(n)]
    value = parse_json_field(raw, what="metadata", code="invalid_metadata")
    if isinstance(value, dict):
        return [dict(value) for _ in range(n)]
    if isinstance(value, list) and len(value) == n and all(isinstance(v, dict) for v in value):
        return value
    raise InvalidRequest(
        "metadata must be a JSON object, or a list with one object per file",
        code="invalid_metadata",
    )


async def _read_upload(upload: UploadFile, max_bytes: int) -> tuple[bytes, TooLarge | None]:
    # Read one byte past the limit: enough to know it is too large without reading it all.
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        return b"", file_too_large(max_bytes)
    return data, None


@router.post(
    "",
    summary="Store images",
    response_model=StoreResponse,
    responses={200: {"links": STORED_IMAGE}, **error_responses(403, 404, 409, 413, 422, 503)},
    dependencies=[RequireWrite],
)
async def store_images(
    state: StateDep,
    collection: WritableCollectionDep,
    files: Annotated[list[UploadFile], File(description="one or more image files")],
    captions: Annotated[
        list[str] | None, Form(description="optional, one per file (empty = none)")
    ] = None,
    metadata: Annotated[
        str | None, Form(description="JSON object for all files, or a list, one per file")
    ] = None,
) -> StoreResponse:
    """Store uploaded images synchronously: one result per file, in order.

    Each file gets `stored`, `updated` (same bytes already in the collection, and the
    upload brought a caption it did not have or metadata that changes it: the caption is
    added, the metadata merged), `duplicate` (already there, nothing new) or `failed` with
    an error; a failed file never costs the others. When *every* file fails
    the request answers the first file's error status (4xx) with the items in `details`.
    """
    started = time.perf_counter()
    cfg = state.settings
    caps = captions or []
    if caps and len(caps) != len(files):
        raise InvalidRequest(
            f"{len(caps)} captions for {len(files)} files: give one per file (or none)",
            code="captions_mismatch",
        )
    metas = _parse_metadata(metadata, len(files))
    items = []
    for i, upload in enumerate(files):
        data, err = await _read_upload(upload, cfg.max_upload_bytes)
        items.append(
            ImageInput(
                data=data,
                source=upload.filename or f"upload-{i}",
                caption=caps[i] if caps else "",
                metadata=metas[i],
                error=err,
            )
        )
    results = await state.images.store_images(collection, items)
    state.metrics.ingest_window.observe((time.perf_counter() - started) * 1000.0)
    out = StoreResponse(items=[render_item(r) for r in results])
    if all(r.status == "failed" for r in results):
        first = next(r.error for r in results if r.error is not None)
        raise first.with_details(out.model_dump()["items"])
    return out


def _image_out(row: dict[str, Any], collection: str, default: str) -> ImageOut:
    return render_image(row, collection, default)


@router.get(
    "/{image_id}",
    summary="Image record",
    response_model=ImageOut,
    responses=error_responses(404),
)
async def get_image(state: StateDep, collection: CollectionDep, image_id: str) -> ImageOut:
    """The stored record of one image (no vector): source, size, caption, metadata."""
    row = await state.images.get_image(collection, image_id, with_captions=True)
    return _image_out(row, collection, state.settings.default_collection)


@json_router.patch(
    "/{image_id}",
    summary="Change an image's metadata and captions",
    response_model=ImageOut,
    responses=error_responses(401, 403, 404, 409, 413, 422, 503),
    dependencies=[RequireWrite],
)
async def patch_image(
    state: StateDep, collection: CollectionDep, image_id: str, body: ImagePatchIn
) -> ImageOut:
    """Merge or replace the metadata, set the main caption, add and remove captions, in
    one request; the image vector is untouched. Returns the updated record.

    New captions are encoded (text search finds them at once); removed ones are deleted.
    The caption texts get the same metadata change. Errors: `empty_patch`,
    `invalid_metadata` (also when the merge is over the limits), `text_too_long`,
    `empty_text`, `conflicting_captions` (422); `image_not_found`, `caption_not_found`
    (404).
    """
    patch = ImagePatch(
        metadata=body.metadata,
        metadata_mode=body.metadata_mode,
        caption=body.caption,
        add_captions=list(body.add_captions),
        remove_captions=list(body.remove_captions),
    )
    row = await state.images.update_image(collection, image_id, patch)
    return _image_out(row, collection, state.settings.default_collection)


@router.get(
    "/{image_id}/similar",
    summary="Images similar to a stored one",
    response_model=SearchResponse,
    responses=error_responses(404, 409, 422, 503),
)
async def similar_images(
    state: StateDep,
    collection: CollectionDep,
    image_id: str,
    top_k: Annotated[int, Query(description="hits to return (<= max_top_k)", examples=[5])] = 10,
    min_score: Annotated[
        float | None, Query(description="cosine threshold, in [-1, 1]", examples=[0.9])
    ] = None,
    filter: Annotated[
        str | None,
        Query(description="metadata filter as JSON", examples=['{"album": "home"}']),
    ] = None,
) -> SearchResponse:
    """ "View similar": the stored vector of `image_id` as the query, the image itself left
    out; hits as in `/v1/search`. 404 `image_not_found`; 422 `invalid_min_score`,
    `top_k_too_large`, `invalid_filter`."""
    parsed = (
        parse_json_field(filter, what="filter", code="invalid_filter")
        if filter and filter.strip()
        else None
    )
    hits, took = await state.similar.similar(
        collection, image_id, top_k=top_k, min_score=min_score, filter=parsed
    )
    default = state.settings.default_collection
    return SearchResponse(
        hits=[render_hit(h, "images", collection, default) for h in hits], took_ms=took
    )


async def _blob_response(
    state: StateDep, request: Request, collection: str, image_id: str, thumbnail: bool
) -> Response:
    row = await state.images.get_image(collection, image_id)
    etag = f'"{image_id}"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    try:
        if thumbnail:
            data = await run_in_threadpool(state.blobs.thumbnail, image_id)
            media = "image/jpeg"
        else:
            data = await run_in_threadpool(state.blobs.read, image_id)
            media = str(row.get("content_type") or "application/octet-stream")
    except FileNotFoundError as exc:
        raise NotFoundError(
            f"the file of image {image_id!r} is missing", code="blob_not_found"
        ) from exc
    return Response(
        content=data,
        media_type=media,
        headers=headers,
    )


@router.get(
    "/{image_id}/file",
    summary="Original image file",
    response_class=Response,
    responses={200: {"content": {"image/*": {}}}, **error_responses(404)},
)
async def get_image_file(
    state: StateDep, request: Request, collection: CollectionDep, image_id: str
) -> Response:
    """The original bytes as uploaded; `ETag` is the id and the response is immutable
    (`If-None-Match` with the id answers 304)."""
    return await _blob_response(state, request, collection, image_id, thumbnail=False)


@router.get(
    "/{image_id}/thumbnail",
    summary="Image thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **error_responses(404)},
)
async def get_image_thumbnail(
    state: StateDep, request: Request, collection: CollectionDep, image_id: str
) -> Response:
    """A small JPEG of the image, with the same cache headers as the file."""
    return await _blob_response(state, request, collection, image_id, thumbnail=True)


@router.delete(
    "/{image_id}",
    summary="Delete an image",
    response_model=DeletedOut,
    responses=error_responses(403, 404, 503),
    dependencies=[RequireWrite],
)
async def delete_image(state: StateDep, collection: CollectionDep, image_id: str) -> DeletedOut:
    """Delete the image, the texts linked to it (its captions) and its file."""
    removed = await state.images.delete_image(collection, image_id)
    return DeletedOut(id=image_id, texts_deleted=removed)

"""Browse a collection page by page (``GET /v1/images``, ``GET /v1/texts``) and delete the
pictures a filter matches (``DELETE /v1/images?filter=``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from clipsearch.api.auth import RequireWrite
from clipsearch.api.browse_schema import FILTER_DESCRIPTION, DeletedByFilter, ImagePage, TextPage
from clipsearch.api.deps import CollectionDep, StateDep
from clipsearch.api.errors import error_responses
from clipsearch.api.json_body import parse_json_field
from clipsearch.api.records_schema import TextOut
from clipsearch.api.routes._common import image_urls, render_image
from clipsearch.core.errors import InvalidRequest
from clipsearch.store.protocol import Filter
from clipsearch.usecases.metadata import readable_metadata

router = APIRouter(tags=["browse"])

FilterQuery = Annotated[
    str | None, Query(description=FILTER_DESCRIPTION, examples=['{"album": "home"}'])
]
LimitQuery = Annotated[
    int | None, Query(description="records per page (default 100, at most max_browse_limit)")
]
CursorQuery = Annotated[
    str | None, Query(description="the next_cursor of the previous page (opaque)")
]
BROWSE_ERRORS = error_responses(404, 409, 422, 503)


def parse_filter(raw: str | None) -> Filter | None:
    """``?filter=`` as a JSON object (422 ``invalid_filter`` otherwise); None when absent."""
    if raw is None or not raw.strip():
        return None
    value = parse_json_field(raw, what="filter", code="invalid_filter")
    if not isinstance(value, dict):
        raise InvalidRequest("filter must be a JSON object", code="invalid_filter")
    return value


def _text_out(row: dict[str, Any], collection: str, default: str) -> TextOut:
    image_id = row.get("image_id") or None
    file_url = thumb_url = None
    if image_id:
        file_url, thumb_url = image_urls(image_id, collection, default)
    metadata, omitted = readable_metadata(row.get("metadata"))
    return TextOut(
        id=str(row["id"]),
        text=str(row.get("text") or ""),
        image_id=image_id,
        metadata=metadata,
        metadata_omitted=omitted,
        created_at=int(row.get("created_at") or 0),
        image_url=file_url,
        thumbnail_url=thumb_url,
    )


@router.get(
    "/v1/images",
    summary="Browse images",
    response_model=ImagePage,
    responses=BROWSE_ERRORS,
)
async def list_images(
    state: StateDep,
    collection: CollectionDep,
    filter: FilterQuery = None,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
) -> ImagePage:
    """Every image of the collection, in a stable order (by id), a page at a time.

    Follow `next_cursor` until it is null: each image present all along is seen exactly
    once, however large the collection. Errors: `invalid_cursor`, `invalid_limit`,
    `invalid_filter` (422), `unknown_collection` (404).
    """
    page = await state.browse.page(
        collection, "images", filter=parse_filter(filter), limit=limit, cursor=cursor
    )
    default = state.settings.default_collection
    return ImagePage(
        items=[render_image(r, collection, default) for r in page.rows],
        next_cursor=page.next_cursor,
        total=page.total,
    )


@router.get(
    "/v1/texts",
    summary="Browse texts",
    response_model=TextPage,
    responses=BROWSE_ERRORS,
)
async def list_texts(
    state: StateDep,
    collection: CollectionDep,
    filter: FilterQuery = None,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
) -> TextPage:
    """Every text of the collection (captions and the text corpus), as `GET /v1/images`
    pages images: by id, `next_cursor` until null."""
    page = await state.browse.page(
        collection, "texts", filter=parse_filter(filter), limit=limit, cursor=cursor
    )
    default = state.settings.default_collection
    return TextPage(
        items=[_text_out(r, collection, default) for r in page.rows],
        next_cursor=page.next_cursor,
        total=page.total,
    )


@router.delete(
    "/v1/images",
    summary="Delete images by filter",
    response_model=DeletedByFilter,
    responses=error_responses(403, 404, 409, 422, 503),
    dependencies=[RequireWrite],
)
async def delete_images_by_filter(
    state: StateDep, collection: CollectionDep, filter: FilterQuery = None
) -> DeletedByFilter:
    """Delete every image whose metadata matches `filter`, each as
    `DELETE /v1/images/{id}` does (its linked texts, its file unless another collection
    holds it). A missing or empty filter is refused (422 `filter_required`): deleting a
    whole collection is not done by accident."""
    done = await state.images.delete_images_matching(collection, parse_filter(filter))
    return DeletedByFilter(deleted=done.images, texts_deleted=done.texts)

"""/v1/texts: a text-only corpus (for image->text and text->text search): store, change,
delete."""

from __future__ import annotations

import time

from fastapi import APIRouter

from clipsearch.api.auth import RequireWrite
from clipsearch.api.deps import CollectionDep, StateDep, WritableCollectionDep
from clipsearch.api.errors import error_responses
from clipsearch.api.json_body import JsonRoute
from clipsearch.api.links import STORED_TEXT
from clipsearch.api.records_schema import DeletedOut, TextOut, TextPatchIn
from clipsearch.api.routes._common import render_item
from clipsearch.api.schemas import StoreResponse, TextsRequest
from clipsearch.usecases.texts import TextInput

router = APIRouter(prefix="/v1/texts", tags=["texts"], route_class=JsonRoute)


@router.post(
    "",
    summary="Store texts",
    response_model=StoreResponse,
    responses={200: {"links": STORED_TEXT}, **error_responses(403, 409, 413, 422, 503)},
    dependencies=[RequireWrite],
)
async def store_texts(
    state: StateDep, collection: WritableCollectionDep, body: TextsRequest
) -> StoreResponse:
    """Store texts (one encoder call for the new ones): `stored` or `duplicate` per text.

    Every text is validated first (non-empty, at most `max_text_chars`); one bad text
    refuses the whole request with 422 and writes nothing.
    """
    started = time.perf_counter()
    results = await state.texts.store_texts(
        collection, [TextInput(text=t.text, metadata=t.metadata) for t in body.texts]
    )
    state.metrics.ingest_window.observe((time.perf_counter() - started) * 1000.0)
    return StoreResponse(items=[render_item(r) for r in results])


@router.patch(
    "/{text_id}",
    summary="Change a text or its metadata",
    response_model=TextOut,
    responses=error_responses(401, 403, 404, 409, 413, 422, 503),
    dependencies=[RequireWrite],
)
async def patch_text(
    state: StateDep, collection: CollectionDep, text_id: str, body: TextPatchIn
) -> TextOut:
    """Merge or replace a text's metadata and/or give it a new text.

    A new text is encoded again and, ids being content hashes, gets a new id: the answer's
    `id` is the new one and `replaced_id` the old one, which no longer exists. A caption's
    text is changed with `PATCH /v1/images/{id}` instead (422 `caption_text`). Errors:
    `empty_patch`, `invalid_metadata`, `empty_text`, `text_too_long` (422);
    `text_not_found` (404).
    """
    row = await state.texts.update_text(
        collection,
        text_id,
        text=body.text,
        metadata=body.metadata,
        metadata_mode=body.metadata_mode,
    )
    fields = {k: v for k, v in row.items() if k in TextOut.model_fields}
    fields["image_id"] = fields.get("image_id") or None
    return TextOut(**fields)


@router.delete(
    "/{text_id}",
    summary="Delete a text",
    response_model=DeletedOut,
    responses=error_responses(403, 404, 503),
    dependencies=[RequireWrite],
)
async def delete_text(state: StateDep, collection: CollectionDep, text_id: str) -> DeletedOut:
    """Delete one text (a caption too: the image keeps its `caption` field)."""
    await state.texts.delete_text(collection, text_id)
    return DeletedOut(id=text_id)
